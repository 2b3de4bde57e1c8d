import type { Caller } from '../auth/caller';
import { IdentityNotFoundError } from '../errors/app-errors';
import type { Logger } from '../observability/logger';
import { signedInUserTarget, type EnsuredIdentity, type IdentityContext } from './identity-context';
import { ensureCallersIdentity } from './identity-creation';
import { readVerifiedMapping, withCallersAcsIdentity } from './identity-lookup';
import { deleteCallersIdentity, eraseUsersIdentity } from './identity-removal';
import type { MappingCache } from './mapping-cache';
import type { MappingSealer } from './mapping-seal';
import type { AcsIdentities, IssuedToken, MappingStore, TokenRequest } from './ports';
import { issueTokenCreatingIdentity } from './token-issue';
import { createUserWriteQueue } from './user-write-queue';

/**
 * The business flow of this service: map each Entra ID user to exactly one ACS identity (stored in
 * a Graph open extension on the user), and issue ACS tokens for it. The flows live in the modules
 * next to this one (see createIdentityService); the rules below hold for every one of them.
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

export type { EnsuredIdentity } from './identity-context';

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

/**
 * The service on its dependencies. Each operation is one of the flows of the modules next to this one
 * (mapping-trust, identity-lookup, identity-creation, identity-removal, token-issue), all sharing one
 * context: one cache, one write queue and one table of in-flight creates per service.
 */
export function createIdentityService(deps: IdentityServiceDependencies): IdentityService {
  const ctx: IdentityContext = {
    mappings: deps.mappings,
    acs: deps.acs,
    logger: deps.logger,
    cache: deps.mappingCache,
    sealer: deps.sealer,
    writes: createUserWriteQueue(),
    creating: new Map(),
  };
  const { acs, cache } = ctx;

  return {
    cachedMappings: () => cache.size,

    async getIdentity(caller) {
      const acsUserId = await readVerifiedMapping(ctx, caller, await signedInUserTarget(ctx, caller));
      if (acsUserId === undefined) throw new IdentityNotFoundError();
      return acsUserId;
    },

    ensureIdentity: (caller) => ensureCallersIdentity(ctx, caller),

    deleteIdentity: (caller) => deleteCallersIdentity(ctx, caller),

    deleteIdentityOfUser: (admin, userObjectId) => eraseUsersIdentity(ctx, admin, userObjectId),

    async issueToken(caller, request) {
      const { value, acsUserId } = await withCallersAcsIdentity(ctx, caller, (id) => acs.issueToken(id, request));
      return { ...value, acsUserId };
    },

    issueTokenCreatingIdentity: (caller, request) => issueTokenCreatingIdentity(ctx, caller, request),

    async revokeTokens(caller) {
      await withCallersAcsIdentity(ctx, caller, (id) => acs.revokeTokens(id));
    },

    async exchangeTeamsToken(caller, teamsToken) {
      // ACS checks the Teams token's appid and oid against these: the caller may only exchange its own.
      // No mapping is read here, so a tampered one cannot influence the exchange.
      return acs.exchangeTeamsToken({ teamsToken, appId: deps.teamsClientId, userId: caller.oid });
    },
  };
}
