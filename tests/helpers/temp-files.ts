import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A temporary folder for the enclosing `describe` block (or file), removed after its tests, and a
 * writer for files in it readable only by this user (as a private key file should be).
 */
export interface TempFolder {
  /** The folder itself. */
  folder(): string;
  /** A path in the folder, without creating anything. */
  path(name: string): string;
  /** Write a file in the folder (mode 0600) and return its path. */
  file(name: string, content: string): string;
}

export function useTempFolder(prefix: string): TempFolder {
  let folder: string | undefined;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => {
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });
  const current = (): string => {
    if (folder === undefined) throw new Error('the temporary folder is used outside a test');
    return folder;
  };
  return {
    folder: current,
    path: (name) => join(current(), name),
    file(name, content) {
      const path = join(current(), name);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    },
  };
}
