/**
 * `npm run mappings -- copy --to table`: copy the Graph store's mappings into the table store
 * (MAPPING_STORE=table), so a deployment can switch stores without any user losing their identity.
 *
 * Only a mapping whose seal verifies (the Graph store's sealer, for that user, tenant and ACS resource)
 * is copied: anything else is exactly what the service refuses to use, and the table is trusted
 * without a seal (only the service can write it), so copying an untrusted mapping would launder it.
 * Each row is bound to the configured ACS resource, as the table store binds the rows it writes.
 *
 * The table is never overwritten: a user the table already maps is left alone (`already_copied` when
 * it names the same identity, `conflict` otherwise), and the table's own insert-if-absent of the user
 * row and the identity row together refuses an identity another user holds there. So the copy is
 * idempotent and safe to run while a service in table mode creates mappings: every write first reads
 * the user's row, and a row created between that read and the write wins.
 *
 * It copies page by page as the directory scan reads them (nothing is held for the whole tenant), so
 * a run that stops (a failed scan request, too many failed writes) leaves every row either copied or
 * absent: running it again skips what is there at the cost of one read per mapping, and goes on.
 */
import { AppError, IdentityMappedElsewhereError } from '../errors/app-errors';
import { createOwnedStoreSealer, type MappingSealer, type UntrustedReason } from '../services/mapping-seal';
import type { MappingStore, MappingTarget, StoredMapping } from '../services/ports';
import { patiently, type ThrottleOptions } from './mapping-maintenance';
import type { DirectoryEntry, MappingDirectory, RequestRunner } from './ports';

/** What the copy did (or, in a dry run, would do) for one user with a mapping in Graph. */
export type CopyResult =
  /** Dry run: sealed, and the table has no row for the user. */
  | 'would_copy'
  | 'copied'
  /** The table already maps the user to this identity, for this ACS resource (an earlier run, or the service). */
  | 'already_copied'
  /** The Graph mapping's seal does not verify: not copied (`reason` says why, as the service's log would). */
  | 'untrusted'
  /** The table maps the user to another identity, or to this one for another ACS resource: the row is kept. */
  | 'conflict'
  /** The table maps this identity to another user: it refused the row. */
  | 'identity_mapped_elsewhere'
  | 'failed'
  /** The run stopped (too many failures in a row) before reaching this user. */
  | 'not_attempted';

export const COPY_RESULTS: readonly CopyResult[] = [
  'would_copy',
  'copied',
  'already_copied',
  'untrusted',
  'conflict',
  'identity_mapped_elsewhere',
  'failed',
  'not_attempted',
];

/** The verify reasons, in the order the report lists them. */
export const UNTRUSTED_REASONS: readonly UntrustedReason[] = [
  'no_seal',
  'malformed_seal',
  'unknown_key',
  'seal_mismatch',
  'malformed_identity',
];

/** Why a user is in conflict: the table names another identity, or this identity for another ACS resource. */
export type ConflictReason = 'other_identity' | 'other_acs_resource';

export interface CopyLine {
  readonly oid: string;
  /** The identity the Graph mapping names (undefined when it names no valid ACS id). */
  readonly acsUserId: string | undefined;
  readonly result: CopyResult;
  /** `untrusted`: the verify reason; `conflict`: a {@link ConflictReason}; `failed`: the error's code. */
  readonly reason?: string;
  /** `failed`: the error's message, when it is one of the project's own (they never hold a secret). */
  readonly detail?: string;
  /** `conflict`: the identity the table maps the user to, when it is a valid ACS id. */
  readonly tableAcsUserId?: string;
}

export interface CopyReport {
  readonly apply: boolean;
  readonly target: { readonly store: 'table'; readonly tableName: string; readonly acsResource: string };
  readonly tenantId: string;
  readonly extensionName: string;
  readonly usersScanned: number;
  readonly usersWithMapping: number;
  /** False when the scan stopped before the end of the directory (a failed request, or too many failed writes). */
  readonly scanComplete: boolean;
  readonly counts: Readonly<Record<CopyResult, number>>;
  /** The `untrusted` ones by reason. */
  readonly untrusted: Readonly<Record<UntrustedReason, number>>;
  /** Every user not copied (nor already in the table), with why; the copied ones are only counted. */
  readonly skipped: readonly CopyLine[];
  /** Set when the run stopped early. */
  readonly stoppedBecause: string | undefined;
}

/** Callbacks for a long run: users read, waits on throttling, each user's outcome. */
export interface CopyProgress {
  scanned?(users: number): void;
  throttled?(waitMs: number): void;
  user?(line: CopyLine): void;
}

export interface CopyOptions {
  readonly apply: boolean;
  readonly progress?: CopyProgress;
}

export interface MappingCopyOptions extends ThrottleOptions {
  readonly directory: MappingDirectory;
  /** The Graph store's sealer (MAPPING_SEAL_KEYS, the configured ACS resource): only what it verifies is copied. */
  readonly sealer: MappingSealer;
  readonly tenantId: string;
  readonly extensionName: string;
  /** The table store to copy into. */
  readonly table: MappingStore;
  readonly tableName: string;
  /** The configured ACS resource (acsResourceOf): every row written is bound to it. */
  readonly acsResource: string;
  /** Users in a row that could not be copied after which the run stops (an outage or a missing role fails them all; default 10). */
  readonly maxConsecutiveFailures?: number;
}

export interface MappingCopy {
  copy(options: CopyOptions): Promise<CopyReport>;
}

/** A Graph mapping whose seal verified: what may be copied. */
interface SealedEntry {
  readonly oid: string;
  readonly acsUserId: string;
}

/** The table store's refusal of an identity that another user's row holds: the one store error this command gives a meaning of its own. */
function isMappedElsewhere(error: unknown): boolean {
  return error instanceof IdentityMappedElsewhereError;
}

/** A failure as reported: the project's errors by code and message (both its own text); others by name only. */
function failureOf(error: unknown): { reason: string; detail?: string } {
  if (error instanceof AppError) return { reason: error.code, detail: error.message };
  return { reason: error instanceof Error ? error.name : 'error' };
}

function describeFailure(error: unknown): string {
  const { reason, detail } = failureOf(error);
  return detail === undefined ? reason : `${reason}: ${detail}`;
}

/** What one user's table row says about the mapping to copy. */
function compareRow(owned: MappingSealer, tenantId: string, entry: SealedEntry, stored: StoredMapping): CopyLine {
  const { oid, acsUserId } = entry;
  const verdict = owned.verify({ tid: tenantId, oid }, stored.acsUserId, stored.seal);
  if (verdict.trusted && verdict.acsUserId === acsUserId) return { oid, acsUserId, result: 'already_copied' };
  const reason: ConflictReason = stored.acsUserId === acsUserId ? 'other_acs_resource' : 'other_identity';
  const tableAcsUserId = verdict.acsUserId;
  return { oid, acsUserId, result: 'conflict', reason, ...(tableAcsUserId === undefined ? {} : { tableAcsUserId }) };
}

/** Copies one sealed mapping: the read, and with `apply` the write. */
type CopyUnit = (entry: SealedEntry, apply: boolean) => Promise<CopyLine>;

function createCopyUnit(options: MappingCopyOptions): CopyUnit {
  const { table, tenantId } = options;
  const owned = createOwnedStoreSealer(options.acsResource);

  /** Insert both rows; a row that appeared since the read (the service, another run) is compared, never replaced. */
  async function write(target: MappingTarget, entry: SealedEntry): Promise<CopyLine> {
    const { oid, acsUserId } = entry;
    let outcome: 'created' | 'exists';
    try {
      outcome = await table.create(target, { acsUserId, seal: owned.seal({ tid: tenantId, oid }, acsUserId) });
    } catch (error) {
      if (isMappedElsewhere(error)) return { oid, acsUserId, result: 'identity_mapped_elsewhere' };
      throw error;
    }
    if (outcome === 'created') return { oid, acsUserId, result: 'copied' };
    const now = await table.read(target);
    if (now !== undefined) return compareRow(owned, tenantId, entry, now);
    // Made and removed again by others between our insert and this read: nothing to compare; run again.
    return { oid, acsUserId, result: 'failed', reason: 'mapping_changed', detail: "the user's table row changed during the copy" };
  }

  /** Read the user's row first: an existing row is only compared (cheap on a rerun), and a dry run stops there. */
  return async (entry: SealedEntry, apply: boolean): Promise<CopyLine> => {
    const target = await table.targetOfUser(tenantId, entry.oid);
    const stored = await table.read(target);
    if (stored !== undefined) return compareRow(owned, tenantId, entry, stored);
    if (!apply) return { oid: entry.oid, acsUserId: entry.acsUserId, result: 'would_copy' };
    return write(target, entry);
  };
}

/** The report being built: counts and the skipped users. */
interface Tally {
  readonly counts: Record<CopyResult, number>;
  readonly untrusted: Record<UntrustedReason, number>;
  readonly skipped: CopyLine[];
  add(line: CopyLine): void;
}

/** Whether the run goes on: users in a row that could not be copied, and why it stopped once it did. */
interface StopState {
  failuresInRow: number;
  because?: string;
}

function createTally(progress: CopyProgress | undefined): Tally {
  const counts = Object.fromEntries(COPY_RESULTS.map((result) => [result, 0])) as Record<CopyResult, number>;
  const untrusted = Object.fromEntries(UNTRUSTED_REASONS.map((reason) => [reason, 0])) as Record<UntrustedReason, number>;
  const skipped: CopyLine[] = [];
  return {
    counts,
    untrusted,
    skipped,
    add(line: CopyLine): void {
      counts[line.result] += 1;
      if (line.result === 'untrusted') untrusted[line.reason as UntrustedReason] += 1;
      if (line.result !== 'copied' && line.result !== 'would_copy' && line.result !== 'already_copied') skipped.push(line);
      progress?.user?.(line);
    },
  };
}

export function createMappingCopy(options: MappingCopyOptions): MappingCopy {
  const { directory, sealer, tenantId } = options;
  const copyOne = createCopyUnit(options);
  const maxConsecutiveFailures = options.maxConsecutiveFailures ?? 10;

  /** Copy one sealed mapping; a failure is reported, and too many in a row stop the run. */
  async function attempt(entry: SealedEntry, apply: boolean, run: RequestRunner, tally: Tally, stop: StopState): Promise<void> {
    let line: CopyLine;
    try {
      // The read and the write are retried as one unit after throttling: every attempt reads first.
      line = await run(() => copyOne(entry, apply));
    } catch (error) {
      line = { ...entry, result: 'failed', ...failureOf(error) };
    }
    tally.add(line);
    stop.failuresInRow = line.result === 'failed' ? stop.failuresInRow + 1 : 0;
    if (stop.failuresInRow >= maxConsecutiveFailures) {
      const last = line.detail === undefined ? line.reason : `${line.reason}: ${line.detail}`;
      stop.because = `${stop.failuresInRow} users in a row could not be copied (last: ${last})`;
    }
  }

  /** One page, one user at a time (the table's budget is shared with a service that may run on it). */
  async function copyPage(
    page: readonly DirectoryEntry[],
    apply: boolean,
    run: RequestRunner,
    tally: Tally,
    stop: StopState,
  ): Promise<void> {
    for (const { oid, mapping } of page) {
      if (mapping === undefined) continue;
      const verdict = sealer.verify({ tid: tenantId, oid }, mapping.acsUserId, mapping.seal);
      if (!verdict.trusted) tally.add({ oid, acsUserId: verdict.acsUserId, result: 'untrusted', reason: verdict.reason });
      else if (stop.because !== undefined) tally.add({ oid, acsUserId: verdict.acsUserId, result: 'not_attempted' });
      else await attempt({ oid, acsUserId: verdict.acsUserId }, apply, run, tally, stop);
    }
  }

  return {
    async copy({ apply, progress }) {
      const run = patiently(options, progress);
      const tally = createTally(progress);
      const stop: StopState = { failuresInRow: 0 };
      let usersScanned = 0;
      let usersWithMapping = 0;
      let scanComplete = false;
      try {
        for await (const page of directory.scan(run)) {
          usersScanned += page.length;
          usersWithMapping += page.filter((entry) => entry.mapping !== undefined).length;
          await copyPage(page, apply, run, tally, stop);
          progress?.scanned?.(usersScanned);
          if (stop.because !== undefined) break;
        }
        scanComplete = stop.because === undefined;
      } catch (error) {
        // Nothing read yet: the command could not run at all (permission, credential), as audit and seal report it.
        if (usersScanned === 0) throw error;
        stop.because = `reading the directory failed after ${usersScanned} users (${describeFailure(error)})`;
      }
      return {
        apply,
        target: { store: 'table', tableName: options.tableName, acsResource: options.acsResource },
        tenantId,
        extensionName: options.extensionName,
        usersScanned,
        usersWithMapping,
        scanComplete,
        counts: tally.counts,
        untrusted: tally.untrusted,
        skipped: tally.skipped,
        stoppedBecause: stop.because,
      };
    },
  };
}
