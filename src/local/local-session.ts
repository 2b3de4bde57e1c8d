import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

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

export function sessionFilePath(directory: string = process.cwd()): string {
  return join(directory, '.local-azure', 'session.json');
}

export async function writeLocalSession(session: LocalSession, file: string = sessionFilePath()): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, `${JSON.stringify(session, null, 2)}\n`, { mode: 0o600 });
}

export async function readLocalSession(file: string = sessionFilePath()): Promise<LocalSession | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LocalSession;
  } catch {
    return undefined;
  }
}

/** Remove the session file, unless another local-mode process has written its own there since. */
export async function removeLocalSession(file: string = sessionFilePath(), pid: number = process.pid): Promise<void> {
  const session = await readLocalSession(file);
  if (session !== undefined && session.pid !== pid) return;
  await rm(file, { force: true });
}
