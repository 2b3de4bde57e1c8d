import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';

import AdmZip from 'adm-zip';

/**
 * `npm run package`: builds `dist-package/acs-auth-server.zip` for App Service zip deploy. The zip is
 * the complete, runnable app (compiled JS, a trimmed package.json and the production dependencies
 * copied from the local node_modules), so App Service needs no build step and no registry access.
 * Nothing here touches the network: the dependency tree comes from package-lock.json and node_modules.
 */

/** Where `npm run package` writes the zip, relative to the project root. */
export const DEFAULT_PACKAGE_FILE = join('dist-package', 'acs-auth-server.zip');

/** The entry's modification time in the zip: fixed, so two builds of the same tree give the same bytes. */
const FIXED_ZIP_TIME = new Date(2000, 0, 1, 0, 0, 0);
/** "Version made by": Unix (3) and zip spec 2.0, so unzip tools on Linux apply the stored file modes. */
const MADE_BY_UNIX = (3 << 8) | 20;

export interface PackageOptions {
  /** The repository root (holds package.json, package-lock.json, node_modules, src). */
  readonly projectRoot: string;
  /** The zip to write; its folder is created if needed. */
  readonly outFile: string;
}

export interface PackageResult {
  readonly outFile: string;
  /** Number of files in the zip. */
  readonly files: number;
  /** Size of the zip in bytes. */
  readonly bytes: number;
  /** The zip's entry names, in the (sorted) order they were written. */
  readonly entries: readonly string[];
}

/** The node_modules folders package-lock.json lists, split by whether production needs them. */
export interface LockedPackages {
  /** Lock keys (`node_modules/a`, `node_modules/a/node_modules/b`) the production tree needs. */
  readonly production: readonly LockedPackage[];
  /** Lock keys only dev dependencies need. */
  readonly devOnly: readonly string[];
}

export interface LockedPackage {
  readonly path: string;
  readonly version: string | undefined;
  /** Optional (platform-specific) packages may legitimately be missing from node_modules. */
  readonly optional: boolean;
}

interface LockEntry {
  readonly version?: string;
  readonly dev?: boolean;
  readonly devOptional?: boolean;
  readonly optional?: boolean;
  readonly link?: boolean;
}

interface ProjectManifest {
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  readonly license?: string;
  readonly engines?: Readonly<Record<string, string>>;
  readonly main?: string;
  readonly dependencies?: Readonly<Record<string, string>>;
}

interface PackageFile {
  readonly name: string;
  readonly content: Buffer;
  readonly mode: number;
}

const execFileAsync = promisify(execFile);

/**
 * Reads package-lock.json (v2/v3) and splits its `packages` into what production needs and what only
 * development needs. npm marks a package `dev` when only devDependencies reach it; `devOptional`
 * means production reaches it as an optional dependency, so it ships when it is installed.
 */
export async function readLockedPackages(projectRoot: string): Promise<LockedPackages> {
  const lock = JSON.parse(await readFile(join(projectRoot, 'package-lock.json'), 'utf8')) as {
    readonly lockfileVersion?: number;
    readonly packages?: Readonly<Record<string, LockEntry>>;
  };
  if (lock.packages === undefined || (lock.lockfileVersion ?? 0) < 2) {
    throw new Error('package-lock.json has no "packages" section (lockfileVersion 2 or later is required); run npm install with npm 7+');
  }
  const production: LockedPackage[] = [];
  const devOnly: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '') continue;
    if (!path.startsWith('node_modules/')) {
      throw new Error(
        `package-lock.json lists '${path}' outside node_modules (a workspace or file: dependency); the package script does not support it`,
      );
    }
    if (entry.dev === true) {
      devOnly.push(path);
      continue;
    }
    if (entry.link === true)
      throw new Error(`production dependency '${path}' is a link (npm link / file:); the package must hold real files`);
    production.push({ path, version: entry.version, optional: entry.optional === true || entry.devOptional === true });
  }
  production.sort((a, b) => compareNames(a.path, b.path));
  devOnly.sort(compareNames);
  return { production, devOnly };
}

/** Builds the zip. Compiles `src/` and the sign-in page into a throwaway folder first, so a stale or partial `dist/` never ships. */
export async function buildPackage(options: PackageOptions): Promise<PackageResult> {
  const projectRoot = await realpath(resolve(options.projectRoot));
  const outFile = resolve(options.outFile);
  const manifest = JSON.parse(await readFile(join(projectRoot, 'package.json'), 'utf8')) as ProjectManifest;
  const locked = await readLockedPackages(projectRoot);
  assertLockCoversDependencies(manifest, locked);

  // The cheap checks (documents, node_modules against the lock, links) run before the compile, so they fail fast.
  const files: PackageFile[] = [];
  files.push({ name: 'package.json', content: Buffer.from(`${JSON.stringify(runtimeManifest(manifest), null, 2)}\n`), mode: 0o644 });
  for (const name of ['LICENSE.md', 'README.md']) files.push(await readRegularFile(projectRoot, name));
  for (const pkg of locked.production) files.push(...(await collectDependency(projectRoot, pkg)));

  const staging = await mkdtemp(join(tmpdir(), 'acs-auth-server-package-'));
  try {
    const distDir = join(staging, 'dist');
    await compile(projectRoot, distDir);
    files.push(...(await collectTree(distDir, 'dist', distDir)));

    files.sort((a, b) => compareNames(a.name, b.name));
    assertUnique(files);

    // adm-zip would re-sort with localeCompare, which depends on the machine's locale; keep ours.
    const zip = new AdmZip(undefined, { noSort: true });
    for (const file of files) {
      const entry = zip.addFile(file.name, file.content, '', file.mode);
      entry.header.time = FIXED_ZIP_TIME;
      entry.header.made = MADE_BY_UNIX;
    }
    const buffer = await zip.toBufferPromise();
    await mkdir(dirname(outFile), { recursive: true });
    // Write beside the target and rename, so a failed run never leaves a half-written zip to deploy.
    const partial = `${outFile}.partial`;
    await writeFile(partial, buffer);
    await rename(partial, outFile);
    return { outFile, files: files.length, bytes: buffer.length, entries: files.map((file) => file.name) };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * The package.json App Service runs: what `npm start` and Node's resolution need, and nothing that invites a build.
 * Nothing installs inside the package (it ships its node_modules), but if someone does run npm install there (a
 * build turned on with SCM_DO_BUILD_DURING_DEPLOYMENT, or by hand), @scarf/scarf's postinstall reads this file:
 * `scarfSettings.enabled: false` keeps that install from reporting to scarf.sh too.
 */
function runtimeManifest(manifest: ProjectManifest): Record<string, unknown> {
  return {
    name: manifest.name,
    version: manifest.version,
    private: true,
    ...(manifest.description === undefined ? {} : { description: manifest.description }),
    ...(manifest.license === undefined ? {} : { license: manifest.license }),
    ...(manifest.engines === undefined ? {} : { engines: manifest.engines }),
    main: manifest.main ?? 'dist/main.js',
    scripts: { start: 'node dist/main.js' },
    scarfSettings: { enabled: false },
    dependencies: manifest.dependencies ?? {},
  };
}

/** A dependency in package.json that the lock does not list as production would be missing at run time. */
function assertLockCoversDependencies(manifest: ProjectManifest, locked: LockedPackages): void {
  const production = new Set(locked.production.map((pkg) => pkg.path));
  const missing = Object.keys(manifest.dependencies ?? {}).filter((name) => !production.has(`node_modules/${name}`));
  if (missing.length > 0) {
    throw new Error(`package-lock.json is out of date: no production entry for ${missing.join(', ')}; run npm install`);
  }
}

async function compile(projectRoot: string, outDir: string): Promise<void> {
  const tsc = join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    // Not incremental: `npm start`'s build info describes dist/, and must not learn of this folder.
    await execFileAsync(
      process.execPath,
      [tsc, '-p', join(projectRoot, 'tsconfig.build.json'), '--outDir', outDir, '--incremental', 'false'],
      {
        cwd: projectRoot,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
  } catch (error) {
    throw new Error(`tsc -p tsconfig.build.json failed:\n${processOutputOf(error)}`, { cause: error });
  }
  // The sign-in page (served from dist/web), bundled as `npm run build` bundles it.
  try {
    await execFileAsync(process.execPath, [join(projectRoot, 'client', 'web', 'build.mjs'), '--out', join(outDir, 'web')], {
      cwd: projectRoot,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    throw new Error(`the sign-in page's build (client/web/build.mjs) failed:\n${processOutputOf(error)}`, { cause: error });
  }
}

/** What a failed child process printed (execFile's error carries its stdout and stderr), else the error's message. */
function processOutputOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const stdout = 'stdout' in error && typeof error.stdout === 'string' ? error.stdout : '';
  const stderr = 'stderr' in error && typeof error.stderr === 'string' ? error.stderr : '';
  return `${stdout}${stderr}`.trim() || error.message;
}

async function collectDependency(projectRoot: string, pkg: LockedPackage): Promise<PackageFile[]> {
  const directory = join(projectRoot, ...pkg.path.split('/'));
  let info;
  try {
    info = await lstat(directory);
  } catch {
    if (pkg.optional) return [];
    throw new Error(`production dependency '${pkg.path}' is not installed; run npm ci first`);
  }
  if (info.isSymbolicLink()) throw new Error(`production dependency '${pkg.path}' is a symbolic link; the package must hold real files`);
  if (!info.isDirectory()) throw new Error(`production dependency '${pkg.path}' is not a folder`);
  const installed = JSON.parse(await readFile(join(directory, 'package.json'), 'utf8')) as { readonly version?: string };
  if (pkg.version !== undefined && installed.version !== pkg.version) {
    throw new Error(
      `node_modules does not match package-lock.json: '${pkg.path}' is ${String(installed.version)}, the lock says ${pkg.version}; run npm ci`,
    );
  }
  // Nested node_modules hold separate lock entries, each judged on its own (dev or production).
  return collectTree(directory, pkg.path, await realpath(directory), new Set(['node_modules']));
}

/**
 * Every regular file under `directory`, sorted, named `<prefix>/<relative path>` with `/` separators.
 * A symbolic link is followed only when it stays inside `boundary` and points at a file; anything
 * else (a link out of the package, a link to a folder, a socket) stops the build.
 */
async function collectTree(
  directory: string,
  prefix: string,
  boundary: string,
  skipTopLevel: ReadonlySet<string> = new Set(),
): Promise<PackageFile[]> {
  const files: PackageFile[] = [];
  const walk = async (current: string, top: boolean): Promise<void> => {
    const names = (await readdir(current)).sort(compareNames);
    for (const name of names) {
      if (top && skipTopLevel.has(name)) continue;
      const path = join(current, name);
      const entryName = `${prefix}/${relative(directory, path).split(sep).join('/')}`;
      const info = await lstat(path);
      if (info.isDirectory()) {
        await walk(path, false);
      } else if (info.isFile()) {
        files.push({ name: entryName, content: await readFile(path), mode: info.mode & 0o777 });
      } else if (info.isSymbolicLink()) {
        const target = await realpath(path);
        if (target !== boundary && !target.startsWith(`${boundary}${sep}`)) {
          throw new Error(`${entryName} is a symbolic link to ${target}, outside ${boundary}; refusing to package it`);
        }
        const targetInfo = await stat(target);
        if (!targetInfo.isFile()) throw new Error(`${entryName} is a symbolic link to a folder; refusing to package it`);
        files.push({ name: entryName, content: await readFile(target), mode: targetInfo.mode & 0o777 });
      } else {
        throw new Error(`${entryName} is neither a file nor a folder; refusing to package it`);
      }
    }
  };
  await walk(directory, true);
  return files;
}

async function readRegularFile(projectRoot: string, name: string): Promise<PackageFile> {
  const path = join(projectRoot, name);
  const info = await lstat(path);
  if (!info.isFile()) throw new Error(`${name} must be a regular file in ${projectRoot}`);
  return { name, content: await readFile(path), mode: info.mode & 0o777 };
}

function assertUnique(files: readonly PackageFile[]): void {
  for (const [index, file] of files.entries()) {
    if (file.name === files[index - 1]?.name) throw new Error(`two files would be packaged as ${file.name}`);
  }
}

/** Code-unit order, independent of the machine's locale, so the zip's order is the same everywhere. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function formatSize(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

async function runFromCommandLine(): Promise<void> {
  const projectRoot = resolve(__dirname, '..');
  const result = await buildPackage({ projectRoot, outFile: join(projectRoot, DEFAULT_PACKAGE_FILE) });
  process.stdout.write(
    `packaged ${relative(projectRoot, result.outFile)}: ${result.files} files, ${formatSize(result.bytes)} (${result.bytes} bytes)\n`,
  );
}

if (require.main === module) {
  runFromCommandLine().catch((error: unknown) => {
    process.stderr.write(`package failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
