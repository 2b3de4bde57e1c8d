/**
 * Maintenance of the sealed identity mappings (`npm run mappings -- audit|seal`): what an operator
 * runs once after upgrading from the original hero sample (whose mappings carry no seal and are
 * refused until sealed) and after each rotation of MAPPING_SEAL_KEYS.
 *
 * Every mapping is read as the user could have left it: `audit` verifies each against the ring and
 * looks for ACS identities claimed by more than one user (a forged copy, or a bug); `seal` re-seals
 * the mappings under a retired key (keeping who vouched for them) and never touches a broken one.
 *
 * Adopting an unsealed mapping (sealing it with origin `adopted`) vouches for whatever it says, and
 * any user can write an unsealed mapping: among them claims on identities nobody maps (ones the
 * service left alive when `POST /api/user` replaced an untrusted mapping or `DELETE /api/user`
 * removed one, or a departed user's). So adoption is never implicit: a plain `seal` only re-seals
 * older keys, and `seal --adopt` adopts exactly the (oid, id) pairs of a plan the operator reviewed
 * (adoption-plan.ts), each only if the mapping still names the planned id. Whether a service seal
 * exists is read from user-writable data (a tenant adopted whole at the cut-over has none for
 * months; the holder of the only one can remove it), so it is only an extra brake: with one, the
 * plan is adopted only with the after-go-live override.
 *
 * A duplicate (two users naming one identity) is settled by the seals: the one holder whose seal
 * verifies owns it and is maintained as usual, the others are forgeries and are never sealed (else
 * any user could keep a victim under an old key, and the key from being retired, by copying her
 * id). With no verifying holder, or several (a bug or a leaked key), none is sealed.
 *
 * It writes nothing until the whole directory has been read (a duplicate's other holder may be on
 * the last page), and reads each user's mapping again right before writing it (the scan may be
 * minutes old), so an interrupted or failed run leaves each mapping either as it was or sealed:
 * running it again finishes the job.
 */
import { ThrottledError } from '../errors/app-errors';
import type { MappingSealer, SealOrigin, UntrustedReason } from '../services/mapping-seal';
import type { StoredMapping } from '../services/ports';
import type { AdoptionPair } from './adoption-plan';
import type { MappingDirectory, RequestRunner } from './ports';

/** Mapping states other than "unsealed" that sealing will not repair. */
export type BrokenReason = Exclude<UntrustedReason, 'no_seal'>;
export const BROKEN_REASONS: readonly BrokenReason[] = ['malformed_seal', 'unknown_key', 'seal_mismatch', 'malformed_identity'];

/** One mapping's state: sealed under the current key, sealed under an older key of the ring, or why it is not trusted. */
export type MappingStatus = 'current_key' | 'older_key' | UntrustedReason;

export interface DuplicateHolder {
  readonly oid: string;
  /** The id exactly as this user's mapping holds it (holders may differ in letter case). */
  readonly acsUserId: string;
  readonly status: MappingStatus;
  /** The seal verifies (under the current or an older key). */
  readonly sealed: boolean;
  /** Who vouched for it, when the seal verifies. */
  readonly origin?: SealOrigin;
}

/**
 * How a duplicate is settled: exactly one holder's seal verifies (`sealed_owner`, the others are
 * forgeries), none does (`no_sealed_holder`), or several do (`several_sealed_holders`: a bug or a
 * leaked key). Only `sealed_owner` lets the command maintain anyone in the group: the owner.
 */
export type DuplicateResolution = 'sealed_owner' | 'no_sealed_holder' | 'several_sealed_holders';

/** Two or more users whose mappings name one ACS identity (compared ignoring letter case). */
export type DuplicateGroup = {
  readonly acsUserId: string;
  readonly holders: readonly DuplicateHolder[];
} & (
  { readonly resolution: 'sealed_owner'; readonly owner: string } | { readonly resolution: Exclude<DuplicateResolution, 'sealed_owner'> }
);

export interface AuditReport {
  readonly extensionName: string;
  readonly tenantId: string;
  readonly usersScanned: number;
  readonly usersWithMapping: number;
  readonly sealed: {
    readonly currentKey: { readonly keyId: string; readonly count: number };
    /** Every other key of the ring, with how many mappings it still seals (0: it may be retired). */
    readonly olderKeys: Readonly<Record<string, number>>;
    /** The users whose mapping each older key still seals: who keeps that key from being retired. */
    readonly olderKeyUsers: Readonly<Record<string, readonly string[]>>;
    /** The same seals (every key) by who vouched for them: the service, or this command adopting an unsealed mapping. */
    readonly byOrigin: Readonly<Record<SealOrigin, number>>;
  };
  /** `no_seal`: written before seals existed (the original sample, older versions) or by someone else. */
  readonly unsealed: number;
  /**
   * No mapping carries a service seal. Then `seal --adopt --apply` adopts a reviewed plan without the
   * after-go-live override; it is no proof that the service is not live (users can remove seals).
   */
  readonly adoptionOpen: boolean;
  readonly broken: Readonly<Record<BrokenReason, number>>;
  readonly duplicates: readonly DuplicateGroup[];
}

/** What `seal` did (or, in a dry run, would do) for one user; users already sealed under the current key are only counted. */
export type SealResult =
  | 'would_seal'
  | 'would_reseal'
  | 'sealed'
  | 'resealed'
  /** The mapping was deleted between the scan and the write. */
  | 'gone'
  /** The mapping changed between the scan and the write (another id, or sealed meanwhile): left as it is now. */
  | 'changed'
  | 'failed'
  /** The run stopped after too many failures in a row before reaching this user. */
  | 'not_attempted'
  /** A duplicate nobody is proven to own (no holder's seal verifies, or several do). */
  | 'skipped_duplicate'
  /** A duplicate whose identity another holder owns under a verifying seal. */
  | 'skipped_forgery'
  /** Unsealed, and this run was not asked to adopt (no --adopt). */
  | 'skipped_unsealed'
  /** Unsealed, --adopt given, but a mapping carries a service seal and the after-go-live override was not given. */
  | 'skipped_live'
  /** Unsealed, but the reviewed plan does not list this user with this id. */
  | 'not_in_plan'
  | 'skipped_broken';

export interface SealLine {
  readonly oid: string;
  readonly acsUserId: string | undefined;
  readonly result: SealResult;
  /** Why: the mapping's status for a skip, the error's message for a failure. */
  readonly detail?: string;
  /** Of the seal written (or that would be): `adopted` for an unsealed mapping, kept as it was on a re-seal. */
  readonly origin?: SealOrigin;
  /** `skipped_forgery`: the holder whose seal verifies. */
  readonly owner?: string;
  /** `skipped_duplicate`: why nobody in the group is maintained. */
  readonly resolution?: Exclude<DuplicateResolution, 'sealed_owner'>;
  /** `changed`: the mapping as the read right before the write found it. */
  readonly now?: MappingNow;
  /** `not_in_plan`: the id the plan lists for this user, when it lists the user with another id. */
  readonly planned?: string;
}

export interface MappingNow {
  readonly acsUserId: string | undefined;
  readonly status: MappingStatus;
}

/** A pair of the plan that was not adopted because the scan found no unsealed mapping for that user (sealed, broken or none). */
export interface StalePlanEntry extends AdoptionPair {
  /** The user's mapping as the scan found it; absent when there is none. */
  readonly now?: MappingNow;
}

export interface SealReport {
  readonly apply: boolean;
  /** Asked to adopt (--adopt): a dry run lists the candidates, a write adopts the plan's pairs. */
  readonly adopt: boolean;
  /** The after-go-live override: adopt although a mapping carries a service seal. */
  readonly afterGoLive: boolean;
  readonly audit: AuditReport;
  readonly alreadyCurrent: number;
  readonly counts: Readonly<Record<SealResult, number>>;
  readonly users: readonly SealLine[];
  /** With a plan: its pairs whose user had no unsealed mapping at the scan. */
  readonly stalePlan: readonly StalePlanEntry[];
  /** Set when the run gave up on the remaining writes. */
  readonly stoppedBecause: string | undefined;
}

/** Callbacks for a long run: pages read, waits on throttling, and each user's outcome as it happens. */
export interface MaintenanceProgress {
  scanned?(users: number): void;
  throttled?(waitMs: number): void;
  user?(line: SealLine): void;
}

export interface AdoptOptions {
  /**
   * The reviewed plan: with apply, only its pairs are adopted (required). A dry run lists every
   * candidate whatever it says, as the plan to review.
   */
  readonly plan?: readonly AdoptionPair[];
  /** Adopt although a mapping carries a service seal (the service is live). */
  readonly afterGoLive?: boolean;
}

export interface SealOptions {
  readonly apply: boolean;
  /** Adopt unsealed mappings; without it, `seal` only re-seals the mappings under an older key. */
  readonly adopt?: AdoptOptions;
  readonly progress?: MaintenanceProgress;
}

export interface MappingMaintenanceOptions {
  readonly directory: MappingDirectory;
  readonly sealer: MappingSealer;
  /** The tenant every user belongs to (the seal binds it, as the service binds the token's `tid`). */
  readonly tenantId: string;
  readonly extensionName: string;
  /** Ids of the seal ring, current first (config.mappingSeal.keys). */
  readonly keyIds: readonly string[];
  /** How often one throttled request is retried after the client's own retries (default 5). */
  readonly throttleRetries?: number;
  /** Longest wait for one `Retry-After` (default 60 s). */
  readonly maxThrottleWaitMs?: number;
  /** Failed writes in a row after which the rest is not attempted (a permission or outage fails them all; default 10). */
  readonly maxConsecutiveFailures?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface MappingMaintenance {
  audit(progress?: MaintenanceProgress): Promise<AuditReport>;
  seal(options: SealOptions): Promise<SealReport>;
}

/** One user's mapping after verification. */
interface Classified {
  readonly oid: string;
  readonly acsUserId: string | undefined;
  readonly status: MappingStatus;
  readonly keyId: string | undefined;
  readonly origin: SealOrigin | undefined;
}

/** A mapping to write, and the origin its new seal carries. */
interface PlannedSeal {
  readonly mapping: Classified;
  readonly origin: SealOrigin;
}

const SEAL_RESULTS: readonly SealResult[] = [
  'would_seal',
  'would_reseal',
  'sealed',
  'resealed',
  'gone',
  'changed',
  'failed',
  'not_attempted',
  'skipped_duplicate',
  'skipped_forgery',
  'skipped_unsealed',
  'skipped_live',
  'not_in_plan',
  'skipped_broken',
];

/**
 * What a run does with an unsealed mapping: leave it (`none`: no --adopt; `closed`: a service seal
 * and no override), list it as a candidate (`all`: dry run), or adopt it if the plan lists it (`plan`).
 */
type Adoption =
  | { readonly mode: 'none' }
  | { readonly mode: 'closed' }
  | { readonly mode: 'all' }
  | { readonly mode: 'plan'; readonly pairs: ReadonlyMap<string, string> };

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function isBroken(status: MappingStatus): status is BrokenReason {
  return (BROKEN_REASONS as readonly string[]).includes(status);
}

function isSealed(status: MappingStatus): boolean {
  return status === 'current_key' || status === 'older_key';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function classify(sealer: MappingSealer, tenantId: string, oid: string, mapping: StoredMapping): Classified {
  const verdict = sealer.verify({ tid: tenantId, oid }, mapping.acsUserId, mapping.seal);
  if (!verdict.trusted) return { oid, acsUserId: verdict.acsUserId, status: verdict.reason, keyId: undefined, origin: undefined };
  const status = verdict.currentKey ? 'current_key' : 'older_key';
  return { oid, acsUserId: verdict.acsUserId, status, keyId: verdict.keyId, origin: verdict.origin };
}

/** The same verdict: same id (exactly), status, key and origin. Anything else means someone wrote the mapping since. */
function sameMapping(a: Classified, b: Classified): boolean {
  return a.acsUserId === b.acsUserId && a.status === b.status && a.keyId === b.keyId && a.origin === b.origin;
}

function groupOf(holders: DuplicateHolder[]): DuplicateGroup {
  const acsUserId = holders[0]!.acsUserId;
  const sealed = holders.filter((holder) => holder.sealed);
  if (sealed.length === 1) return { acsUserId, holders, resolution: 'sealed_owner', owner: sealed[0]!.oid };
  return { acsUserId, holders, resolution: sealed.length === 0 ? 'no_sealed_holder' : 'several_sealed_holders' };
}

/**
 * Users claiming one ACS identity, keyed case-insensitively: a copy in other letter case must not
 * pass as a second identity (whether ACS matches ids case-insensitively is unconfirmed).
 */
function findDuplicates(mappings: readonly Classified[]): DuplicateGroup[] {
  const byIdentity = new Map<string, DuplicateHolder[]>();
  for (const { oid, acsUserId, status, origin } of mappings) {
    if (acsUserId === undefined) continue;
    const key = acsUserId.toLowerCase();
    const holders = byIdentity.get(key) ?? [];
    holders.push({ oid, acsUserId, status, sealed: isSealed(status), ...(origin === undefined ? {} : { origin }) });
    byIdentity.set(key, holders);
  }
  return [...byIdentity.values()].filter((holders) => holders.length > 1).map(groupOf);
}

function summarize(options: MappingMaintenanceOptions, usersScanned: number, mappings: readonly Classified[]): AuditReport {
  const [currentKeyId = options.sealer.currentKeyId, ...older] = options.keyIds;
  const olderKeys: Record<string, number> = Object.fromEntries(older.map((id) => [id, 0]));
  const olderKeyUsers: Record<string, string[]> = Object.fromEntries(older.map((id) => [id, []]));
  const broken = Object.fromEntries(BROKEN_REASONS.map((reason) => [reason, 0])) as Record<BrokenReason, number>;
  const byOrigin: Record<SealOrigin, number> = { service: 0, adopted: 0 };
  let current = 0;
  let unsealed = 0;
  for (const { oid, status, keyId, origin } of mappings) {
    if (origin !== undefined) byOrigin[origin] += 1;
    if (status === 'current_key') current += 1;
    else if (status === 'older_key') {
      olderKeys[keyId!] = (olderKeys[keyId!] ?? 0) + 1;
      (olderKeyUsers[keyId!] ??= []).push(oid);
    } else if (status === 'no_seal') unsealed += 1;
    else broken[status] += 1;
  }
  return {
    extensionName: options.extensionName,
    tenantId: options.tenantId,
    usersScanned,
    usersWithMapping: mappings.length,
    sealed: { currentKey: { keyId: currentKeyId, count: current }, olderKeys, olderKeyUsers, byOrigin },
    unsealed,
    adoptionOpen: byOrigin.service === 0,
    broken,
    duplicates: findDuplicates(mappings),
  };
}

/** How long a run waits out throttling: the part of {@link MappingMaintenanceOptions} the copy command shares. */
export type ThrottleOptions = Pick<MappingMaintenanceOptions, 'throttleRetries' | 'maxThrottleWaitMs' | 'sleep'>;

/**
 * Run a request (Graph's, or the table's for the copy command), waiting out throttling the client's
 * own retries did not absorb (Retry-After, capped).
 */
export function patiently(options: ThrottleOptions, progress: Pick<MaintenanceProgress, 'throttled'> | undefined): RequestRunner {
  const retries = options.throttleRetries ?? 5;
  const maxWaitMs = options.maxThrottleWaitMs ?? 60_000;
  const sleep = options.sleep ?? defaultSleep;
  return async (request) => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await request();
      } catch (error) {
        if (!(error instanceof ThrottledError) || attempt >= retries) throw error;
        const waitMs = Math.min(error.retryAfterSeconds * 1000, maxWaitMs);
        progress?.throttled?.(waitMs);
        await sleep(waitMs);
      }
    }
  };
}

/** Why a duplicate holder is not maintained, or undefined for a proven owner (maintained like any other user). */
function duplicateSkip(mapping: Classified, group: DuplicateGroup): SealLine | undefined {
  const { oid, acsUserId, status } = mapping;
  if (group.resolution !== 'sealed_owner')
    return { oid, acsUserId, result: 'skipped_duplicate', detail: status, resolution: group.resolution };
  if (group.owner === oid) return undefined;
  return { oid, acsUserId, result: 'skipped_forgery', detail: status, owner: group.owner };
}

/** An unsealed, adoptable mapping's line or plan: adopted (written), or why not. */
function planUnsealed(mapping: Classified, adoption: Adoption): SealLine | PlannedSeal {
  const { oid, acsUserId, status } = mapping;
  if (adoption.mode === 'all') return { mapping, origin: 'adopted' };
  if (adoption.mode === 'none') return { oid, acsUserId, result: 'skipped_unsealed', detail: status };
  if (adoption.mode === 'closed') return { oid, acsUserId, result: 'skipped_live', detail: status };
  const planned = adoption.pairs.get(oid);
  // Exactly the reviewed id: a claim written since the review (another id) is not what the operator vouched for.
  if (planned === acsUserId) return { mapping, origin: 'adopted' };
  return { oid, acsUserId, result: 'not_in_plan', detail: status, ...(planned === undefined ? {} : { planned }) };
}

/**
 * Sort the mappings: forgeries, unsettled duplicates and broken ones are reported as skipped at
 * once, those under the current key are only counted, older keys are to be re-sealed with their
 * origin, and unsealed ones go as `adoption` says.
 */
function planSeals(
  audit: AuditReport,
  mappings: readonly Classified[],
  adoption: Adoption,
  report: (line: SealLine) => void,
): { toWrite: PlannedSeal[]; alreadyCurrent: number } {
  const groups = new Map(audit.duplicates.flatMap((group) => group.holders.map((holder) => [holder.oid, group] as const)));
  const toWrite: PlannedSeal[] = [];
  let alreadyCurrent = 0;
  for (const mapping of mappings) {
    const { oid, acsUserId, status, origin } = mapping;
    const group = groups.get(oid);
    const skip = group === undefined ? undefined : duplicateSkip(mapping, group);
    if (skip !== undefined) report(skip);
    else if (isBroken(status)) report({ oid, acsUserId, result: 'skipped_broken', detail: status });
    else if (status === 'current_key') alreadyCurrent += 1;
    // A verifying seal always has an origin; a re-seal keeps it (an adopted mapping stays adopted).
    else if (status === 'older_key') toWrite.push({ mapping, origin: origin! });
    else {
      const planned = planUnsealed(mapping, adoption);
      if ('result' in planned) report(planned);
      else toWrite.push(planned);
    }
  }
  return { toWrite, alreadyCurrent };
}

/** The plan's pairs whose user the scan found with no unsealed mapping: reported, so the operator sees the plan went stale. */
function stalePlanEntries(adoption: Adoption, mappings: readonly Classified[]): StalePlanEntry[] {
  if (adoption.mode !== 'plan') return [];
  const byOid = new Map(mappings.map((mapping) => [mapping.oid, mapping]));
  const stale: StalePlanEntry[] = [];
  for (const [oid, acsUserId] of adoption.pairs) {
    const found = byOid.get(oid);
    if (found === undefined) stale.push({ oid, acsUserId });
    else if (found.status !== 'no_seal') stale.push({ oid, acsUserId, now: { acsUserId: found.acsUserId, status: found.status } });
  }
  return stale;
}

/**
 * Read the user's mapping again and write the seal only when it still says what the scan found: a
 * `POST /api/user` (or another run) since the scan must not be overwritten with the old id. One
 * more request per write; it narrows the window to the read and the write, it cannot close it (the
 * PATCH is not conditional).
 */
async function readCompareWrite(options: MappingMaintenanceOptions, { mapping, origin }: PlannedSeal): Promise<SealLine> {
  const { directory, sealer, tenantId } = options;
  const { oid, status } = mapping;
  // Only well-formed ids get here: an unsealed or older-key verdict comes after the identity check.
  const acsUserId = mapping.acsUserId!;
  const stored = await directory.read(oid);
  if (stored === undefined) return { oid, acsUserId, result: 'gone' };
  const now = classify(sealer, tenantId, oid, stored);
  if (!sameMapping(now, mapping)) return { oid, acsUserId, result: 'changed', now: { acsUserId: now.acsUserId, status: now.status } };
  const outcome = await directory.reseal(oid, { acsUserId, seal: sealer.seal({ tid: tenantId, oid }, acsUserId, origin) });
  if (outcome === 'gone') return { oid, acsUserId, result: 'gone' };
  return { oid, acsUserId, result: status === 'no_seal' ? 'sealed' : 'resealed', origin };
}

/**
 * The read, the comparison and the write are retried as one unit: a throttled PATCH waits up to a
 * minute, and retrying the PATCH alone would write over whatever the user or the service wrote
 * during that wait. Every attempt reads first.
 */
function sealOne(options: MappingMaintenanceOptions, run: RequestRunner, planned: PlannedSeal): Promise<SealLine> {
  return run(() => readCompareWrite(options, planned));
}

/** Write each seal in turn, one at a time (Graph's per-app budget is shared with the service); returns why it stopped early, if it did. */
async function writeSeals(
  options: MappingMaintenanceOptions,
  run: RequestRunner,
  toWrite: readonly PlannedSeal[],
  report: (line: SealLine) => void,
): Promise<string | undefined> {
  const maxConsecutiveFailures = options.maxConsecutiveFailures ?? 10;
  let failuresInRow = 0;
  let stoppedBecause: string | undefined;
  for (const planned of toWrite) {
    const { oid, acsUserId } = planned.mapping;
    if (stoppedBecause !== undefined) {
      report({ oid, acsUserId, result: 'not_attempted' });
      continue;
    }
    try {
      report(await sealOne(options, run, planned));
      failuresInRow = 0;
    } catch (error) {
      failuresInRow += 1;
      report({ oid, acsUserId, result: 'failed', detail: messageOf(error) });
      if (failuresInRow >= maxConsecutiveFailures) stoppedBecause = `${failuresInRow} writes in a row failed (last: ${messageOf(error)})`;
    }
  }
  return stoppedBecause;
}

function adoptionOf(audit: AuditReport, apply: boolean, adopt: AdoptOptions | undefined): Adoption {
  if (adopt === undefined) return { mode: 'none' };
  if (!audit.adoptionOpen && adopt.afterGoLive !== true) return { mode: 'closed' };
  if (!apply) return { mode: 'all' };
  return { mode: 'plan', pairs: new Map((adopt.plan ?? []).map(({ oid, acsUserId }) => [oid, acsUserId])) };
}

export function createMappingMaintenance(options: MappingMaintenanceOptions): MappingMaintenance {
  const { directory, sealer, tenantId } = options;

  /** Read the whole directory; only the verdicts are kept (never the seals). */
  async function scanAll(progress: MaintenanceProgress | undefined): Promise<{ usersScanned: number; mappings: Classified[] }> {
    const mappings: Classified[] = [];
    let usersScanned = 0;
    for await (const page of directory.scan(patiently(options, progress))) {
      for (const entry of page) {
        if (entry.mapping !== undefined) mappings.push(classify(sealer, tenantId, entry.oid, entry.mapping));
      }
      usersScanned += page.length;
      progress?.scanned?.(usersScanned);
    }
    return { usersScanned, mappings };
  }

  return {
    async audit(progress) {
      const { usersScanned, mappings } = await scanAll(progress);
      return summarize(options, usersScanned, mappings);
    },

    async seal({ apply, adopt, progress }) {
      if (apply && adopt !== undefined && adopt.plan === undefined) throw new TypeError('adopting takes a reviewed plan');
      const { usersScanned, mappings } = await scanAll(progress);
      const audit = summarize(options, usersScanned, mappings);
      const adoption = adoptionOf(audit, apply, adopt);
      const counts = Object.fromEntries(SEAL_RESULTS.map((result) => [result, 0])) as Record<SealResult, number>;
      const users: SealLine[] = [];
      const report = (line: SealLine): void => {
        counts[line.result] += 1;
        users.push(line);
        progress?.user?.(line);
      };
      const { toWrite, alreadyCurrent } = planSeals(audit, mappings, adoption, report);
      let stoppedBecause: string | undefined;
      if (apply) stoppedBecause = await writeSeals(options, patiently(options, progress), toWrite, report);
      else {
        for (const { mapping, origin } of toWrite) {
          report({
            oid: mapping.oid,
            acsUserId: mapping.acsUserId,
            result: mapping.status === 'no_seal' ? 'would_seal' : 'would_reseal',
            origin,
          });
        }
      }
      const afterGoLive = adopt?.afterGoLive ?? false;
      const stalePlan = stalePlanEntries(adoption, mappings);
      return { apply, adopt: adopt !== undefined, afterGoLive, audit, alreadyCurrent, counts, users, stalePlan, stoppedBecause };
    },
  };
}
