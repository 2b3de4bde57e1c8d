/**
 * `npm run mappings -- audit | seal [--apply] | seal --adopt [--apply] [--plan <file>] [--after-go-live]
 * | copy --to table [--apply]` (and `--json`): argument parsing, where the settings come from (Azure
 * settings, or the running local mode's admin file, with a copy's table on top), the adoption plan
 * file, printing and exit status. The entry point (cli/mappings.ts) only hands it the process's
 * arguments, environment and streams, so tests run the whole command in-process against the emulators.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';

import { composeMappingAdmin, type MappingAdminRuntime } from '../composition-root';
import { ConfigError, loadConfig, type Config } from '../config/config';
import { adminFilePath, readLocalAdmin, sessionFilePath } from '../local/local-session';
import { createLogger } from '../observability/logger';
import { describeStartupError, wantsLocalMode } from '../server';
import { isLoopbackHost } from '../validation/formats';
import { parseAdoptionPlan, serializeAdoptionPlan, type AdoptionPair, type PlanScope } from './adoption-plan';
import type { CopyProgress } from './mapping-copy';
import type { MaintenanceProgress, SealReport } from './mapping-maintenance';
import {
  ADOPT_FLAG,
  AFTER_GO_LIVE_FLAG,
  copyIncomplete,
  formatAudit,
  formatCopyReport,
  formatSealLine,
  formatSealSummary,
  PLAN_FLAG,
  TO_FLAG,
} from './mapping-report';

export const USAGE = `usage: npm run -s mappings -- audit [--json]
       npm run -s mappings -- seal [--apply] [--json]
       npm run -s mappings -- seal ${ADOPT_FLAG} [${PLAN_FLAG} <file>] [${AFTER_GO_LIVE_FLAG}] [--json]
       npm run -s mappings -- seal ${ADOPT_FLAG} --apply ${PLAN_FLAG} <file> [${AFTER_GO_LIVE_FLAG}] [--json]
       npm run -s mappings -- copy ${TO_FLAG} table [--apply] [--json]

Checks and seals the identity mappings (the Graph open extension GRAPH_EXTENSION_NAME) of every user,
and copies them to the table store.

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
  copy ${TO_FLAG} table
                 Dry run of copy --apply: report, for every user, whether their mapping would be
                 copied to the table named by MAPPING_TABLE_ENDPOINT or MAPPING_TABLE_CONNECTION_STRING
                 (required, with MAPPING_STORE=graph and the Graph store's settings). Writes no row
                 (the table itself is made if missing). It reads each user's row, not the identity's:
                 an identity the table maps to another user shows only when --apply tries it.
  copy ${TO_FLAG} table --apply
                 Copy every mapping whose seal verifies into the table, bound to the configured ACS
                 resource: what a switch to MAPPING_STORE=table needs. Never overwrites: a user the
                 table maps already is counted (already_copied) or reported (conflict), and an
                 identity the table maps to another user is reported (identity_mapped_elsewhere).
                 Untrusted mappings (no_seal, malformed_seal, unknown_key, seal_mismatch,
                 malformed_identity) are not copied: seal or adopt them first, or let their users
                 get a new identity. Each write reads the user's row first, so it is safe while the
                 service runs on the table, and a stopped run is finished by running it again.
  --json         Print the report as JSON.
  --help         Print this text.

Settings: with Azure settings (the environment, or .env outside production) it works on Azure with
the API's own credential and an app-only Graph token (application permission User.Read.All for
audit, copy and dry runs, User.ReadWrite.All for seal --apply; copy --apply also needs Storage Table
Data Contributor on the table, or its connection string). With none, it works on the local mode that
'npm start' runs in this folder (MAPPING_TABLE_* may then name a table on this machine: Azurite).

Exit status: 0 when it ran (whatever audit found, whatever copy skipped by policy), 1 when it could
not run, 2 for a usage error (an invalid plan file included), 3 when seal --apply could not write
every mapping, or copy could not copy (or check) every sealed mapping (run it again).
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
    }
  | {
      readonly verb: 'copy';
      readonly json: boolean;
      readonly apply: boolean;
      /** The store to copy into (only the table store so far). */
      readonly to: CopyTarget;
    };

/** Where `copy` copies to. */
export type CopyTarget = 'table';
const COPY_TARGETS: readonly CopyTarget[] = ['table'];

export class UsageError extends Error {
  constructor(problem: string) {
    super(`${problem}\n\n${USAGE}`);
    this.name = 'UsageError';
  }
}

const RETIRED_FLAG = '--adopt-unsealed-after-cutover';

/** Options that take a value (`--plan <file>` or `--plan=<file>`), and what the value is, for the message when it is missing. */
const VALUE_FLAGS: Readonly<Record<string, string>> = { [PLAN_FLAG]: 'a file name', [TO_FLAG]: 'a store: table' };

interface Tokens {
  readonly flags: Set<string>;
  readonly words: string[];
  /** The values of the options in VALUE_FLAGS. */
  readonly values: Map<string, string>;
}

/** The option `argument` names, when it is one that takes a value. */
function valueFlagOf(argument: string): string | undefined {
  return Object.keys(VALUE_FLAGS).find((flag) => argument === flag || argument.startsWith(`${flag}=`));
}

/** Flags, words, and the values of --plan and --to. */
function tokenize(argv: readonly string[]): Tokens {
  const flags = new Set<string>();
  const words: string[] = [];
  const values = new Map<string, string>();
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index]!;
    const flag = valueFlagOf(argument);
    if (flag !== undefined) {
      const value = argument === flag ? argv[(index += 1)] : argument.slice(flag.length + 1);
      if (value === undefined || value === '' || value.startsWith('-')) throw new UsageError(`${flag} needs ${VALUE_FLAGS[flag]!}`);
      if (values.has(flag)) throw new UsageError(`${flag} given twice`);
      values.set(flag, value);
      flags.add(flag);
    } else if (argument.startsWith('-')) flags.add(argument);
    else words.push(argument);
  }
  return { flags, words, values };
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

function copyArguments(flags: ReadonlySet<string>, to: string | undefined, json: boolean): MappingsArguments {
  if (to === undefined) throw new UsageError(`copy needs ${TO_FLAG} table: the store to copy the Graph store's mappings into`);
  const target = COPY_TARGETS.find((candidate) => candidate === to);
  if (target === undefined) throw new UsageError(`unknown ${TO_FLAG} '${to}': copy copies the Graph store's mappings to table`);
  return { verb: 'copy', json, apply: flags.has('--apply'), to: target };
}

const VERBS = ['audit', 'seal', 'copy'] as const;
const ALLOWED_FLAGS: Readonly<Record<(typeof VERBS)[number], readonly string[]>> = {
  audit: ['--json'],
  seal: ['--json', '--apply', ADOPT_FLAG, PLAN_FLAG, AFTER_GO_LIVE_FLAG],
  copy: ['--json', '--apply', TO_FLAG],
};

export function parseMappingsArguments(argv: readonly string[]): MappingsArguments {
  const { flags, words, values } = tokenize(argv);
  if (flags.has('--help') || flags.has('-h')) return { verb: 'help', asked: true };
  if (argv.length === 0) return { verb: 'help', asked: false };
  if (flags.has(RETIRED_FLAG)) {
    throw new UsageError(
      `${RETIRED_FLAG} is gone: adopting takes a reviewed plan (seal ${ADOPT_FLAG} ${PLAN_FLAG} <file>, then seal ${ADOPT_FLAG} --apply ${PLAN_FLAG} <file>), with ${AFTER_GO_LIVE_FLAG} once the service is live`,
    );
  }
  const [word, ...extra] = words;
  if (word === undefined) throw new UsageError('no command given: audit, seal or copy');
  const verb = VERBS.find((candidate) => candidate === word);
  if (verb === undefined) throw new UsageError(`unknown command '${word}'`);
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]!}'`);
  const unknown = [...flags].find((flag) => !ALLOWED_FLAGS[verb].includes(flag));
  if (unknown !== undefined) throw new UsageError(`unknown option '${unknown}' for ${verb}`);
  const json = flags.has('--json');
  if (verb === 'audit') return { verb, json };
  if (verb === 'copy') return copyArguments(flags, values.get(TO_FLAG), json);
  return sealArguments(flags, values.get(PLAN_FLAG), json);
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

/** The table `copy --to table` copies into: the one setting that may be given on top of a local mode. */
const TABLE_TARGET_SETTINGS = ['MAPPING_TABLE_ENDPOINT', 'MAPPING_TABLE_CONNECTION_STRING'] as const;

function withoutTableTarget(env: CommandIo['env']): CommandIo['env'] {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !(TABLE_TARGET_SETTINGS as readonly string[]).includes(name)));
}

/**
 * In local mode the copy's table must be on this machine (Azurite): the emulators' mappings name
 * identities of an emulated ACS resource, which have no place in a real table.
 */
function checkLocalTableTarget(config: Config): void {
  const table = config.mappings.store === 'graph' ? config.mappings.table : undefined;
  if (table === undefined || isLoopbackHost(new URL(table.auth.endpoint).hostname)) return;
  throw new Error(
    `local mode copies only to a table on this machine (Azurite), not ${new URL(table.auth.endpoint).origin}: to copy from Azure, set the Azure settings`,
  );
}

/**
 * Azure settings as the service reads them, or the running local mode's (the same composition as
 * `npm start`'s). A table target alone (MAPPING_TABLE_*) does not turn local mode off here: it names
 * where `copy` writes, on top of the local mode's settings.
 */
async function loadSettings(io: CommandIo): Promise<{ config: Config; trustedCaPem?: string }> {
  if (!wantsLocalMode(withoutTableTarget(io.env))) return { config: loadConfig(io.env) };
  const file = adminFilePath(sessionFilePath(io.cwd));
  const admin = await readLocalAdmin(file);
  const orAzure = wantsLocalMode(io.env) ? '' : ', or set the Azure settings (ENTRA_*, ACS_*, MAPPING_SEAL_KEYS) to work on Azure';
  if (admin === undefined) throw new Error(`no local mode is running here (${file} not found): ${START_LOCAL}${orAzure}`);
  if (!isRunning(admin.pid))
    throw new Error(`the local mode that wrote ${file} (pid ${admin.pid}) is not running any more: ${START_LOCAL}${orAzure}`);
  const config = loadConfig({ NODE_ENV: 'development', ...io.env, ...admin.settings });
  checkLocalTableTarget(config);
  return { config, trustedCaPem: admin.caCertPem };
}

/** Progress goes to stderr, so stdout holds only the report (and `--json` stays parseable). */
function scanProgressTo(
  io: CommandIo,
  throttling = 'Microsoft Graph is throttling',
): Pick<MaintenanceProgress & CopyProgress, 'scanned' | 'throttled'> {
  return {
    scanned: (users) => {
      if (users % 1000 === 0) io.stderr.write(`scanning: ${users} users read\n`);
    },
    throttled: (waitMs) => io.stderr.write(`${throttling}: waiting ${(waitMs / 1000).toFixed(1)} s\n`),
  };
}

function progressTo(io: CommandIo, json: boolean): MaintenanceProgress {
  return { ...scanProgressTo(io), ...(json ? {} : { user: (line) => io.stdout.write(formatSealLine(line)) }) };
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

async function runSeal(admin: MappingAdminRuntime, args: SealArguments, io: CommandIo, scope: PlanScope): Promise<number> {
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

/** Without MAPPING_TABLE_* there is nothing to copy into: a configuration problem, named as the server names them. */
function requireCopyTarget(config: Config): void {
  if (config.mappings.store !== 'graph' || config.mappings.table !== undefined) return;
  throw new ConfigError([
    `copy ${TO_FLAG} table needs the table to copy into: set MAPPING_TABLE_ENDPOINT (the storage account's table endpoint, reached with the managed identity) or MAPPING_TABLE_CONNECTION_STRING, and keep MAPPING_STORE=graph with the Graph store's settings`,
  ]);
}

async function runCopy(admin: MappingAdminRuntime, args: Extract<MappingsArguments, { verb: 'copy' }>, io: CommandIo): Promise<number> {
  // composeMappingAdmin makes the copy whenever MAPPING_TABLE_* is set, which requireCopyTarget checked.
  if (admin.copy === undefined) throw new Error('no table to copy into');
  const report = await admin.copy.copy({ apply: args.apply, progress: scanProgressTo(io, 'Microsoft Graph or the table is throttling') });
  io.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatCopyReport(report));
  return copyIncomplete(report) ? EXIT.incomplete : EXIT.ok;
}

async function execute(args: Exclude<MappingsArguments, { verb: 'help' }>, io: CommandIo): Promise<number> {
  const { config, trustedCaPem } = await loadSettings(io);
  if (args.verb === 'copy') requireCopyTarget(config);
  // Errors reach the operator as the command's own message; msal's warnings (e.g. "No client info in
  // response" on every client-credentials token) would only bury the report.
  const logger = createLogger({ level: 'error', destination: { write: (line: string) => io.stderr.write(line) } });
  const admin = composeMappingAdmin(config, { logger, ...(trustedCaPem === undefined ? {} : { trustedCaPem }) });
  try {
    if (args.verb === 'seal')
      return await runSeal(admin, args, io, { tenantId: config.entra.tenantId, extensionName: admin.extensionName });
    if (args.verb === 'copy') return await runCopy(admin, args, io);
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
