import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Builds the sign-in page (client/web/build.mjs, as `npm run build` does) into `outDir`. */
export async function buildWebPageInto(outDir: string): Promise<void> {
  await execFileAsync(process.execPath, [join(__dirname, '..', '..', 'client', 'web', 'build.mjs'), '--out', outDir]);
}
