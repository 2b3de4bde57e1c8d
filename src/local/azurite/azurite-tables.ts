/**
 * Azurite's Table service on loopback, in memory, over https, in a child process: the local stand-in
 * for Azure Table Storage (MAPPING_STORE=table).
 *
 * Why a child process: loading Azurite costs about 500 modules (3,200 with its telemetry package,
 * applicationinsights, which also patches console and require in the process that loads it). Kept in
 * its own process, it leaves the service (or the test worker) untouched, is killed on close, and
 * exits by itself when its parent goes away.
 *
 * Why a fresh account key each start: local mode never ships a fixed credential, and Azurite's
 * well-known devstoreaccount1 key is public. Azurite checks SharedKey signatures, so only this key works.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { AZURITE_CHILD_PROGRAM, type AzuriteChildReady, type AzuriteChildRequest, type AzuriteModulePaths } from './azurite-child-program';
import { azuriteChildEnvironment } from './azurite-environment';

export interface AzuriteTablesOptions {
  /** The server certificate and key (PEM); clients must trust the CA that signed it. */
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  /** Port to bind on 127.0.0.1; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Azurite's `--oauth basic`: bearer tokens are accepted too, checked only as Azurite does (no signature check). */
  readonly oauth?: boolean;
}

export interface AzuriteTables {
  /** The table endpoint including the account path, e.g. `https://127.0.0.1:49152/acsauthlocal`. */
  readonly url: string;
  readonly accountName: string;
  /** `DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;TableEndpoint=<url>;` */
  readonly connectionString: string;
  /** This start's random account key, so tests can check it never leaks. */
  readonly accountKey: string;
  /** The child process's id. */
  readonly pid: number;
  /** Kill the child and wait for it to exit; idempotent. */
  close(): Promise<void>;
}

/** Lowercase letters and digits, 3 to 24, as Azure storage account names are. */
export const LOCAL_TABLE_ACCOUNT = 'acsauthlocal';

const HOST = '127.0.0.1';
const START_DEADLINE_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const STDERR_TAIL_CHARS = 4_000;
// Longer than the SDK's idle keep-alive, so a reused connection is never closed under a request.
const KEEP_ALIVE_SECONDS = 65;

export async function startAzuriteTables(options: AzuriteTablesOptions): Promise<AzuriteTables> {
  const modules = resolveAzuriteModules();
  // 64 bytes, like the keys of a real storage account.
  const accountKey = randomBytes(64).toString('base64');
  const child = spawn(process.execPath, ['-e', AZURITE_CHILD_PROGRAM], {
    env: azuriteChildEnvironment(),
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const stderr = keepTail(child);
  const request: AzuriteChildRequest = {
    modules,
    host: HOST,
    port: options.port ?? 0,
    accountName: LOCAL_TABLE_ACCOUNT,
    accountKey,
    certPem: options.tls.certPem,
    keyPem: options.tls.keyPem,
    oauth: options.oauth ?? false,
    keepAliveSeconds: KEEP_ALIVE_SECONDS,
  };
  let port: number;
  try {
    port = await waitUntilReady(child, request, stderr);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  letParentExitFirst(child);
  const url = `https://${HOST}:${port}/${LOCAL_TABLE_ACCOUNT}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    accountName: LOCAL_TABLE_ACCOUNT,
    accountKey,
    connectionString: `DefaultEndpointsProtocol=https;AccountName=${LOCAL_TABLE_ACCOUNT};AccountKey=${accountKey};TableEndpoint=${url};`,
    pid: child.pid ?? 0,
    close: () => (closing ??= stopChild(child)),
  };
}

/** Azurite's main is a VS Code extension, so its table modules are loaded by path; resolved here so a missing devDependency says so. */
function resolveAzuriteModules(): AzuriteModulePaths {
  const resolve = (path: string): string => require.resolve(`azurite/dist/src/${path}`, { paths: [__dirname] });
  try {
    return {
      tableServer: resolve('table/TableServer'),
      tableConfiguration: resolve('table/TableConfiguration'),
      telemetry: resolve('common/Telemetry'),
    };
  } catch (cause) {
    throw new Error(
      'Azurite is not installed. It is a development dependency, used only by local mode with MAPPING_STORE=table; ' +
        'run `npm ci` (with devDependencies) in a checkout of this repository.',
      { cause },
    );
  }
}

/** The last few thousand characters the child wrote to stderr (it is drained all along, so it never blocks). */
function keepTail(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-STDERR_TAIL_CHARS);
  });
  return () => tail.trim();
}

function waitUntilReady(child: ChildProcess, request: AzuriteChildRequest, stderr: () => string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const fail = (reason: string): void => {
      cleanUp();
      const said = stderr();
      reject(new Error(`Azurite (tables) did not start: ${reason}${said === '' ? '' : `\n${said}`}`));
    };
    const onMessage = (message: unknown): void => {
      const port = (message as Partial<AzuriteChildReady> | null)?.port;
      if (typeof port !== 'number') return;
      cleanUp();
      resolve(port);
    };
    // stderr may still be arriving when the process exits: 'close' waits for its streams.
    const onClose = (code: number | null, signal: NodeJS.Signals | null): void =>
      fail(`the child exited (${signal ?? `code ${String(code)}`})`);
    const onError = (error: Error): void => fail(error.message);
    const timer = setTimeout(() => fail(`no answer within ${START_DEADLINE_MS / 1000} s`), START_DEADLINE_MS);
    const cleanUp = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage).off('close', onClose).off('error', onError);
    };
    child.on('message', onMessage).once('close', onClose).once('error', onError);
    child.send(request, (error) => {
      if (error) fail(`the request could not be sent: ${error.message}`);
    });
  });
}

/**
 * Once started, the child must not keep the parent alive: a service that exits without close() takes
 * its Azurite with it (the child exits when the IPC channel disconnects).
 */
function letParentExitFirst(child: ChildProcess): void {
  child.unref();
  child.channel?.unref();
  (child.stderr as { unref?: () => void } | null)?.unref?.();
}

/** SIGTERM, then SIGKILL if it is still there after a grace period; resolves once it has exited. */
function stopChild(child: ChildProcess): Promise<void> {
  const gone = child.pid === undefined || child.exitCode !== null || child.signalCode !== null;
  if (gone) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
