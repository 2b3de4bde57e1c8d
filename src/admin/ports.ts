/**
 * What the mapping maintenance (`npm run mappings`) needs from the directory: every user's stored
 * mapping, page by page, one user's mapping as it is now, and a way to rewrite one. The Graph
 * adapter (adapters/graph/graph-mapping-directory.ts) implements it with an app-only token and
 * translates Graph's errors into the project's AppErrors, as the service's own adapters do.
 */

import type { SealedMapping, StoredMapping } from '../services/ports';

/** One user as the scan found them: the mapping exactly as stored (unverified), or none. */
export interface DirectoryEntry {
  readonly oid: string;
  readonly mapping: StoredMapping | undefined;
}

/** What a reseal did: rewrote the mapping, or found the user's mapping extension gone. */
export type ResealOutcome = 'resealed' | 'gone';

/**
 * Runs one directory request; the scan hands each page request to it, so a caller can wait out
 * throttling and retry that page without starting the scan over.
 */
export type RequestRunner = <T>(request: () => Promise<T>) => Promise<T>;

export interface MappingDirectory {
  /**
   * Every user of the tenant, one page (up to 100 users) at a time. Restartable only from the
   * beginning: the paging links are not kept, so an interrupted scan is simply run again.
   */
  scan(run?: RequestRunner): AsyncIterable<readonly DirectoryEntry[]>;
  /**
   * One user's mapping as stored now (unverified), read the way the scan reads it; undefined when
   * the user has none or no longer exists. The maintenance reads it again right before a write, as
   * the scan may be minutes old by then.
   */
  read(oid: string): Promise<StoredMapping | undefined>;
  /**
   * Replace the user's mapping with `mapping` (its whole property set: any other property of the
   * extension is dropped). 'gone' when the user or the extension no longer exists.
   */
  reseal(oid: string, mapping: SealedMapping): Promise<ResealOutcome>;
}
