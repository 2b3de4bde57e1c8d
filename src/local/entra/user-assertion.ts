/**
 * The user assertion of an On-Behalf-Of request: an access token this tenant issued to the calling API.
 * Entra checks it as an API would (signature, issuer for its version, tenant, time, audience) and,
 * beyond that, requires it to be a delegated token, since On-Behalf-Of acts for a user.
 *
 * @packageDocumentation
 */
import { compactVerify, createLocalJWKSet, type JWTPayload } from 'jose';
import { AadError } from './aad-error';
import type { ResolvedApplication } from './application-registry';
import type { EntraTenant } from './entra-tenant';
import { CLOCK_SKEW_SECONDS } from './token-lifetime-policy';
import { decodeUnverified } from './unverified-jwt';

/** The claims of a user assertion that `app` may exchange, or Entra's refusal. */
export async function validateUserAssertion(tenant: EntraTenant, assertion: string, app: ResolvedApplication): Promise<JWTPayload> {
  const claims = await verifiedClaims(tenant, assertion);
  // The issuer must be this tenant's, in the spelling that goes with the token version.
  const versionMatches =
    (claims.iss === tenant.issuerV1 && claims['ver'] === '1.0') || (claims.iss === tenant.issuerV2() && claims['ver'] === '2.0');
  if (!versionMatches || claims['tid'] !== tenant.tenantId) {
    throw new AadError(
      400,
      'invalid_grant',
      50013,
      `Assertion is invalid. The token issuer '${String(claims.iss)}' doesn't match the api version or the tenant '${tenant.tenantId}'.`,
    );
  }
  const now = Math.floor(Date.now() / 1000);
  if (
    typeof claims.exp !== 'number' ||
    typeof claims.nbf !== 'number' ||
    claims.exp + CLOCK_SKEW_SECONDS <= now ||
    claims.nbf - CLOCK_SKEW_SECONDS > now
  ) {
    const expiry = typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : 'none';
    throw new AadError(
      400,
      'invalid_grant',
      500133,
      `Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: ${new Date().toISOString()}, expiry time of assertion ${expiry}.`,
    );
  }
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.some((aud) => aud === app.clientId || aud === app.appIdUri)) {
    throw new AadError(
      400,
      'invalid_grant',
      500131,
      `Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '${audiences.join(',')}' and the expected audience is '${app.clientId}' or one of the Application Id URIs of this application.`,
    );
  }
  if (typeof claims['scp'] !== 'string' || claims['scp'] === '') {
    // On-Behalf-Of works only for user (delegated) tokens; Entra's exact code for app-only assertions is unconfirmed.
    throw new AadError(
      400,
      'invalid_grant',
      50013,
      'Assertion is not a user token. On-Behalf-Of can only be used with delegated (user) access tokens; app-only tokens have no scp claim.',
    );
  }
  return claims;
}

/** The claims of an RS256 token signed by one of the tenant's published keys. */
async function verifiedClaims(tenant: EntraTenant, assertion: string): Promise<JWTPayload> {
  const { header, claims } = decodeUnverified(
    assertion,
    () => new AadError(400, 'invalid_grant', 50027, 'JWT token is invalid or malformed.'),
  );
  const kid = typeof header.kid === 'string' ? header.kid : typeof header.x5t === 'string' ? header.x5t : undefined;
  if (header.alg !== 'RS256' || kid === undefined || !tenant.keys.publishedKids.includes(kid)) {
    throw new AadError(
      400,
      'invalid_grant',
      50013,
      `Assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '${kid ?? ''}']`,
    );
  }
  try {
    await compactVerify(assertion, createLocalJWKSet(tenant.keys.publicJwks()), { algorithms: ['RS256'] });
  } catch {
    throw new AadError(
      400,
      'invalid_grant',
      50013,
      `Assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '${kid}']`,
    );
  }
  return claims;
}
