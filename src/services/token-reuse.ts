/**
 * A budget for ACS token issues. ACS allows 1,000 issues per 30 s for the whole fleet, and clients ask in bursts
 * (page reloads, several tabs, a sign-in wave, retries after an outage), so a token issued a moment ago for the
 * same identity, scopes and requested lifetime is handed out again instead of asking ACS for another:
 * - within `windowMs` of its issue only, and only while at least half of its lifetime is left, so a reused token
 *   is never close to its end (with ACS's 60-minute minimum, a few seconds' reuse costs a client nothing);
 * - concurrent requests for the same token share one ACS call;
 * - a revoke or delete of the identity forgets its tokens first, and an issue that started before the last one
 *   is never kept (it may have been revoked on its way back). `invalidations` carries both to the other instances;
 *   while it is cut off (Redis down) nothing is reused, and after it reconnects everything kept is dropped, since
 *   a revoke elsewhere may have been missed. Concurrent requests still share one ACS call then.
 *
 * Tokens stay in this process's memory only: Redis carries the invalidations, never a token.
 *
 * @packageDocumentation
 */
import { LRUCache } from 'lru-cache';

import type { AcsIdentities, IssuedToken, TokenRequest } from './ports';

/** How other instances hear of a revoke or delete here (and this one of theirs). */
export interface TokenInvalidations {
  publish(acsUserId: string): void;
  subscribe(listener: (acsUserId: string) => void): void;
  /** While false no token is reused: a revoke elsewhere could not reach this instance. */
  connected(): boolean;
  /** After a reconnection: what was missed meanwhile is unknown, so every kept token is dropped. */
  onResume(listener: () => void): void;
}

export interface TokenReuseOptions {
  readonly windowMs: number;
  /** Identities whose recent tokens are kept. */
  readonly maxIdentities: number;
  readonly invalidations?: TokenInvalidations | undefined;
  /** Epoch milliseconds (`Date.now` by default), compared with the tokens' `expiresOn`. */
  readonly now?: () => number;
}

interface Kept {
  readonly issued: IssuedToken;
  readonly issuedAt: number;
}

export function withTokenReuse(acs: AcsIdentities, options: TokenReuseOptions): AcsIdentities {
  const now = options.now ?? Date.now;
  /** acsUserId → (token request → the token kept); whole identities are forgotten at once. */
  const kept = new LRUCache<string, Map<string, Kept>>({ max: options.maxIdentities });
  const forgets = forgetLog(options.maxIdentities);
  /** acsUserId → (token request → the issue under way): a forget drops them, so no later request joins one. */
  const inFlight = new Map<string, Map<string, Promise<IssuedToken>>>();

  const forget = (acsUserId: string): void => {
    kept.delete(acsUserId);
    inFlight.delete(acsUserId);
    forgets.record(acsUserId);
  };
  options.invalidations?.subscribe(forget);
  options.invalidations?.onResume(() => kept.clear());
  const canReuse = (): boolean => options.invalidations === undefined || options.invalidations.connected();

  const reusable = (entry: Kept | undefined): IssuedToken | undefined => {
    const at = now();
    if (entry === undefined || at - entry.issuedAt >= options.windowMs || at < entry.issuedAt) return undefined;
    const expiresAt = entry.issued.expiresOn.getTime();
    return expiresAt - at >= (expiresAt - entry.issuedAt) / 2 ? entry.issued : undefined;
  };

  async function issue(acsUserId: string, request: TokenRequest, requestKey: string): Promise<IssuedToken> {
    const startedAt = now();
    const before = forgets.mark(acsUserId);
    const issued = await acs.issueToken(acsUserId, request);
    // Not kept if a revoke or delete came while it was on its way: ACS may have revoked it already.
    if (forgets.unchangedSince(acsUserId, before)) {
      const tokens = kept.get(acsUserId) ?? new Map<string, Kept>();
      // Past the window an entry is never used again: dropped here, so an identity holds at most a window's worth.
      for (const [key, entry] of tokens) if (now() - entry.issuedAt >= options.windowMs) tokens.delete(key);
      tokens.set(requestKey, { issued, issuedAt: startedAt });
      kept.set(acsUserId, tokens);
    }
    return issued;
  }

  /**
   * Forgets (here and, through `invalidations`, everywhere) before the operation, so no instance hands out the
   * identity's token while it is being revoked, and again after it, for the issues that were under way meanwhile.
   */
  async function invalidating(acsUserId: string, operation: () => Promise<void>): Promise<void> {
    forget(acsUserId);
    options.invalidations?.publish(acsUserId);
    try {
      await operation();
    } finally {
      forget(acsUserId);
      options.invalidations?.publish(acsUserId);
    }
  }

  return {
    ...acs,
    async issueToken(acsUserId, request) {
      const requestKey = `${[...request.scopes].sort().join(',')}|${request.expiresInMinutes ?? ''}`;
      const reused = canReuse() ? reusable(kept.get(acsUserId)?.get(requestKey)) : undefined;
      if (reused !== undefined) return reused;
      const flights = inFlight.get(acsUserId) ?? new Map<string, Promise<IssuedToken>>();
      const running = flights.get(requestKey);
      if (running !== undefined) return running;
      const started = issue(acsUserId, request, requestKey).finally(() => {
        // Only its own entry: after a forget a newer issue may have taken the slot.
        if (flights.get(requestKey) === started) flights.delete(requestKey);
        if (flights.size === 0 && inFlight.get(acsUserId) === flights) inFlight.delete(acsUserId);
      });
      flights.set(requestKey, started);
      inFlight.set(acsUserId, flights);
      return started;
    },
    async revokeTokens(acsUserId) {
      await invalidating(acsUserId, () => acs.revokeTokens(acsUserId));
    },
    async deleteIdentity(acsUserId) {
      await invalidating(acsUserId, () => acs.deleteIdentity(acsUserId));
    },
  };
}

/**
 * When each identity's tokens were last forgotten (revoke, delete, or a message from another instance), as
 * numbers from one counter: an issue is kept only if its identity's number did not change while it ran. An entry
 * evicted meanwhile could hide a change, so any eviction during the issue also means "do not keep".
 */
function forgetLog(maxIdentities: number): {
  record(acsUserId: string): void;
  mark(acsUserId: string): { readonly generation: number | undefined; readonly evictions: number };
  unchangedSince(acsUserId: string, mark: { readonly generation: number | undefined; readonly evictions: number }): boolean;
} {
  let counter = 0;
  let evictions = 0;
  const generations = new LRUCache<string, number>({
    max: maxIdentities,
    dispose: (_value, _key, reason) => {
      if (reason === 'evict') evictions += 1;
    },
  });
  return {
    record(acsUserId) {
      counter += 1;
      generations.set(acsUserId, counter);
    },
    mark: (acsUserId) => ({ generation: generations.get(acsUserId), evictions }),
    unchangedSince: (acsUserId, mark) => generations.get(acsUserId) === mark.generation && evictions === mark.evictions,
  };
}
