import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * What a running local-mode service tells the `token` command: where the Entra ID emulator is and
 * which CA to trust for it. Only public material (a URL, a CA certificate) is written; the signing
 * keys and the client secret never leave the process.
 */
export interface LocalSession {
  readonly serviceUrl: string;
  readonly entraUrl: string;
  readonly tenantId: string;
  readonly caCertPem: string;
  readonly pid: number;
}

/**
 * What the same service tells the admin command (`npm run mappings`), in a file of its own, readable
 * by this user only: the settings that compose the service on this run's emulators. They include
 * this run's secrets (the emulators' client secret and ACS access key, the seal key), which is why
 * they are not in the session file; all of them die with the run.
 */
export interface LocalAdmin {
  /** ENTRA_*, GRAPH_BASE_URL, ACS_CONNECTION_STRING and MAPPING_SEAL_KEYS of this run. */
  readonly settings: Readonly<Record<string, string>>;
  readonly caCertPem: string;
  readonly pid: number;
}

export function sessionFilePath(directory: string = process.cwd()): string {
  return join(directory, '.local-azure', 'session.json');
}

/** The admin file sits next to the session file it belongs to. */
export function adminFilePath(sessionFile: string = sessionFilePath()): string {
  return join(dirname(sessionFile), 'admin.json');
}

/**
 * Write a fresh file only this user can read: removed first, then created exclusively, so neither
 * an older file's looser mode nor a link planted in its place decides where the content goes.
 */
async function writePrivateJson(file: string, content: unknown): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await rm(file, { force: true });
  await writeFile(file, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Remove a file this process wrote (session or admin), unless another local-mode process has written its own there since. */
export async function removeLocalFile(file: string, pid: number = process.pid): Promise<void> {
  const written = await readJson<{ pid?: unknown }>(file);
  if (written !== undefined && written.pid !== pid) return;
  await rm(file, { force: true });
}

export async function writeLocalSession(session: LocalSession, file: string = sessionFilePath()): Promise<void> {
  await writePrivateJson(file, session);
}

export async function readLocalSession(file: string = sessionFilePath()): Promise<LocalSession | undefined> {
  return readJson<LocalSession>(file);
}

/** Remove the session file, unless another local-mode process has written its own there since. */
export async function removeLocalSession(file: string = sessionFilePath(), pid: number = process.pid): Promise<void> {
  await removeLocalFile(file, pid);
}

export async function writeLocalAdmin(admin: LocalAdmin, file: string = adminFilePath()): Promise<void> {
  await writePrivateJson(file, admin);
}

export async function readLocalAdmin(file: string = adminFilePath()): Promise<LocalAdmin | undefined> {
  return readJson<LocalAdmin>(file);
}
