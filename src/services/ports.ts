import type { Caller } from '../auth/caller';
import type { AcsTokenScope } from '../config/config';

/**
 * What the identity service needs from the three upstreams. The adapters in `src/adapters/`
 * implement these on the real SDKs and translate every SDK error into the project's AppErrors, so
 * nothing here knows about MSAL, Graph or ACS error types.
 */

/** Graph access tokens: on behalf of a user (OBO), or for the app itself (client credentials). */
export interface GraphTokenSource {
  forUser(assertion: string): Promise<string>;
  forApp(): Promise<string>;
}

/**
 * Whose identity mapping to work on: the signed-in user, or a user named by id (an admin's erasure).
 * `tid` and `oid` always name that user: the seal binds them. Targets are made by the store itself
 * ({@link MappingStore.targetOfCaller}, {@link MappingStore.targetOfUser}), which may carry in them
 * what it needs to reach the user (the Graph store: an access token); the service never looks inside.
 */
export interface MappingTarget {
  readonly via: 'me' | 'user';
  readonly tid: string;
  readonly oid: string;
}

/**
 * A mapping as the store holds it, before verification. Both values are whatever the store had:
 * the user (and any app they consented to) can write them, so they are of unknown type.
 */
export interface StoredMapping {
  readonly acsUserId: unknown;
  readonly seal: unknown;
}

/** A mapping this service writes: the identity and its seal. */
export interface SealedMapping {
  readonly acsUserId: string;
  readonly seal: string;
}

/**
 * The (tid, oid) → ACS identity mapping: in a Graph open extension on the user (graph-mapping-store.ts),
 * or in a table only this service can write (table-mapping-store.ts). Every method takes a target this
 * same store made.
 */
export interface MappingStore {
  /** The signed-in caller's mapping (the Graph store redeems the caller's token On-Behalf-Of here). */
  targetOfCaller(caller: Caller): Promise<MappingTarget>;
  /** Another user's mapping, for an admin of their tenant (the Graph store gets an app-only token here). */
  targetOfUser(tid: string, oid: string): Promise<MappingTarget>;
  /** The mapping as stored (unverified), or undefined when the user has none. */
  read(target: MappingTarget): Promise<StoredMapping | undefined>;
  /**
   * Write the mapping if the user has none (insert-if-absent); 'exists' when the user already has one
   * (another create won the race). A write that landed although its answer was lost is 'created'.
   */
  create(target: MappingTarget, mapping: SealedMapping): Promise<'created' | 'exists'>;
  /**
   * Remove the mapping, if `when` (checked on the mapping as stored at that moment) allows: a
   * compare-and-delete, so a mapping another request wrote since the caller's read is kept.
   * 'absent' when there is none.
   */
  remove(target: MappingTarget, when?: (stored: StoredMapping) => boolean): Promise<'removed' | 'kept' | 'absent'>;
}

export interface TokenRequest {
  readonly scopes: readonly AcsTokenScope[];
  readonly expiresInMinutes: number | undefined;
}

export interface IssuedToken {
  readonly token: string;
  readonly expiresOn: Date;
}

/**
 * ACS identities and tokens. Operations on an identity that no longer exists throw
 * IdentityNotFoundError; on one owned by another resource, IdentityNotOwnedError.
 */
export interface AcsIdentities {
  createIdentity(): Promise<string>;
  createIdentityWithToken(request: TokenRequest): Promise<IssuedToken & { readonly acsUserId: string }>;
  issueToken(acsUserId: string, request: TokenRequest): Promise<IssuedToken>;
  revokeTokens(acsUserId: string): Promise<void>;
  /** Delete the identity (and with it its tokens and data); resolves when it is already gone. */
  deleteIdentity(acsUserId: string): Promise<void>;
  exchangeTeamsToken(request: { readonly teamsToken: string; readonly appId: string; readonly userId: string }): Promise<IssuedToken>;
}
