import type { Caller } from '../auth/caller';
import { IdentityNotFoundError, UpstreamError } from '../errors/app-errors';
import type { Logger } from '../observability/logger';
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
}

export function createIdentityService(deps: IdentityServiceDependencies): IdentityService {
  const { graphTokens, mappings, acs, logger } = deps;
  /** One in-flight create per user in this process: concurrent callers share its outcome. */
  const creating = new Map<string, Promise<EnsuredIdentity & { token?: IssuedToken }>>();

  async function meTarget(caller: Caller): Promise<MappingTarget> {
    return { kind: 'me', graphToken: await graphTokens.forUser(caller.assertion) };
  }

  /** Delete an identity this process created but could not map. Failure here is the one way to orphan one: log it loudly. */
  async function discard(acsUserId: string, reason: string): Promise<void> {
    try {
      await acs.deleteIdentity(acsUserId);
      logger.info({ acsUserId, reason }, 'deleted an ACS identity that lost the mapping race');
    } catch (error) {
      logger.error({ acsUserId, reason, err: error }, 'ORPHANED ACS identity: could not delete an identity that has no mapping; delete it by hand');
      throw error;
    }
  }

  /**
   * Make the identity and map it. Graph refuses a second extension with the same name, which makes
   * the mapping write the arbiter between instances; whoever loses deletes what it made.
   */
  async function createAndMap(target: MappingTarget, request: TokenRequest | undefined): Promise<EnsuredIdentity & { token?: IssuedToken }> {
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

    let outcome: 'created' | 'exists';
    try {
      outcome = await mappings.create(target, acsUserId);
    } catch (writeError) {
      // The write may have landed even though we saw a failure (a timeout, a lost answer): look before discarding.
      const current = await mappings.read(target).catch(() => undefined);
      if (current === acsUserId) return { acsUserId, created: true, ...(token ? { token } : {}) };
      await discard(acsUserId, 'the mapping write failed');
      if (current !== undefined) return { acsUserId: current, created: false };
      throw writeError;
    }
    if (outcome === 'created') return { acsUserId, created: true, ...(token ? { token } : {}) };

    await discard(acsUserId, 'another request mapped the user first');
    const winner = await mappings.read(target);
    if (winner === undefined) {
      throw new UpstreamError('graph', 'error', 'the identity mapping changed while it was being created; try again');
    }
    return { acsUserId: winner, created: false };
  }

  function singleFlight(caller: Caller, work: () => Promise<EnsuredIdentity & { token?: IssuedToken }>): Promise<EnsuredIdentity & { token?: IssuedToken }> {
    const key = `${caller.tid}/${caller.oid}`;
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
    try {
      await mappings.remove(target);
    } catch (error) {
      logger.warn({ oid: caller.oid, err: error }, 'could not remove a stale identity mapping; it will be retried on the next request');
    }
  }

  async function issueForMapped(caller: Caller, target: MappingTarget, acsUserId: string, request: TokenRequest): Promise<IssuedToken> {
    try {
      return await acs.issueToken(acsUserId, request);
    } catch (error) {
      if (error instanceof IdentityNotFoundError) await healStaleMapping(target, caller, acsUserId);
      throw error;
    }
  }

  return {
    async getIdentity(caller) {
      const acsUserId = await mappings.read(await meTarget(caller));
      if (acsUserId === undefined) throw new IdentityNotFoundError();
      return acsUserId;
    },

    async ensureIdentity(caller) {
      const target = await meTarget(caller);
      const { acsUserId, created } = await singleFlight(caller, () => createAndMap(target, undefined));
      if (created) logger.info({ oid: caller.oid, acsUserId }, 'created and mapped an ACS identity');
      return { acsUserId, created };
    },

    async deleteIdentity(caller) {
      const removed = await removeIdentityAndMapping(await meTarget(caller));
      if (removed !== undefined) logger.info({ oid: caller.oid, acsUserId: removed }, 'deleted the ACS identity and its mapping');
    },

    async deleteIdentityOfUser(admin, userObjectId) {
      const target: MappingTarget = { kind: 'user', userId: userObjectId, graphToken: await graphTokens.forApp() };
      const removed = await removeIdentityAndMapping(target);
      logger.info(
        { adminOid: admin.oid, targetOid: userObjectId, acsUserId: removed ?? null },
        removed === undefined ? 'admin erasure: the user had no identity mapping' : 'admin erasure: deleted the ACS identity and its mapping',
      );
    },

    async issueToken(caller, request) {
      const target = await meTarget(caller);
      const acsUserId = await mappings.read(target);
      if (acsUserId === undefined) throw new IdentityNotFoundError();
      const token = await issueForMapped(caller, target, acsUserId, request);
      return { ...token, acsUserId };
    },

    async issueTokenCreatingIdentity(caller, request) {
      const target = await meTarget(caller);
      for (let attempt = 0; ; attempt += 1) {
        const ensured = await singleFlight(caller, () => createAndMap(target, request));
        if (ensured.token) return { ...ensured.token, acsUserId: ensured.acsUserId, created: ensured.created };
        try {
          const token = await issueForMapped(caller, target, ensured.acsUserId, request);
          return { ...token, acsUserId: ensured.acsUserId, created: ensured.created };
        } catch (error) {
          // A stale mapping was just removed: create a fresh identity, once.
          if (!(error instanceof IdentityNotFoundError) || attempt > 0) throw error;
        }
      }
    },

    async revokeTokens(caller) {
      const target = await meTarget(caller);
      const acsUserId = await mappings.read(target);
      if (acsUserId === undefined) throw new IdentityNotFoundError();
      try {
        await acs.revokeTokens(acsUserId);
      } catch (error) {
        if (error instanceof IdentityNotFoundError) await healStaleMapping(target, caller, acsUserId);
        throw error;
      }
    },

    async exchangeTeamsToken(caller, teamsToken) {
      // ACS checks the Teams token's appid and oid against these: the caller may only exchange its own.
      return acs.exchangeTeamsToken({ teamsToken, appId: deps.teamsClientId, userId: caller.oid });
    },
  };
}

