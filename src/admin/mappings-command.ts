/**
 * `npm run mappings -- audit | seal [--apply] | seal --adopt [--apply] [--plan <file>] [--after-go-live]`
 * (and `--json`): argument parsing, where the settings come from (Azure settings, or the running
 * local mode's admin file), the adoption plan file, printing and exit status. The entry point
 * (cli/mappings.ts) only hands it the process's arguments, environment and streams, so tests run
 * the whole command in-process against the emulators.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';

import { composeMappingAdmin } from '../composition-root';
import { ConfigError, loadConfig, type Config } from '../config/config';
import { adminFilePath, readLocalAdmin, sessionFilePath } from '../local/local-session';
import { createLogger } from '../observability/logger';
import { describeStartupError, wantsLocalMode } from '../server';
import { parseAdoptionPlan, serializeAdoptionPlan, type AdoptionPair, type PlanScope } from './adoption-plan';
import type { MaintenanceProgress, SealReport } from './mapping-maintenance';
import { ADOPT_FLAG, AFTER_GO_LIVE_FLAG, formatAudit, formatSealLine, formatSealSummary, PLAN_FLAG } from './mapping-report';

export const USAGE = `usage: npm run -s mappings -- audit [--json]
       npm run -s mappings -- seal [--apply] [--json]
       npm run -s mappings -- seal ${ADOPT_FLAG} [${PLAN_FLAG} <file>] [${AFTER_GO_LIVE_FLAG}] [--json]
       npm run -s mappings -- seal ${ADOPT_FLAG} --apply ${PLAN_FLAG} <file> [${AFTER_GO_LIVE_FLAG}] [--json]

Checks and seals the identity mappings (the Graph open extension GRAPH_EXTENSION_NAME) of every user.

  audit          Report the mappings sealed under the current key and under each older key of
                 MAPPING_SEAL_KEYS (with the users each older key still seals), the seals the
                 service made and those this command adopted, the unsealed (no_seal) and broken
                 mappings, and every ACS identity several users' mappings name (duplicates).
                 Writes nothing.
  seal           Dry run of seal --apply. Writes nothing.
  seal --apply   Re-seal the mappings under an older key with the current one (each keeps its
                 origin): the step after a key rotation. Adopts nothing: unsealed mappings are
                 listed as not adopted. Never seals a broken mapping, nor a duplicate (when exactly
                 one holder's seal verifies, that holder is maintained and the others are listed as
                 forgeries). Every write attempt first reads the mapping again and leaves it alone
                 if it changed since the scan. A partly failed run is finished by running it again.
  seal ${ADOPT_FLAG} [${PLAN_FLAG} <file>]
                 Dry run of an adoption: list the unsealed mappings it would adopt (seal for their
                 users), and with ${PLAN_FLAG} write them to <file> as a JSON plan of (oid, acsUserId)
                 pairs. Review every pair: any user can write an unsealed mapping naming an identity
                 nobody maps, and adopting it gives them that identity's tokens, chats and calls.
  seal ${ADOPT_FLAG} --apply ${PLAN_FLAG} <file>
                 What seal --apply does, and adopt exactly the pairs of the plan whose mapping is
                 still unsealed and still names the planned id. Any other unsealed mapping is
                 listed as not in the plan.
  ${AFTER_GO_LIVE_FLAG}
                 With ${ADOPT_FLAG}: adopt although a mapping carries a service seal (the service is
                 live). Without it such a run adopts nothing. Use it only for mappings you know the
                 original sample wrote (after a rollback to it, say).
  --json         Print the report as JSON.
  --help         Print this text.

Settings: with Azure settings (the environment, or .env outside production) it works on Azure with
the API's own credential and an app-only Graph token (application permission User.Read.All for
audit and dry runs, User.ReadWrite.All for --apply). With none, it works on the local mode that
'npm start' runs in this folder.

Exit status: 0 when it ran (whatever audit found), 1 when it could not run, 2 for a usage error
(an invalid plan file included), 3 when seal --apply could not write every mapping (run it again).
`;

export const EXIT = { ok: 0, error: 1, usage: 2, incomplete: 3 } as const;

export type MappingsArguments =
  /** `asked`: --help; otherwise no command was given (a usage error). */
  | { readonly verb: 'help'; readonly asked: boolean }
  | { readonly verb: 'audit'; readonly json: boolean }
  | {
      readonly verb: 'seal';
      readonly json: boolean;
      readonly apply: boolean;
      readonly adopt: boolean;
      /** The plan file as given (relative to the working folder): written by a dry run, read by --apply. */
      readonly plan: string | undefined;
      readonly afterGoLive: boolean;
    };

export class UsageError extends Error {
  constructor(problem: string) {
    super(`${problem}\n\n${USAGE}`);
    this.name = 'UsageError';
  }
}

const RETIRED_FLAG = '--adopt-unsealed-after-cutover';

/** Flags, words, and the value of --plan (`--plan <file>` or `--plan=<file>`). */
function tokenize(argv: readonly string[]): { flags: Set<string>; words: string[]; plan: string | undefined } {
  const flags = new Set<string>();
  const words: string[] = [];
  let plan: string | undefined;
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index]!;
    if (argument === PLAN_FLAG || argument.startsWith(`${PLAN_FLAG}=`)) {
      const value = argument === PLAN_FLAG ? argv[(index += 1)] : argument.slice(PLAN_FLAG.length + 1);
      if (value === undefined || value === '' || value.startsWith('-')) throw new UsageError(`${PLAN_FLAG} needs a file name`);
      if (plan !== undefined) throw new UsageError(`${PLAN_FLAG} given twice`);
      plan = value;
      flags.add(PLAN_FLAG);
    } else if (argument.startsWith('-')) flags.add(argument);
    else words.push(argument);
  }
  return { flags, words, plan };
}

function sealArguments(flags: ReadonlySet<string>, plan: string | undefined, json: boolean): MappingsArguments {
  const apply = flags.has('--apply');
  const adopt = flags.has(ADOPT_FLAG);
  const afterGoLive = flags.has(AFTER_GO_LIVE_FLAG);
  if (!adopt && (plan !== undefined || afterGoLive))
    throw new UsageError(`${plan === undefined ? AFTER_GO_LIVE_FLAG : PLAN_FLAG} goes with ${ADOPT_FLAG}`);
  // Adoption writes only what an operator reviewed: never from a rescan alone.
  if (adopt && apply && plan === undefined)
    throw new UsageError(
      `seal ${ADOPT_FLAG} --apply needs ${PLAN_FLAG} <file>: the plan a dry run (seal ${ADOPT_FLAG} ${PLAN_FLAG} <file>) wrote and you reviewed`,
    );
  return { verb: 'seal', json, apply, adopt, plan, afterGoLive };
}

export function parseMappingsArguments(argv: readonly string[]): MappingsArguments {
  const { flags, words, plan } = tokenize(argv);
  if (flags.has('--help') || flags.has('-h')) return { verb: 'help', asked: true };
  if (argv.length === 0) return { verb: 'help', asked: false };
  if (flags.has(RETIRED_FLAG)) {
    throw new UsageError(
      `${RETIRED_FLAG} is gone: adopting takes a reviewed plan (seal ${ADOPT_FLAG} ${PLAN_FLAG} <file>, then seal ${ADOPT_FLAG} --apply ${PLAN_FLAG} <file>), with ${AFTER_GO_LIVE_FLAG} once the service is live`,
    );
  }
  const [verb, ...extra] = words;
  if (verb === undefined) throw new UsageError('no command given: audit or seal');
  if (verb !== 'audit' && verb !== 'seal') throw new UsageError(`unknown command '${verb}'`);
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]!}'`);
  const allowed = verb === 'seal' ? ['--json', '--apply', ADOPT_FLAG, PLAN_FLAG, AFTER_GO_LIVE_FLAG] : ['--json'];
  const unknown = [...flags].find((flag) => !allowed.includes(flag));
  if (unknown !== undefined) throw new UsageError(`unknown option '${unknown}' for ${verb}`);
  const json = flags.has('--json');
  return verb === 'audit' ? { verb, json } : sealArguments(flags, plan, json);
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
  if (!isRunning(admin.pid))
    throw new Error(`the local mode that wrote ${file} (pid ${admin.pid}) is not running any more: ${START_LOCAL}`);
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

type SealArguments = Extract<MappingsArguments, { verb: 'seal' }>;

/** The pairs of the plan --apply adopts; a plan that cannot be read or is not valid is a usage error naming the problem. */
async function readPlan(file: string, cwd: string, scope: PlanScope): Promise<AdoptionPair[]> {
  let text: string;
  try {
    text = await readFile(resolve(cwd, file), 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the plan ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    return parseAdoptionPlan(text, scope);
  } catch (error) {
    throw new UsageError(`invalid plan ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A dry run's adoption candidates, written as the plan to review; the note goes to stderr under --json (stdout stays JSON). */
async function writePlan(args: SealArguments, io: CommandIo, scope: PlanScope, report: SealReport): Promise<void> {
  if (args.plan === undefined || args.apply) return;
  const pairs = report.users.filter((line) => line.result === 'would_seal').map((line) => ({ oid: line.oid, acsUserId: line.acsUserId! }));
  await writeFile(resolve(io.cwd, args.plan), serializeAdoptionPlan(scope, pairs));
  const next = `npm run -s mappings -- seal ${ADOPT_FLAG} --apply ${PLAN_FLAG} ${args.plan}${args.afterGoLive ? ` ${AFTER_GO_LIVE_FLAG}` : ''}`;
  (args.json ? io.stderr : io.stdout).write(
    `\nPlan written to ${args.plan}: ${pairs.length} mapping(s) to adopt. Review every pair, then run: ${next}\n`,
  );
}

async function runSeal(
  admin: ReturnType<typeof composeMappingAdmin>,
  args: SealArguments,
  io: CommandIo,
  scope: PlanScope,
): Promise<number> {
  const plan = args.adopt && args.apply && args.plan !== undefined ? await readPlan(args.plan, io.cwd, scope) : undefined;
  const adopt = args.adopt ? { afterGoLive: args.afterGoLive, ...(plan === undefined ? {} : { plan }) } : undefined;
  const report = await admin.maintenance.seal({
    apply: args.apply,
    ...(adopt === undefined ? {} : { adopt }),
    progress: progressTo(io, args.json),
  });
  io.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatSealSummary(report));
  await writePlan(args, io, scope, report);
  return report.counts.failed + report.counts.not_attempted > 0 ? EXIT.incomplete : EXIT.ok;
}

async function execute(args: Exclude<MappingsArguments, { verb: 'help' }>, io: CommandIo): Promise<number> {
  const { config, trustedCaPem } = await loadSettings(io);
  // Errors reach the operator as the command's own message; msal's warnings (e.g. "No client info in
  // response" on every client-credentials token) would only bury the report.
  const logger = createLogger({ level: 'error', destination: { write: (line: string) => io.stderr.write(line) } });
  const admin = composeMappingAdmin(config, { logger, ...(trustedCaPem === undefined ? {} : { trustedCaPem }) });
  try {
    if (args.verb === 'seal')
      return await runSeal(admin, args, io, { tenantId: config.entra.tenantId, extensionName: admin.extensionName });
    const report = await admin.maintenance.audit(progressTo(io, args.json));
    io.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatAudit(report));
    return EXIT.ok;
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
