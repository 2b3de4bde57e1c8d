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

/** Whose identity mapping to work on: the signed-in user (`/me`) or a user named by id (admin). */
export type MappingTarget =
  | { readonly kind: 'me'; readonly graphToken: string }
  | { readonly kind: 'user'; readonly userId: string; readonly graphToken: string };

/** The oid → ACS identity mapping, stored in a Graph open extension on the user. */
export interface MappingStore {
  /** The mapped ACS identity, or undefined when the user has none. */
  read(target: MappingTarget): Promise<string | undefined>;
  /** Write the mapping; 'exists' when the user already has one (another create won the race). */
  create(target: MappingTarget, acsUserId: string): Promise<'created' | 'exists'>;
  /** Remove the mapping; resolves when it is already gone. */
  remove(target: MappingTarget): Promise<void>;
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
