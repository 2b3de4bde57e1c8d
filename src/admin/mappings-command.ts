/**
 * `npm run mappings -- <audit|seal> [--apply] [--adopt-unsealed-after-cutover] [--json]`: argument
 * parsing, where the settings come from (Azure settings, or the running local mode's admin file),
 * printing and exit status. The entry point (cli/mappings.ts) only hands it the process's
 * arguments, environment and streams, so tests run the whole command in-process against the
 * emulators.
 */
import { composeMappingAdmin } from '../composition-root';
import { ConfigError, loadConfig, type Config } from '../config/config';
import { adminFilePath, readLocalAdmin, sessionFilePath } from '../local/local-session';
import { createLogger } from '../observability/logger';
import { describeStartupError, wantsLocalMode } from '../server';
import type { MaintenanceProgress } from './mapping-maintenance';
import { ADOPT_AFTER_CUTOVER_FLAG, formatAudit, formatSealLine, formatSealSummary } from './mapping-report';

export const USAGE = `usage: npm run -s mappings -- <audit | seal [--apply] [${ADOPT_AFTER_CUTOVER_FLAG}]> [--json]

Checks and seals the identity mappings (the Graph open extension GRAPH_EXTENSION_NAME) of every user.

  audit          Report how many mappings are sealed under the current key and under each older
                 key of MAPPING_SEAL_KEYS, how many seals the service made and how many this
                 command adopted, how many mappings are unsealed (no_seal) or broken, whether
                 unsealed mappings may still be adopted, and every ACS identity that several users'
                 mappings name (duplicates). Writes nothing.
  seal           Dry run: list what sealing would write. Writes nothing.
  seal --apply   Re-seal the mappings under an older key (each keeps its origin), and adopt (seal)
                 the unsealed ones, but only while no mapping carries a service seal, i.e. before
                 the service went live: after that an unsealed mapping is a user's own write, and
                 is listed as not adopted (that user gets a new identity with POST /api/user).
                 Never seals a broken mapping, nor a duplicate: when exactly one holder's seal
                 verifies, that holder is maintained and the others are listed as forgeries.
                 Reads each mapping again right before writing it and leaves it alone if it
                 changed since the scan. Safe to repeat: an interrupted or partly failed run is
                 finished by running it again (it rescans, skips what is done).
  ${ADOPT_AFTER_CUTOVER_FLAG}
                 With seal: adopt unsealed mappings even though the service is live. RISK: any
                 user can write an unsealed mapping naming an ACS identity nobody maps (one the
                 service left alive when it replaced or removed an untrusted mapping); this seals
                 it for them, and they get its tokens, chats and calls. Use it only for mappings
                 you know the original sample wrote (after a rollback to it, say), having checked
                 each one the dry run lists.
  --json         Print the report as JSON.
  --help         Print this text.

Adopting vouches for what an unsealed mapping says, and users can write their own mapping: run
audit first, and seal right after moving from the original sample, before the service goes live.

Settings: with Azure settings (the environment, or .env outside production) it works on Azure with
the API's own credential and an app-only Graph token (application permission User.Read.All for
audit, User.ReadWrite.All for seal --apply). With none, it works on the local mode that
'npm start' runs in this folder.

Exit status: 0 when it ran (whatever audit found), 1 when it could not run, 2 for a usage error
(no command included), 3 when seal --apply could not write every mapping (run it again).
`;

export const EXIT = { ok: 0, error: 1, usage: 2, incomplete: 3 } as const;

export type MappingsArguments =
  /** `asked`: --help; otherwise no command was given (a usage error). */
  | { readonly verb: 'help'; readonly asked: boolean }
  | { readonly verb: 'audit'; readonly json: boolean }
  | { readonly verb: 'seal'; readonly json: boolean; readonly apply: boolean; readonly adoptUnsealedAfterCutover: boolean };

export class UsageError extends Error {
  constructor(problem: string) {
    super(`${problem}\n\n${USAGE}`);
    this.name = 'UsageError';
  }
}

export function parseMappingsArguments(argv: readonly string[]): MappingsArguments {
  const flags = new Set(argv.filter((argument) => argument.startsWith('-')));
  const words = argv.filter((argument) => !argument.startsWith('-'));
  if (flags.has('--help') || flags.has('-h')) return { verb: 'help', asked: true };
  if (argv.length === 0) return { verb: 'help', asked: false };
  const [verb, ...extra] = words;
  if (verb === undefined) throw new UsageError('no command given: audit or seal');
  if (verb !== 'audit' && verb !== 'seal') throw new UsageError(`unknown command '${verb}'`);
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0] as string}'`);
  const allowed = verb === 'seal' ? ['--json', '--apply', ADOPT_AFTER_CUTOVER_FLAG] : ['--json'];
  const unknown = [...flags].find((flag) => !allowed.includes(flag));
  if (unknown !== undefined) throw new UsageError(`unknown option '${unknown}' for ${verb}`);
  const json = flags.has('--json');
  return verb === 'audit' ? { verb, json } : { verb, json, apply: flags.has('--apply'), adoptUnsealedAfterCutover: flags.has(ADOPT_AFTER_CUTOVER_FLAG) };
}

/** What the command runs with: the process's arguments, environment, working folder and streams. */
export interface CommandIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

const START_LOCAL = "start the service with 'npm start' in this folder first";

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Azure settings as the service reads them, or the running local mode's (the same composition as `npm start`'s). */
async function loadSettings(io: CommandIo): Promise<{ config: Config; trustedCaPem?: string }> {
  if (!wantsLocalMode(io.env)) return { config: loadConfig(io.env) };
  const file = adminFilePath(sessionFilePath(io.cwd));
  const admin = await readLocalAdmin(file);
  if (admin === undefined) throw new Error(`no local mode is running here (${file} not found): ${START_LOCAL}`);
  if (!isRunning(admin.pid)) throw new Error(`the local mode that wrote ${file} (pid ${admin.pid}) is not running any more: ${START_LOCAL}`);
  return { config: loadConfig({ NODE_ENV: 'development', ...io.env, ...admin.settings }), trustedCaPem: admin.caCertPem };
}

/** Progress goes to stderr, so stdout holds only the report (and `--json` stays parseable). */
function progressTo(io: CommandIo, json: boolean): MaintenanceProgress {
  return {
    scanned: (users) => {
      if (users % 1000 === 0) io.stderr.write(`scanning: ${users} users read\n`);
    },
    throttled: (waitMs) => io.stderr.write(`Microsoft Graph is throttling: waiting ${(waitMs / 1000).toFixed(1)} s\n`),
    ...(json ? {} : { user: (line) => io.stdout.write(formatSealLine(line)) }),
  };
}

async function execute(args: Exclude<MappingsArguments, { verb: 'help' }>, io: CommandIo): Promise<number> {
  const { config, trustedCaPem } = await loadSettings(io);
  // Errors reach the operator as the command's own message; msal's warnings (e.g. "No client info in
  // response" on every client-credentials token) would only bury the report.
  const logger = createLogger({ level: 'error', destination: { write: (line: string) => io.stderr.write(line) } });
  const admin = composeMappingAdmin(config, { logger, ...(trustedCaPem === undefined ? {} : { trustedCaPem }) });
  try {
    const progress = progressTo(io, args.json);
    if (args.verb === 'audit') {
      const report = await admin.maintenance.audit(progress);
      io.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatAudit(report));
      return EXIT.ok;
    }
    const report = await admin.maintenance.seal({ apply: args.apply, adoptUnsealedAfterCutover: args.adoptUnsealedAfterCutover, progress });
    io.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatSealSummary(report));
    return report.counts.failed + report.counts.not_attempted > 0 ? EXIT.incomplete : EXIT.ok;
  } finally {
    await admin.close();
  }
}

/** Run the command; resolves to the exit status. */
export async function runMappingsCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  try {
    const args = parseMappingsArguments(argv);
    if (args.verb === 'help') {
      (args.asked ? io.stdout : io.stderr).write(USAGE);
      return args.asked ? EXIT.ok : EXIT.usage;
    }
    return await execute(args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(error.message);
      return EXIT.usage;
    }
    if (error instanceof ConfigError) io.stderr.write(describeStartupError(error));
    else io.stderr.write(`mappings: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.error;
  }
}
