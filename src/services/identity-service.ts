import type { Caller } from '../auth/caller';
import { IdentityNotFoundError, IdentityNotOwnedError, MappingChangedError, MappingUntrustedError, UpstreamError } from '../errors/app-errors';
import type { Logger } from '../observability/logger';
import { summarizeError } from '../observability/redact';
import { mappingKey, type MappingCache } from './mapping-cache';
import type { MappingSealer, UntrustedReason } from './mapping-seal';
import type { AcsIdentities, GraphTokenSource, IssuedToken, MappingStore, MappingTarget, StoredMapping, TokenRequest } from './ports';

/**
 * The business flow of this service, in one place: map each Entra ID user to exactly one ACS
 * identity (stored in a Graph open extension on the user), and issue ACS tokens for it.
 *
 * Invariant: no ACS identity is ever left alive without a mapping that points to it. Creating writes
 * the identity first and the mapping second, and deletes the identity again whenever the mapping is
 * not ours; deleting removes the identity first and the mapping second, so a failure at any step
 * leaves a mapping to retry with, never an orphaned identity.
 *
 * Trust: the stored mapping is user-writable, so it is used only when its seal verifies for this
 * user, tenant and ACS resource (mapping-seal.ts). An untrusted mapping never reaches ACS: it is
 * refused (409 `mapping_untrusted`), replaced by `POST /api/user`, removed (never the identity it
 * names) by the user's own `DELETE /api/user`, and reported to an admin erasing the user. Only
 * verified ids enter the mapping cache. Every removal is conditional on what is stored at that moment
 * (ports.ts `remove`), so a request never deletes a mapping another request has just written.
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
  /** Seals the mappings this service writes and verifies every mapping it reads. */
  readonly sealer: MappingSealer;
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

/** The stored mapping of a user, after its seal was checked. */
type MappingState =
  | { readonly state: 'none' }
  | { readonly state: 'trusted'; readonly acsUserId: string }
  | { readonly state: 'untrusted'; readonly reason: UntrustedReason; readonly storedAcsUserId: string | undefined };

/**
 * What an admin erasing a user with an untrusted mapping is told: the admin may see which identity
 * it names and why it is not trusted (the user may not: that could help them probe).
 */
function erasureRefusal(found: { readonly reason: UntrustedReason; readonly storedAcsUserId: string | undefined }): string {
  const names = found.storedAcsUserId === undefined ? 'names no valid identity' : `names ${found.storedAcsUserId}`;
  return (
    `The user's identity mapping is not trusted (${found.reason}): nothing was deleted and the mapping was left in place. ` +
    `It ${names}, which may be another user's identity. Check with 'npm run mappings -- audit', then delete the identity and the mapping by hand (docs/troubleshooting.md).`
  );
}

/** What an untrusted mapping is met by: refused, replaced by a new identity, or removed (alone). */
type UntrustedAction = 'refused' | 'replaced' | 'removed';

const UNTRUSTED_LOG: Readonly<Record<UntrustedAction, string>> = {
  refused: 'untrusted identity mapping: refused; the identity it names is not used',
  replaced: 'untrusted identity mapping: replacing it with a new identity; the identity it named is left alone',
  removed: 'untrusted identity mapping: removing the mapping only; the identity it names is left alone',
};

export function createIdentityService(deps: IdentityServiceDependencies): IdentityService {
  const { graphTokens, mappings, acs, logger, mappingCache: cache, sealer } = deps;
  const keyOf = (caller: Caller): string => mappingKey(caller.tid, caller.oid);
  /** One in-flight create per user in this process: concurrent callers share its outcome. */
  const creating = new Map<string, Promise<CreateOutcome>>();
  /** The tail of each user's queue of mapping writes in this process (see `oneWriterAtATime`). */
  const writing = new Map<string, Promise<void>>();

  /**
   * Run a user's mapping writes (create, replace, delete, erase) one after another in this process.
   * Graph has no conditional write for open extensions: a replace and a delete of one user that
   * interleave could each act on what the other just wrote (a delete landing on the new mapping
   * orphans its identity). Across instances the compare-and-delete of `remove` narrows that window
   * but cannot close it; within one instance this does.
   */
  function oneWriterAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
    const result = (writing.get(key) ?? Promise.resolve()).then(work);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    writing.set(key, settled);
    void settled.then(() => {
      if (writing.get(key) === settled) writing.delete(key);
    });
    return result;
  }

  async function signedInUsersMapping(caller: Caller): Promise<MappingTarget> {
    return { via: 'me', tid: caller.tid, oid: caller.oid, graphToken: await graphTokens.forUser(caller.assertion) };
  }

  /** Read the stored mapping and check its seal: the one place a stored mapping becomes trusted. */
  async function inspect(target: MappingTarget): Promise<MappingState> {
    const stored = await mappings.read(target);
    if (stored === undefined) return { state: 'none' };
    const verdict = sealer.verify(target, stored.acsUserId, stored.seal);
    return verdict.trusted
      ? { state: 'trusted', acsUserId: verdict.acsUserId }
      : { state: 'untrusted', reason: verdict.reason, storedAcsUserId: verdict.acsUserId };
  }

  /** Removal conditions, checked on the mapping as stored when the removal runs. */
  const stillUntrusted =
    (target: MappingTarget) =>
    (stored: StoredMapping): boolean =>
      !sealer.verify(target, stored.acsUserId, stored.seal).trusted;
  const stillNames =
    (acsUserId: string) =>
    (stored: StoredMapping): boolean =>
      stored.acsUserId === acsUserId;

  function reportUntrusted(target: MappingTarget, found: Extract<MappingState, { state: 'untrusted' }>, action: UntrustedAction): void {
    logger.warn({ oid: target.oid, reason: found.reason, storedAcsUserId: found.storedAcsUserId ?? null, action }, UNTRUSTED_LOG[action]);
  }

  /** The trusted id, undefined when there is no mapping; an untrusted one is logged and refused. */
  function trustedIdOrRefuse(target: MappingTarget, found: MappingState): string | undefined {
    if (found.state === 'untrusted') {
      reportUntrusted(target, found, 'refused');
      throw new MappingUntrustedError();
    }
    return found.state === 'trusted' ? found.acsUserId : undefined;
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

  /** Make an ACS identity, with its first token when one is wanted (one ACS call either way). */
  async function makeIdentity(request: TokenRequest | undefined): Promise<{ acsUserId: string; token?: IssuedToken }> {
    if (!request) return { acsUserId: await acs.createIdentity() };
    const made = await acs.createIdentityWithToken(request);
    return { acsUserId: made.acsUserId, token: { token: made.token, expiresOn: made.expiresOn } };
  }

  /**
   * Make the identity and map it. Graph refuses a second extension with the same name, which makes
   * the mapping write the arbiter between instances; whoever loses deletes what it made. An
   * untrusted mapping is refused, or (for `POST /api/user`, the user's explicit request) removed
   * first so the user gets a new identity of their own.
   */
  async function createAndMap(target: MappingTarget, request: TokenRequest | undefined, onUntrusted: 'refuse' | 'replace'): Promise<CreateOutcome> {
    const existing = await inspect(target);
    if (existing.state === 'untrusted' && onUntrusted === 'replace') {
      reportUntrusted(target, existing, 'replaced');
      // Kept if it became trusted meanwhile (another instance's replacement won): the create below then loses and adopts it.
      await mappings.remove(target, stillUntrusted(target));
    } else {
      const acsUserId = trustedIdOrRefuse(target, existing);
      if (acsUserId !== undefined) return { acsUserId, created: false };
    }

    const made = await makeIdentity(request);
    const ours: CreateOutcome = { ...made, created: true };
    let outcome: 'created' | 'exists';
    try {
      outcome = await mappings.create(target, { acsUserId: made.acsUserId, seal: sealer.seal(target, made.acsUserId) });
    } catch (writeError) {
      // The write may have landed even though we saw a failure (a timeout, a lost answer): look before discarding.
      const current = await inspect(target).catch(() => undefined);
      if (current?.state === 'trusted' && current.acsUserId === made.acsUserId) return ours;
      await discard(made.acsUserId, 'the mapping write failed');
      if (current?.state === 'trusted') return { acsUserId: current.acsUserId, created: false };
      throw writeError;
    }
    if (outcome === 'created') return ours;

    await discard(made.acsUserId, 'another request mapped the user first');
    const winner = trustedIdOrRefuse(target, await inspect(target));
    if (winner === undefined) {
      throw new UpstreamError('graph', 'error', 'the identity mapping changed while it was being created; try again');
    }
    return { acsUserId: winner, created: false };
  }

  /** Concurrent creates of one user share one outcome, per mode: a get-or-create must not answer for a replacing create, nor the reverse. */
  function singleFlight(caller: Caller, mode: 'refuse' | 'replace', work: () => Promise<CreateOutcome>): Promise<CreateOutcome> {
    const key = `${keyOf(caller)} ${mode}`;
    const inFlight = creating.get(key);
    if (inFlight) return inFlight.then(({ acsUserId }) => ({ acsUserId, created: false }));
    const promise = work().finally(() => creating.delete(key));
    creating.set(key, promise);
    return promise;
  }

  /**
   * Delete the user's identity and mapping; returns the identity deleted. An untrusted mapping is
   * removed on its own (the identity it names may be somebody else's), or, for an admin erasure,
   * refused: an erasure that cannot say which identity is the user's must not answer "done".
   */
  async function removeIdentityAndMapping(target: MappingTarget, onUntrusted: 'remove' | 'refuse'): Promise<string | undefined> {
    const found = await inspect(target);
    if (found.state === 'none') return undefined;
    if (found.state === 'untrusted') {
      if (onUntrusted === 'refuse') {
        reportUntrusted(target, found, 'refused');
        throw new MappingUntrustedError(erasureRefusal(found));
      }
      reportUntrusted(target, found, 'removed');
      await mappings.remove(target, stillUntrusted(target));
      return undefined;
    }
    // Identity first: if the mapping removal then fails, a retry finds the mapping, re-deletes the
    // (already gone) identity and tries again. The other order could strand a live identity.
    await acs.deleteIdentity(found.acsUserId);
    if ((await mappings.remove(target, stillNames(found.acsUserId))) === 'kept') {
      // Another mapping was written meanwhile (another instance's create, or one put back by hand): the
      // identity is gone, but the user is not erased. Say so rather than answer "done".
      logger.warn({ oid: target.oid, acsUserId: found.acsUserId }, 'the identity mapping changed while it was being deleted; the deleted identity is gone, the new mapping was kept');
      throw new MappingChangedError();
    }
    return found.acsUserId;
  }

  /** The mapping points to an identity ACS no longer has: drop the mapping so the user can start over. */
  async function healStaleMapping(target: MappingTarget, caller: Caller, acsUserId: string): Promise<void> {
    logger.warn({ oid: caller.oid, acsUserId }, 'stale identity mapping: the ACS identity no longer exists; removing the mapping');
    cache.delete(keyOf(caller));
    try {
      await oneWriterAtATime(keyOf(caller), () => mappings.remove(target, stillNames(acsUserId)));
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

  /**
   * Read the caller's mapping from Graph (the source of truth) and refresh the cache with it. Only a
   * verified id is cached; an untrusted mapping drops the entry and is refused.
   */
  async function readMapping(caller: Caller, target: MappingTarget): Promise<string | undefined> {
    const found = await inspect(target);
    if (found.state !== 'trusted') cache.delete(keyOf(caller));
    const acsUserId = trustedIdOrRefuse(target, found);
    if (acsUserId !== undefined) cache.set(keyOf(caller), acsUserId);
    return acsUserId;
  }

  /** Run an ACS operation on the caller's identity: the cached one, else the one Graph maps; 404 when there is none. */
  async function onCallersIdentity<T>(caller: Caller, operation: (acsUserId: string) => Promise<T>): Promise<{ value: T; acsUserId: string }> {
    const cached = await onCachedIdentity(caller, operation);
    if (cached) return cached;
    const target = await signedInUsersMapping(caller);
    const acsUserId = await readMapping(caller, target);
    if (acsUserId === undefined) throw new IdentityNotFoundError();
    return { value: await onMappedIdentity(caller, target, acsUserId, operation), acsUserId };
  }

  return {
    cachedMappings: () => cache.size,

    async getIdentity(caller) {
      const acsUserId = await readMapping(caller, await signedInUsersMapping(caller));
      if (acsUserId === undefined) throw new IdentityNotFoundError();
      return acsUserId;
    },

    async ensureIdentity(caller) {
      const target = await signedInUsersMapping(caller);
      const { acsUserId, created } = await singleFlight(caller, 'replace', () => oneWriterAtATime(keyOf(caller), () => createAndMap(target, undefined, 'replace')));
      cache.set(keyOf(caller), acsUserId);
      if (created) logger.info({ oid: caller.oid, acsUserId }, 'created and mapped an ACS identity');
      return { acsUserId, created };
    },

    async deleteIdentity(caller) {
      cache.delete(keyOf(caller));
      const target = await signedInUsersMapping(caller);
      const removed = await oneWriterAtATime(keyOf(caller), () => removeIdentityAndMapping(target, 'remove'));
      cache.delete(keyOf(caller));
      if (removed !== undefined) logger.info({ oid: caller.oid, acsUserId: removed }, 'deleted the ACS identity and its mapping');
    },

    async deleteIdentityOfUser(admin, userObjectId) {
      const target: MappingTarget = { via: 'user', tid: admin.tid, oid: userObjectId, graphToken: await graphTokens.forApp() };
      const key = mappingKey(admin.tid, userObjectId);
      cache.delete(key);
      const removed = await oneWriterAtATime(key, () => removeIdentityAndMapping(target, 'refuse'));
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
      const target = await signedInUsersMapping(caller);
      for (let attempt = 0; ; attempt += 1) {
        // Get-or-create never replaces an untrusted mapping: that loses an identity, which only POST /api/user may ask for.
        const ensured = await singleFlight(caller, 'refuse', () => oneWriterAtATime(keyOf(caller), () => createAndMap(target, request, 'refuse')));
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
      // No mapping is read here, so a tampered one cannot influence the exchange.
      return acs.exchangeTeamsToken({ teamsToken, appId: deps.teamsClientId, userId: caller.oid });
    },
  };
}
