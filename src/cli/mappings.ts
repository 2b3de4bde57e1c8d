/**
 * `npm run -s mappings -- <audit | seal [--apply]> [--json]`: audit the identity mappings of every
 * user and seal the ones the original sample (or an older key) left behind. `--help` says more; the
 * command itself lives in admin/mappings-command.ts.
 */

import { runMappingsCommand } from '../admin/mappings-command';
import { loadDotEnv } from '../config/dotenv';

loadDotEnv();
runMappingsCommand(process.argv.slice(2), { env: process.env, cwd: process.cwd(), stdout: process.stdout, stderr: process.stderr }).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
