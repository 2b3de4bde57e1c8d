/**
 * `npm run -s mappings -- audit | seal [--apply] | seal --adopt [--apply] [--plan <file>] [--after-go-live]
 * | copy --to table [--apply]` (and `--json`): audit the identity mappings of every user, re-seal those
 * under an older key, adopt the unsealed ones the original sample left behind (only as a reviewed plan
 * lists them), and copy the sealed ones to the table store.
 * `--help` says more; the command itself lives in admin/mappings-command.ts.
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
