import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Production dependencies must be maintained. `npm audit` needs the registry's advisory service, which
 * registry mirrors often do not offer, so this list of packages known to be deprecated or archived is
 * checked against the lockfile instead.
 * Installing them must not report anything to a third party either (install scripts are the hook).
 */
interface LockEntry {
  readonly version?: string;
  readonly dev?: boolean;
  readonly optional?: boolean;
  readonly hasInstallScript?: boolean;
}

const PROJECT_ROOT = join(__dirname, '..', '..');
const lock = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as {
  readonly lockfileVersion: number;
  readonly packages: Readonly<Record<string, LockEntry>>;
};

const productionPackages = Object.entries(lock.packages)
  .filter(([path, entry]) => path.startsWith('node_modules/') && entry.dev !== true)
  .map(([path, entry]) => ({ name: path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length), version: entry.version ?? '' }));

function major(version: string): number {
  return Number(version.split('.')[0]);
}

/** name → why it is refused; a version test narrows the refusal where only old majors are bad. */
const REFUSED: readonly { readonly name: string; readonly why: string; readonly applies?: (version: string) => boolean }[] = [
  { name: 'passport-azure-ad', why: 'archived by Microsoft (2023); validate tokens with jose' },
  { name: 'request', why: 'deprecated since 2020' },
  { name: 'request-promise', why: 'deprecated with request' },
  { name: 'express-jwt', why: 'versions before 8 are unmaintained', applies: (version) => major(version) < 8 },
  { name: 'jwks-rsa', why: 'versions before 2 are unmaintained', applies: (version) => major(version) < 2 },
  { name: 'node-fetch', why: 'v2 is in maintenance only; Node has fetch', applies: (version) => major(version) < 3 },
  { name: 'adal-node', why: 'ADAL is retired; use MSAL' },
  { name: 'uuid', why: 'versions before 7 are deprecated', applies: (version) => major(version) < 7 },
];

describe('production dependencies', () => {
  it('are read from a v3 lockfile', () => {
    expect(lock.lockfileVersion).toBeGreaterThanOrEqual(3);
    expect(productionPackages.length).toBeGreaterThan(10);
  });

  it('include no package known to be deprecated or archived', () => {
    const offenders = productionPackages.flatMap(({ name, version }) =>
      REFUSED.filter((rule) => rule.name === name && (rule.applies?.(version) ?? true)).map((rule) => `${name}@${version}: ${rule.why}`),
    );
    expect(offenders).toEqual([]);
  });

  it('are all pinned by the lockfile', () => {
    expect(productionPackages.filter(({ version }) => version === '')).toEqual([]);
  });
});

/**
 * Packages allowed to run an install script, and why. npm runs dependencies' install scripts on every
 * `npm install` and `npm ci`: npm 10 (bundled with Node 20 and 22) silently, npm 11 (from 11.16) with a warning about
 * scripts no `allowScripts` entry covers. Only npm 12 blocks them by default.
 */
const INSTALL_SCRIPTS: Readonly<Record<string, string>> = {
  '@scarf/scarf': "swagger-ui-dist's install analytics; switched off by scarfSettings in package.json (checked below)",
  '@parcel/watcher': 'dev only: builds or picks its native file watcher',
  'unrs-resolver': 'dev only: picks its native resolver binary',
  esbuild:
    'dev only (bundles the sign-in page): checks that its platform binary package (@esbuild/<platform>) is installed, fetching that package from the npm registry only if npm skipped the optional dependency',
  protobufjs:
    "dev only (under azurite's telemetry libraries): compares the version range its dependents ask for and may print a warning; reads package.json files only",
};

describe('install scripts', () => {
  const rootManifest = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    readonly scarfSettings?: { readonly enabled?: unknown };
  };

  it('come only from packages reviewed for what they do at install time', () => {
    const withScripts = Object.entries(lock.packages)
      .filter(([path, entry]) => path.startsWith('node_modules/') && entry.hasInstallScript === true)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(withScripts.filter((name) => !Object.hasOwn(INSTALL_SCRIPTS, name))).toEqual([]);
  });

  it('switch Scarf off in the root package.json, where its report script looks on every install path', () => {
    expect(rootManifest.scarfSettings).toEqual({ enabled: false });
  });

  describe("@scarf/scarf's postinstall, run as npm runs it during npm ci", () => {
    let server: Server;
    const reports: string[] = [];

    beforeAll(async () => {
      // Stands in for scarf.sh: report.js sends to localhost over plain HTTP when SCARF_LOCAL_PORT is set.
      server = createServer((req, res) => {
        reports.push(`${req.method ?? ''} ${req.url ?? ''}`);
        res.end('{}');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });

    afterAll(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    it('sends nothing, because the project opted out', async () => {
      // report.js gives `npm ls` only 3 s, which a busy runner can exceed (and then it reports nothing by
      // accident). The tree is read here without that limit and handed to report.js's own decision logic.
      // npm ls exits non-zero on any oddity of the tree (an extraneous package) but still prints it, and
      // report.js uses that output too.
      const tree = await promisify(execFile)('npm', ['ls', '@scarf/scarf', '--json', '--long'], {
        cwd: PROJECT_ROOT,
        maxBuffer: 64 * 1024 * 1024,
      }).then(
        ({ stdout }) => stdout,
        (error: { stdout?: string }) => {
          if (!error.stdout) throw error;
          return error.stdout;
        },
      );
      const script = `
        const scarf = require(${JSON.stringify(join(PROJECT_ROOT, 'node_modules', '@scarf', 'scarf', 'report.js'))});
        let tree = '';
        process.stdin.on('data', (chunk) => { tree += chunk; });
        process.stdin.on('end', () => {
          scarf.getDependencyInfo = () => new Promise((resolve, reject) => scarf.processDependencyTreeOutput(resolve, reject)(null, tree, ''));
          scarf.reportPostInstall().then(() => console.log('reported'), (error) => console.log('not reported: ' + error.message));
        });`;
      // The environment of an install with no opt-out of its own: only the package.json may switch it off.
      const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', INIT_CWD: PROJECT_ROOT };
      env['SCARF_LOCAL_PORT'] = String((server.address() as AddressInfo).port);
      const child = spawn(process.execPath, ['-e', script], {
        cwd: join(PROJECT_ROOT, 'node_modules', '@scarf', 'scarf'),
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
      });
      child.stdin.end(tree);
      await new Promise((resolve) => child.once('exit', resolve));

      expect(output.trim()).toBe('not reported: Scarf has been disabled via a package.json in the dependency chain.');
      expect(reports).toEqual([]);
    });
  });
});
