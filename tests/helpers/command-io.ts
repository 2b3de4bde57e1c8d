import type { CommandIo } from '../../src/admin/mappings-command';

/** What an admin command printed, for a test to read back. */
export interface CapturedIo extends CommandIo {
  out(): string;
  err(): string;
}

/** A CommandIo that keeps what the command writes to stdout and stderr, run in `cwd` with `env`. */
export function capturedIo(cwd: string, env: CommandIo['env'] = {}): CapturedIo {
  let out = '';
  let err = '';
  return {
    env,
    cwd,
    stdout: { write: (text: string) => (out += text) },
    stderr: { write: (text: string) => (err += text) },
    out: () => out,
    err: () => err,
  };
}
