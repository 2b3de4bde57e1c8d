import type { AcsResource } from './acs-resource';
import type { AcsTokenClaims } from './acs-token-issuer';

/**
 * The test-side check of an access token the emulator issued: what a consumer of the token (chat,
 * calling) would decide. The service under test never sees revocation directly, so tests ask here
 * whether a token it handed out still stands.
 */
export type AccessTokenInvalidReason = 'expired' | 'revoked' | 'deleted' | 'bad-signature' | 'unknown-identity';

export interface AccessTokenVerification {
  readonly valid: boolean;
  readonly reason?: AccessTokenInvalidReason;
  /** The token's claims whenever its signature is good. */
  readonly claims?: AcsTokenClaims;
}

/** Signature, expiry, then (for communication users) revocation and deletion of the identity. */
export async function verifyAccessToken(resource: AcsResource, token: string): Promise<AccessTokenVerification> {
  const check = await resource.issuer.check(token);
  if (!check.ok) return { valid: false, reason: check.reason };
  const { claims } = check;
  // Teams users (`orgid:`) are not identities of the resource: nothing to revoke or delete.
  if (!claims.skypeid.startsWith('acs:')) return { valid: true, claims };
  const standing = resource.registry.tokenStanding(token, `8:${claims.skypeid}`);
  return standing === 'valid' ? { valid: true, claims } : { valid: false, reason: standing, claims };
}
