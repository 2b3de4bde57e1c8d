/**
 * Maintenance of the sealed identity mappings (`npm run mappings -- audit|seal`): what an operator
 * runs once after upgrading from the original hero sample (whose mappings carry no seal and are
 * refused until sealed) and after each rotation of MAPPING_SEAL_KEYS.
 *
 * Every mapping is read as the user could have left it: `audit` verifies each against the ring and
 * looks for ACS identities claimed by more than one user (a forged copy, or a bug); `seal` vouches
 * for the unsealed mappings nobody else claims and re-seals those under a retired key, and never
 * touches a duplicate or a broken one. It writes nothing until the whole directory has been read
 * (a duplicate's other holder may be on the last page), so an interrupted or failed run leaves
 * each mapping either as it was or sealed: running it again finishes the job.
 */
import { ThrottledError } from '../errors/app-errors';
import type { MappingSealer, UntrustedReason } from '../services/mapping-seal';
import type { StoredMapping } from '../services/ports';
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
  readonly sealed: boolean;
}

/** Two or more users whose mappings name one ACS identity. */
export interface DuplicateGroup {
  readonly acsUserId: string;
  readonly holders: readonly DuplicateHolder[];
}

export interface AuditReport {
  readonly extensionName: string;
  readonly tenantId: string;
  readonly usersScanned: number;
  readonly usersWithMapping: number;
  readonly sealed: {
    readonly currentKey: { readonly keyId: string; readonly count: number };
    /** Every other key of the ring, with how many mappings it still seals (0: it may be retired). */
    readonly olderKeys: Readonly<Record<string, number>>;
  };
  /** `no_seal`: written before seals existed (the original sample, older versions) or by someone else. */
  readonly unsealed: number;
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
  | 'failed'
  /** The run stopped after too many failures in a row before reaching this user. */
  | 'not_attempted'
  | 'skipped_duplicate'
  | 'skipped_broken';

export interface SealLine {
  readonly oid: string;
  readonly acsUserId: string | undefined;
  readonly result: SealResult;
  /** Why: the mapping's status for a skip, the error's message for a failure. */
  readonly detail?: string;
}

export interface SealReport {
  readonly apply: boolean;
  readonly audit: AuditReport;
  readonly alreadyCurrent: number;
  readonly counts: Readonly<Record<SealResult, number>>;
  readonly users: readonly SealLine[];
  /** Set when the run gave up on the remaining writes. */
  readonly stoppedBecause: string | undefined;
}

/** Callbacks for a long run: pages read, waits on throttling, and each user's outcome as it happens. */
export interface MaintenanceProgress {
  scanned?(users: number): void;
  throttled?(waitMs: number): void;
  user?(line: SealLine): void;
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
  seal(options: { readonly apply: boolean; readonly progress?: MaintenanceProgress }): Promise<SealReport>;
}

/** One user's mapping after verification. */
interface Classified {
  readonly oid: string;
  readonly acsUserId: string | undefined;
  readonly status: MappingStatus;
  readonly keyId: string | undefined;
}

const SEAL_RESULTS: readonly SealResult[] = [
  'would_seal',
  'would_reseal',
  'sealed',
  'resealed',
  'gone',
  'failed',
  'not_attempted',
  'skipped_duplicate',
  'skipped_broken',
];

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function isBroken(status: MappingStatus): status is BrokenReason {
  return (BROKEN_REASONS as readonly string[]).includes(status);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Users claiming one ACS identity, keyed case-insensitively: a copy in other letter case must not
 * pass as a second identity (whether ACS matches ids case-insensitively is unconfirmed).
 */
function findDuplicates(mappings: readonly Classified[]): DuplicateGroup[] {
  const byIdentity = new Map<string, DuplicateHolder[]>();
  for (const { oid, acsUserId, status } of mappings) {
    if (acsUserId === undefined) continue;
    const key = acsUserId.toLowerCase();
    const holders = byIdentity.get(key) ?? [];
    holders.push({ oid, acsUserId, status, sealed: status === 'current_key' || status === 'older_key' });
    byIdentity.set(key, holders);
  }
  return [...byIdentity.values()]
    .filter((holders) => holders.length > 1)
    .map((holders) => ({ acsUserId: (holders[0] as DuplicateHolder).acsUserId, holders }));
}

function summarize(options: MappingMaintenanceOptions, usersScanned: number, mappings: readonly Classified[]): AuditReport {
  const [currentKeyId = options.sealer.currentKeyId, ...older] = options.keyIds;
  const olderKeys: Record<string, number> = Object.fromEntries(older.map((id) => [id, 0]));
  const broken = Object.fromEntries(BROKEN_REASONS.map((reason) => [reason, 0])) as Record<BrokenReason, number>;
  let current = 0;
  let unsealed = 0;
  for (const { status, keyId } of mappings) {
    if (status === 'current_key') current += 1;
    else if (status === 'older_key') olderKeys[keyId as string] = (olderKeys[keyId as string] ?? 0) + 1;
    else if (status === 'no_seal') unsealed += 1;
    else broken[status] += 1;
  }
  return {
    extensionName: options.extensionName,
    tenantId: options.tenantId,
    usersScanned,
    usersWithMapping: mappings.length,
    sealed: { currentKey: { keyId: currentKeyId, count: current }, olderKeys },
    unsealed,
    broken,
    duplicates: findDuplicates(mappings),
  };
}

/** Run a Graph request, waiting out throttling the client's own retries did not absorb (Retry-After, capped). */
function patiently(options: MappingMaintenanceOptions, progress: MaintenanceProgress | undefined): RequestRunner {
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

/**
 * Sort the mappings: duplicates (every holder, sealed or not) and broken ones are reported as
 * skipped at once, those under the current key are only counted, the rest are to be written.
 */
function planSeals(mappings: readonly Classified[], duplicates: readonly DuplicateGroup[], report: (line: SealLine) => void): { toWrite: Classified[]; alreadyCurrent: number } {
  const duplicated = new Set(duplicates.flatMap((group) => group.holders.map((holder) => holder.oid)));
  const toWrite: Classified[] = [];
  let alreadyCurrent = 0;
  for (const mapping of mappings) {
    const { oid, acsUserId, status } = mapping;
    if (duplicated.has(oid)) report({ oid, acsUserId, result: 'skipped_duplicate', detail: status });
    else if (isBroken(status)) report({ oid, acsUserId, result: 'skipped_broken', detail: status });
    else if (status === 'current_key') alreadyCurrent += 1;
    else toWrite.push(mapping);
  }
  return { toWrite, alreadyCurrent };
}

/** Write each seal in turn, one at a time (Graph's per-app budget is shared with the service); returns why it stopped early, if it did. */
async function writeSeals(
  options: MappingMaintenanceOptions,
  run: RequestRunner,
  toWrite: readonly Classified[],
  report: (line: SealLine) => void,
): Promise<string | undefined> {
  const { directory, sealer, tenantId } = options;
  const maxConsecutiveFailures = options.maxConsecutiveFailures ?? 10;
  let failuresInRow = 0;
  let stoppedBecause: string | undefined;
  for (const { oid, acsUserId, status } of toWrite) {
    // Only well-formed ids get here: an unsealed or older-key verdict comes after the identity check.
    const id = acsUserId as string;
    if (stoppedBecause !== undefined) {
      report({ oid, acsUserId: id, result: 'not_attempted' });
      continue;
    }
    try {
      const outcome = await run(() => directory.reseal(oid, { acsUserId: id, seal: sealer.seal({ tid: tenantId, oid }, id) }));
      failuresInRow = 0;
      report({ oid, acsUserId: id, result: outcome === 'gone' ? 'gone' : status === 'no_seal' ? 'sealed' : 'resealed' });
    } catch (error) {
      failuresInRow += 1;
      report({ oid, acsUserId: id, result: 'failed', detail: messageOf(error) });
      if (failuresInRow >= maxConsecutiveFailures) stoppedBecause = `${failuresInRow} writes in a row failed (last: ${messageOf(error)})`;
    }
  }
  return stoppedBecause;
}

export function createMappingMaintenance(options: MappingMaintenanceOptions): MappingMaintenance {
  const { directory, sealer, tenantId } = options;

  function classify(oid: string, mapping: StoredMapping): Classified {
    const verdict = sealer.verify({ tid: tenantId, oid }, mapping.acsUserId, mapping.seal);
    if (!verdict.trusted) return { oid, acsUserId: verdict.acsUserId, status: verdict.reason, keyId: undefined };
    return { oid, acsUserId: verdict.acsUserId, status: verdict.currentKey ? 'current_key' : 'older_key', keyId: verdict.keyId };
  }

  /** Read the whole directory; only the verdicts are kept (never the seals). */
  async function scanAll(progress: MaintenanceProgress | undefined): Promise<{ usersScanned: number; mappings: Classified[] }> {
    const mappings: Classified[] = [];
    let usersScanned = 0;
    for await (const page of directory.scan(patiently(options, progress))) {
      for (const entry of page) {
        if (entry.mapping !== undefined) mappings.push(classify(entry.oid, entry.mapping));
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

    async seal({ apply, progress }) {
      const { usersScanned, mappings } = await scanAll(progress);
      const audit = summarize(options, usersScanned, mappings);
      const counts = Object.fromEntries(SEAL_RESULTS.map((result) => [result, 0])) as Record<SealResult, number>;
      const users: SealLine[] = [];
      const report = (line: SealLine): void => {
        counts[line.result] += 1;
        users.push(line);
        progress?.user?.(line);
      };
      const { toWrite, alreadyCurrent } = planSeals(mappings, audit.duplicates, report);
      let stoppedBecause: string | undefined;
      if (apply) stoppedBecause = await writeSeals(options, patiently(options, progress), toWrite, report);
      else for (const { oid, acsUserId, status } of toWrite) report({ oid, acsUserId, result: status === 'no_seal' ? 'would_seal' : 'would_reseal' });
      return { apply, audit, alreadyCurrent, counts, users, stoppedBecause };
    },
  };
}
