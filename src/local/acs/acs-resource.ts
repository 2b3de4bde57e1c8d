import { freshRsaKeys, type RsaKeySource } from '../kit/rsa-keys';
import { AcsTokenIssuer } from './acs-token-issuer';
import { IdentityRegistry } from './identity-registry';
import { FixedWindowRateLimiter, type AcsLimits } from './rate-limiter';
import type { AcsTokenScope } from './request-validation';

/**
 * One emulated ACS resource: its identities, the key its tokens are signed with, and its request
 * limits. Every action works on this one value, which is what lets each action live in a module of
 * its own instead of closing over the locals of one long function.
 */
export interface AcsResource {
  /** The resource's immutable id, lower-cased (it is part of every identity id). */
  readonly resourceId: string;
  readonly registry: IdentityRegistry;
  readonly issuer: AcsTokenIssuer;
  readonly limiter: FixedWindowRateLimiter;
  /** A test's fixed token lifetime in seconds, overriding the requested one; undefined in every other run. */
  readonly tokenLifetimeSeconds: number | undefined;
}

/** A resource with no identities yet, a fresh signing key and full limits. */
export async function createAcsResource(
  resourceId: string,
  limits: AcsLimits,
  tokenLifetimeSeconds: number | undefined = undefined,
  keys: RsaKeySource = freshRsaKeys,
): Promise<AcsResource> {
  const registry = new IdentityRegistry(resourceId);
  const issuer = await AcsTokenIssuer.create(resourceId, keys);
  return { resourceId, registry, issuer, limiter: new FixedWindowRateLimiter(limits), tokenLifetimeSeconds };
}

/** An access token as the service answers it (`AccessToken` in the spec). */
export interface IdentityAccessToken {
  readonly token: string;
  readonly expiresOn: string;
}

/**
 * Sign a token for a communication user and remember it, so a later revoke or delete can tell it
 * apart from tokens issued after (revocation is ordered by sequence, not by clock).
 */
export async function mintIdentityToken(
  resource: AcsResource,
  identityId: string,
  scopes: readonly AcsTokenScope[],
  expiresInMinutes: number,
): Promise<IdentityAccessToken> {
  const sequence = resource.registry.nextTokenSequence();
  const issuedAt = Date.now();
  const expiresAt = issuedAt + (resource.tokenLifetimeSeconds ?? expiresInMinutes * 60) * 1000;
  const issued = await resource.issuer.issue(identityId.slice('8:'.length), scopes, issuedAt, expiresAt);
  resource.registry.recordToken(issued.token, identityId, sequence, expiresAt);
  return { token: issued.token, expiresOn: issued.expiresOn };
}
