import type { Caller } from '../auth/caller';
import { IdentityNotFoundError, IdentityNotOwnedError, UpstreamError } from '../errors/app-errors';
import type { Logger } from '../observability/logger';
import { summarizeError } from '../observability/redact';
import { mappingKey, type MappingCache } from './mapping-cache';
import type { AcsIdentities, GraphTokenSource, IssuedToken, MappingStore, MappingTarget, TokenRequest } from './ports';

/**
 * The business flow of this service, in one place: map each Entra ID user to exactly one ACS
 * identity (stored in a Graph open extension on the user), and issue ACS tokens for it.
 *
 * Invariant: no ACS identity is ever left alive without a mapping that points to it. Creating writes
 * the identity first and the mapping second, and deletes the identity again whenever the mapping is
 * not ours; deleting removes the identity first and the mapping second, so a failure at any step
 * leaves a mapping to retry with, never an orphaned identity.
 */
export interface IdentityServiceDependencies {
  readonly graphTokens: GraphTokenSource;
  readonly mappings: MappingStore;
  readonly acs: AcsIdentities;
  readonly logger: Logger;
  /** Client id that Teams users' Entra tokens are issued to (checked by ACS against `appid`). */
  readonly teamsClientId: string;
  /** Remembered mappings for the token operations (the hot path); see mapping-cache.ts. */
  readonly mappingCache: MappingCache;
}

export interface EnsuredIdentity {
  readonly acsUserId: string;
  readonly created: boolean;
}

export interface TokenForUser extends IssuedToken {
  readonly acsUserId: string;
}

export interface IdentityService {
  /** The caller's mapped ACS identity; IdentityNotFoundError when there is none. */
  getIdentity(caller: Caller): Promise<string>;
  /** Get or create the caller's identity; concurrent calls for one user end with one identity. */
  ensureIdentity(caller: Caller): Promise<EnsuredIdentity>;
  /** Delete the caller's identity and mapping; idempotent and safe to retry. */
  deleteIdentity(caller: Caller): Promise<void>;
  /** Admin erasure of another user's identity and mapping (app-only Graph access). */
  deleteIdentityOfUser(admin: Caller, userObjectId: string): Promise<void>;
  /** Issue a token for the caller's existing identity; IdentityNotFoundError when there is none. */
  issueToken(caller: Caller, request: TokenRequest): Promise<TokenForUser>;
  /** Get or create the caller's identity and issue a token, in as few upstream calls as possible. */
  issueTokenCreatingIdentity(caller: Caller, request: TokenRequest): Promise<TokenForUser & { readonly created: boolean }>;
  revokeTokens(caller: Caller): Promise<void>;
  exchangeTeamsToken(caller: Caller, teamsToken: string): Promise<IssuedToken>;
  /** Mappings held in memory (for benchmarks and diagnostics). */
  cachedMappings(): number;
}

/** A create's result; `token` is set when the identity was made together with its first token. */
type CreateOutcome = EnsuredIdentity & { readonly token?: IssuedToken };

export function createIdentityService(deps: IdentityServiceDependencies): IdentityService {
  const { graphTokens, mappings, acs, logger, mappingCache: cache } = deps;
  const keyOf = (caller: Caller): string => mappingKey(caller.tid, caller.oid);
  /** One in-flight create per user in this process: concurrent callers share its outcome. */
  const creating = new Map<string, Promise<CreateOutcome>>();

  async function meTarget(caller: Caller): Promise<MappingTarget> {
    return { kind: 'me', graphToken: await graphTokens.forUser(caller.assertion) };
  }

  /** Delete an identity this process created but could not map. Failure here is the one way to orphan one: log it loudly. */
  async function discard(acsUserId: string, reason: string): Promise<void> {
    try {
      await acs.deleteIdentity(acsUserId);
      logger.info({ acsUserId, reason }, 'deleted an ACS identity that lost the mapping race');
    } catch (error) {
      logger.error({ acsUserId, reason, err: summarizeError(error) }, 'ORPHANED ACS identity: could not delete an identity that has no mapping; delete it by hand');
      throw error;
    }
  }

  /**
   * Make the identity and map it. Graph refuses a second extension with the same name, which makes
   * the mapping write the arbiter between instances; whoever loses deletes what it made.
   */
  async function createAndMap(target: MappingTarget, request: TokenRequest | undefined): Promise<CreateOutcome> {
    const existing = await mappings.read(target);
    if (existing !== undefined) return { acsUserId: existing, created: false };

    let acsUserId: string;
    let token: IssuedToken | undefined;
    if (request) {
      const made = await acs.createIdentityWithToken(request);
      acsUserId = made.acsUserId;
      token = { token: made.token, expiresOn: made.expiresOn };
    } else {
      acsUserId = await acs.createIdentity();
    }

    const ours: CreateOutcome = { acsUserId, created: true, ...(token ? { token } : {}) };
    let outcome: 'created' | 'exists';
    try {
      outcome = await mappings.create(target, acsUserId);
    } catch (writeError) {
      // The write may have landed even though we saw a failure (a timeout, a lost answer): look before discarding.
      const current = await mappings.read(target).catch(() => undefined);
      if (current === acsUserId) return ours;
      await discard(acsUserId, 'the mapping write failed');
      if (current !== undefined) return { acsUserId: current, created: false };
      throw writeError;
    }
    if (outcome === 'created') return ours;

    await discard(acsUserId, 'another request mapped the user first');
    const winner = await mappings.read(target);
    if (winner === undefined) {
      throw new UpstreamError('graph', 'error', 'the identity mapping changed while it was being created; try again');
    }
    return { acsUserId: winner, created: false };
  }

  function singleFlight(caller: Caller, work: () => Promise<CreateOutcome>): Promise<CreateOutcome> {
    const key = keyOf(caller);
    const inFlight = creating.get(key);
    if (inFlight) return inFlight.then(({ acsUserId }) => ({ acsUserId, created: false }));
    const promise = work().finally(() => creating.delete(key));
    creating.set(key, promise);
    return promise;
  }

  async function removeIdentityAndMapping(target: MappingTarget): Promise<string | undefined> {
    const acsUserId = await mappings.read(target);
    if (acsUserId === undefined) return undefined;
    // Identity first: if the mapping removal then fails, a retry finds the mapping, re-deletes the
    // (already gone) identity and tries again. The other order could strand a live identity.
    await acs.deleteIdentity(acsUserId);
    await mappings.remove(target);
    return acsUserId;
  }

  /** The mapping points to an identity ACS no longer has: drop the mapping so the user can start over. */
  async function healStaleMapping(target: MappingTarget, caller: Caller, acsUserId: string): Promise<void> {
    logger.warn({ oid: caller.oid, acsUserId }, 'stale identity mapping: the ACS identity no longer exists; removing the mapping');
    cache.delete(keyOf(caller));
    try {
      await mappings.remove(target);
    } catch (error) {
      logger.warn({ oid: caller.oid, err: summarizeError(error) }, 'could not remove a stale identity mapping; it will be retried on the next request');
    }
  }

  /** Run an ACS operation on a mapped identity; when ACS says it is gone, heal the mapping and rethrow. */
  async function onMappedIdentity<T>(caller: Caller, target: MappingTarget, acsUserId: string, operation: (acsUserId: string) => Promise<T>): Promise<T> {
    try {
      return await operation(acsUserId);
    } catch (error) {
      if (error instanceof IdentityNotFoundError) await healStaleMapping(target, caller, acsUserId);
      throw error;
    }
  }

  /**
   * Run an ACS operation on the cached identity when there is one. Resolves undefined when there is
   * no usable entry (none, or ACS says the identity is gone or another resource's: then it is dropped
   * and the caller falls back to reading Graph, which also heals the mapping). A foreign id may have
   * been unmapped with Graph directly (the documented fix after switching resources), so only Graph
   * can say whether it still stands.
   */
  async function onCachedIdentity<T>(caller: Caller, operation: (acsUserId: string) => Promise<T>): Promise<{ value: T; acsUserId: string } | undefined> {
    const acsUserId = cache.get(keyOf(caller));
    if (acsUserId === undefined) return undefined;
    try {
      return { value: await operation(acsUserId), acsUserId };
    } catch (error) {
      if (!(error instanceof IdentityNotFoundError || error instanceof IdentityNotOwnedError)) throw error;
      cache.delete(keyOf(caller));
      return undefined;
    }
  }

  /** Read the caller's mapping from Graph (the source of truth) and refresh the cache with it. */
  async function readMapping(caller: Caller, target: MappingTarget): Promise<string | undefined> {
    const acsUserId = await mappings.read(target);
    if (acsUserId === undefined) cache.delete(keyOf(caller));
    else cache.set(keyOf(caller), acsUserId);
    return acsUserId;
  }

  /** Run an ACS operation on the caller's identity: the cached one, else the one Graph maps; 404 when there is none. */
  async function onCallersIdentity<T>(caller: Caller, operation: (acsUserId: string) => Promise<T>): Promise<{ value: T; acsUserId: string }> {
    const cached = await onCachedIdentity(caller, operation);
    if (cached) return cached;
    const target = await meTarget(caller);
    const acsUserId = await readMapping(caller, target);
    if (acsUserId === undefined) throw new IdentityNotFoundError();
    return { value: await onMappedIdentity(caller, target, acsUserId, operation), acsUserId };
  }

  return {
    cachedMappings: () => cache.size,

    async getIdentity(caller) {
      const acsUserId = await readMapping(caller, await meTarget(caller));
      if (acsUserId === undefined) throw new IdentityNotFoundError();
      return acsUserId;
    },

    async ensureIdentity(caller) {
      const target = await meTarget(caller);
      const { acsUserId, created } = await singleFlight(caller, () => createAndMap(target, undefined));
      cache.set(keyOf(caller), acsUserId);
      if (created) logger.info({ oid: caller.oid, acsUserId }, 'created and mapped an ACS identity');
      return { acsUserId, created };
    },

    async deleteIdentity(caller) {
      cache.delete(keyOf(caller));
      const removed = await removeIdentityAndMapping(await meTarget(caller));
      cache.delete(keyOf(caller));
      if (removed !== undefined) logger.info({ oid: caller.oid, acsUserId: removed }, 'deleted the ACS identity and its mapping');
    },

    async deleteIdentityOfUser(admin, userObjectId) {
      const target: MappingTarget = { kind: 'user', userId: userObjectId, graphToken: await graphTokens.forApp() };
      const key = mappingKey(admin.tid, userObjectId);
      cache.delete(key);
      const removed = await removeIdentityAndMapping(target);
      cache.delete(key);
      logger.info(
        { adminOid: admin.oid, targetOid: userObjectId, acsUserId: removed ?? null },
        removed === undefined ? 'admin erasure: the user had no identity mapping' : 'admin erasure: deleted the ACS identity and its mapping',
      );
    },

    async issueToken(caller, request) {
      const { value, acsUserId } = await onCallersIdentity(caller, (id) => acs.issueToken(id, request));
      return { ...value, acsUserId };
    },

    async issueTokenCreatingIdentity(caller, request) {
      const cached = await onCachedIdentity(caller, (id) => acs.issueToken(id, request));
      if (cached) return { ...cached.value, acsUserId: cached.acsUserId, created: false };
      const target = await meTarget(caller);
      for (let attempt = 0; ; attempt += 1) {
        const ensured = await singleFlight(caller, () => createAndMap(target, request));
        cache.set(keyOf(caller), ensured.acsUserId);
        if (ensured.token) return { ...ensured.token, acsUserId: ensured.acsUserId, created: ensured.created };
        try {
          const token = await onMappedIdentity(caller, target, ensured.acsUserId, (id) => acs.issueToken(id, request));
          return { ...token, acsUserId: ensured.acsUserId, created: ensured.created };
        } catch (error) {
          // A stale mapping was just removed: create a fresh identity, once.
          if (!(error instanceof IdentityNotFoundError) || attempt > 0) throw error;
        }
      }
    },

    async revokeTokens(caller) {
      await onCallersIdentity(caller, (id) => acs.revokeTokens(id));
    },

    async exchangeTeamsToken(caller, teamsToken) {
      // ACS checks the Teams token's appid and oid against these: the caller may only exchange its own.
      return acs.exchangeTeamsToken({ teamsToken, appId: deps.teamsClientId, userId: caller.oid });
    },
  };
}

