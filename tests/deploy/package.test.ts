import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

import AdmZip from 'adm-zip';

import { ACS_ID } from '../helpers/test-service';
import { buildPackage, readLockedPackages, type LockedPackages, type PackageResult } from '../../deploy/package';

// Compiling the app, zipping ~10k files and starting it from the unpacked zip takes a while on a 2-core runner.
jest.setTimeout(120_000);

const PROJECT_ROOT = resolve(__dirname, '..', '..');
/** Tools the app must never need at run time; if one ships, the production/dev split is wrong. */
const DEV_TOOLS = [
  'jest',
  'ts-jest',
  'typescript',
  'ts-node',
  'supertest',
  'adm-zip',
  'ajv',
  '@types/node',
  '@types/express',
  '@types/jest',
];

const execFileAsync = promisify(execFile);

interface NodeBinary {
  readonly path: string;
  readonly version: string;
}

/**
 * The Node binaries the unpacked app is started with: the one running the tests, and the one PACKAGE_TEST_NODE
 * names when that is another binary. `.ci/run` points it at its Node 22 (App Service's runtime line), so the package
 * starts on 22 whichever line runs the suite. Unset, the running Node alone; set to something that is not a runnable
 * Node binary, the suite fails rather than quietly testing less.
 */
function packageTestNodes(): readonly NodeBinary[] {
  const running: NodeBinary = { path: process.execPath, version: process.version };
  const extra = process.env['PACKAGE_TEST_NODE'];
  if (extra === undefined || extra === '') return [running];
  let version: string;
  try {
    version = execFileSync(extra, ['--version'], { encoding: 'utf8', timeout: 30_000 }).trim();
  } catch (error) {
    throw new Error(`PACKAGE_TEST_NODE=${extra} is not a runnable Node binary: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  if (realpathSync(extra) === realpathSync(process.execPath)) return [running];
  return [running, { path: extra, version }];
}

const PACKAGE_TEST_NODES = packageTestNodes();

interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** Plain node:http without keep-alive, so no pooled socket holds the child's shutdown open. */
function send(method: string, url: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolveAnswer, reject) => {
    const req = request(url, { method, agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the port from the server's JSON "listening" log line; rejects if the process exits first. */
function waitForListening(child: ChildProcess, output: { stdout: string; stderr: string }): Promise<number> {
  return new Promise((resolvePort, reject) => {
    let pending = '';
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        let record: { msg?: unknown; port?: unknown };
        try {
          record = JSON.parse(line) as { msg?: unknown; port?: unknown };
        } catch {
          continue;
        }
        if (record.msg === 'listening' && typeof record.port === 'number') {
          child.stdout?.off('data', onData);
          child.off('exit', onExit);
          resolvePort(record.port);
          return;
        }
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      reject(
        new Error(
          `the packaged app exited before listening (code ${String(code)}, signal ${String(signal)}):\n${output.stdout}\n${output.stderr}`,
        ),
      );
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
}

describe('npm run package (App Service zip deploy)', () => {
  let workDir: string;
  let appDir: string;
  let result: PackageResult;
  let locked: LockedPackages;
  let zip: AdmZip;

  beforeAll(async () => {
    // Outside the repository, so Node's module resolution cannot fall back to the repo's node_modules.
    workDir = await mkdtemp(join(tmpdir(), 'acs-auth-server-package-test-'));
    appDir = join(workDir, 'app');
    result = await buildPackage({ projectRoot: PROJECT_ROOT, outFile: join(workDir, 'acs-auth-server.zip') });
    locked = await readLockedPackages(PROJECT_ROOT);
    zip = new AdmZip(result.outFile);
    zip.extractAllTo(appDir, false, true);
    // tsc plus deflating ~95 MB is ~12 s of CPU, but several times that in wall time on a busy 2-core runner.
  }, 240_000);

  afterAll(async () => {
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
  });

  describe('the zip', () => {
    it('reports what it wrote', async () => {
      expect(result.bytes).toBe((await stat(result.outFile)).size);
      expect(result.files).toBe(result.entries.length);
      expect(zip.getEntries().map((entry) => entry.entryName)).toEqual(result.entries);
    });

    it('lists its entries in a fixed order with fixed times and Unix modes, so rebuilding the same tree gives the same zip', () => {
      const names = zip.getEntries().map((entry) => entry.entryName);
      expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      const times = new Set(zip.getEntries().map((entry) => entry.header.time.getTime()));
      expect(times.size).toBe(1);
      expect(new Set(zip.getEntries().map((entry) => entry.header.made >> 8))).toEqual(new Set([3]));
    });

    it('holds the compiled app, LICENSE.md and README.md, and no sources or tests', () => {
      for (const name of [
        'dist/main.js',
        'dist/server.js',
        'dist/cli/token.js',
        'dist/web/index.html',
        'dist/web/app.js',
        'dist/web/app.css',
        'dist/web/favicon.svg',
        'LICENSE.md',
        'README.md',
        'package.json',
      ]) {
        expect(result.entries).toContain(name);
      }
      const outsideDependencies = result.entries.filter((name) => !name.startsWith('node_modules/'));
      expect(outsideDependencies.filter((name) => /^(src|tests|deploy|bench|coverage|\.local-azure)\//.test(name))).toEqual([]);
      expect(outsideDependencies.filter((name) => name.endsWith('.ts'))).toEqual([]);
      for (const name of ['package-lock.json', '.env', 'tsconfig.json', 'jest.config.ts']) expect(result.entries).not.toContain(name);
    });

    it('carries a package.json that only starts the app: no dev dependencies, no build scripts, no install analytics', async () => {
      const source = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
      const shipped = JSON.parse(await readFile(join(appDir, 'package.json'), 'utf8')) as Record<string, unknown>;
      expect(shipped).toEqual({
        name: source['name'],
        version: source['version'],
        private: true,
        description: source['description'],
        license: source['license'],
        engines: source['engines'],
        main: 'dist/main.js',
        scripts: { start: 'node dist/main.js' },
        // An npm install run inside the unpacked app must not report to scarf.sh either.
        scarfSettings: { enabled: false },
        dependencies: source['dependencies'],
      });
    });

    it('contains every production package at its locked version', async () => {
      expect(locked.production.length).toBeGreaterThan(0);
      for (const pkg of locked.production) {
        const manifest = join(appDir, ...pkg.path.split('/'), 'package.json');
        if (pkg.optional && !existsSync(manifest)) continue;
        const { version } = JSON.parse(await readFile(manifest, 'utf8')) as { version?: string };
        expect({ path: pkg.path, version }).toEqual({ path: pkg.path, version: pkg.version });
      }
    });

    it('contains no dev-only package', async () => {
      const shipped = locked.devOnly.filter((path) => existsSync(join(appDir, ...path.split('/'))));
      expect(shipped).toEqual([]);
      for (const tool of DEV_TOOLS) expect(existsSync(join(appDir, 'node_modules', ...tool.split('/')))).toBe(false);
      expect(existsSync(join(appDir, 'node_modules', '.bin'))).toBe(false);
      const types = existsSync(join(appDir, 'node_modules', '@types')) ? await readdir(join(appDir, 'node_modules', '@types')) : [];
      expect(types).toEqual([]);
    });

    it('keeps file modes', async () => {
      // pino ships an executable CLI; its mode must survive zip and unzip.
      const original = (await stat(join(PROJECT_ROOT, 'node_modules', 'pino', 'bin.js'))).mode & 0o777;
      expect(original & 0o111).not.toBe(0);
      expect((await stat(join(appDir, 'node_modules', 'pino', 'bin.js'))).mode & 0o777).toBe(original);
    });
  });

  describe.each(PACKAGE_TEST_NODES)('the unpacked app, started with node $version dist/main.js outside the repository', (node) => {
    let child: ChildProcess | undefined;
    const output = { stdout: '', stderr: '' };
    // Only what a bare host has, plus the settings the app reads: no Azure setting means local mode.
    const env = {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? tmpdir(),
      PORT: '0',
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
    };

    afterAll(async () => {
      if (child?.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exitOf(child);
      }
    });

    it('serves /health and the full local flow, and exits 0 on SIGTERM', async () => {
      const started = spawn(node.path, ['dist/main.js'], { cwd: appDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      child = started;
      started.stdout.on('data', (chunk: Buffer) => {
        output.stdout += chunk.toString('utf8');
      });
      started.stderr.on('data', (chunk: Buffer) => {
        output.stderr += chunk.toString('utf8');
      });
      const exited = exitOf(started);
      const port = await waitForListening(started, output);
      const base = `http://localhost:${port}`;

      const health = await send('GET', `${base}/health`);
      expect(health).toEqual({ status: 200, body: JSON.stringify({ status: 'ok' }) });

      // Swagger UI's static files come from swagger-ui-dist: proves non-JS dependency files shipped too.
      expect((await send('GET', `${base}/api/docs/swagger-ui-bundle.js`)).status).toBe(200);
      // The sign-in page's bundle (built into the package, not from node_modules), served as in local mode.
      const page = await send('GET', `${base}/`);
      expect(page.status).toBe(200);
      expect(page.body).toContain('<script type="module" src="/app.js"></script>');
      expect((await send('GET', `${base}/app.js`)).status).toBe(200);

      const session = JSON.parse(await readFile(join(appDir, '.local-azure', 'session.json'), 'utf8')) as { serviceUrl: string };
      expect(session.serviceUrl).toBe(base);

      const { stdout: tokenOutput } = await execFileAsync(node.path, ['dist/cli/token.js', 'alice'], { cwd: appDir, env });
      const token = tokenOutput.trim();
      expect(token.split('.')).toHaveLength(3);

      const created = await send('POST', `${base}/api/user`, { Authorization: `Bearer ${token}` });
      expect(created.status).toBe(201);
      expect((JSON.parse(created.body) as { acsUserIdentity: string }).acsUserIdentity).toMatch(ACS_ID);

      started.kill('SIGTERM');
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(output.stdout).toContain('"msg":"stopped"');
      // The server removes its session file on a clean stop, so a stale one never points the CLI at nothing.
      expect(existsSync(join(appDir, '.local-azure', 'session.json'))).toBe(false);
    });
  });
});

/**
 * A minimal project (one production and one dev package) to drive the refusals. Every one of them
 * happens before the compile step, so these need no TypeScript in the fake project.
 */
async function createFakeProject(
  root: string,
  options: { readonly installedVersion?: string; readonly lockedDependencies?: readonly string[] } = {},
): Promise<void> {
  const locked = options.lockedDependencies ?? ['left'];
  await writeFile(
    join(root, 'package.json'),
    JSON.stringify({ name: 'fake', version: '1.0.0', dependencies: { left: '^1.0.0' }, devDependencies: { tool: '^1.0.0' } }),
  );
  const packages: Record<string, unknown> = {
    '': { name: 'fake', version: '1.0.0' },
    'node_modules/tool': { version: '1.0.0', dev: true },
  };
  for (const name of locked) packages[`node_modules/${name}`] = { version: '1.0.0' };
  packages['node_modules/fsevents'] = { version: '2.3.3', optional: true };
  packages['node_modules/watcher'] = { version: '1.0.0', devOptional: true };
  await writeFile(join(root, 'package-lock.json'), JSON.stringify({ name: 'fake', lockfileVersion: 3, packages }));
  await writeFile(join(root, 'LICENSE.md'), 'MIT\n');
  await writeFile(join(root, 'README.md'), '# fake\n');
  await mkdir(join(root, 'node_modules', 'left'), { recursive: true });
  await writeFile(
    join(root, 'node_modules', 'left', 'package.json'),
    JSON.stringify({ name: 'left', version: options.installedVersion ?? '1.0.0' }),
  );
  await writeFile(join(root, 'node_modules', 'left', 'index.js'), 'module.exports = 1;\n');
}

describe('buildPackage refuses an incomplete or unsafe tree', () => {
  let root: string;
  let outside: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'acs-auth-server-fake-project-'));
    outside = await mkdtemp(join(tmpdir(), 'acs-auth-server-outside-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('splits the lock into production and dev-only packages; optional ones may be absent', async () => {
    await createFakeProject(root);
    const locked = await readLockedPackages(root);
    expect(locked.devOnly).toEqual(['node_modules/tool']);
    expect(locked.production).toEqual([
      { path: 'node_modules/fsevents', version: '2.3.3', optional: true },
      { path: 'node_modules/left', version: '1.0.0', optional: false },
      { path: 'node_modules/watcher', version: '1.0.0', optional: true },
    ]);
  });

  it('when a symbolic link leads out of its package', async () => {
    await createFakeProject(root);
    await writeFile(join(outside, 'secret.txt'), 'not for the zip\n');
    await symlink(join(outside, 'secret.txt'), join(root, 'node_modules', 'left', 'secret.txt'));
    await expect(buildPackage({ projectRoot: root, outFile: join(root, 'out.zip') })).rejects.toThrow(
      /secret\.txt is a symbolic link to .*outside/,
    );
    expect(existsSync(join(root, 'out.zip'))).toBe(false);
  });

  it('when a production package is not installed', async () => {
    await createFakeProject(root);
    await rm(join(root, 'node_modules', 'left'), { recursive: true });
    await expect(buildPackage({ projectRoot: root, outFile: join(root, 'out.zip') })).rejects.toThrow(
      /'node_modules\/left' is not installed/,
    );
  });

  it('when node_modules does not match the lock', async () => {
    await createFakeProject(root, { installedVersion: '1.0.1' });
    await expect(buildPackage({ projectRoot: root, outFile: join(root, 'out.zip') })).rejects.toThrow(/does not match package-lock\.json/);
  });

  it('when the lock has no production entry for a dependency', async () => {
    await createFakeProject(root, { lockedDependencies: [] });
    await expect(buildPackage({ projectRoot: root, outFile: join(root, 'out.zip') })).rejects.toThrow(
      /out of date: no production entry for left/,
    );
  });
});
