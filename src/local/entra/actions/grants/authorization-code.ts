/**
 * The authorization code grant (`grant_type=authorization_code`): a code is redeemed once (AADSTS54005), within
 * its lifetime (AADSTS70008), by the client it was issued to, for the redirect URI it was sent to, and with the
 * PKCE verifier of its challenge (AADSTS501481). How the client must come depends on the redirect URI's
 * platform (cross-origin.ts). The token is for one resource (AADSTS700022) the user consented to at sign-in.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { AadError } from '../../aad-error';
import type { ResolvedApplication } from '../../application-registry';
import type { CodeChallenge, CodeGrant } from '../../authorization-codes';
import { mismatchedClient, redeemingClient } from '../../cross-origin';
import { delegatedTokenResponse, type DelegatedTokenResponse } from '../../delegated-token-response';
import type { EntraTenant } from '../../entra-tenant';
import { matchRedirectUri } from '../../redirect-uris';
import { parseRequestedScopes, tokenScopes } from '../../requested-scopes';
import { missingParameter, unknownApplication } from '../../sts-refusals';

export const AUTHORIZATION_CODE = 'authorization_code';

/** Tokens for the code, or Entra's refusal. */
export async function authorizationCodeGrant(
  tenant: EntraTenant,
  req: Request,
  params: Map<string, string>,
): Promise<DelegatedTokenResponse> {
  const client = requestingClient(tenant, params);
  const code = params.get('code');
  if (code === undefined || code === '') throw missingParameter('code');
  const grant = currentGrant(tenant, code);
  if (grant.clientId !== client.clientId) throw mismatchedClient();
  checkRedirectUri(grant, params.get('redirect_uri'));
  const clientAuth = await redeemingClient(tenant, req, params, client, grant.redirect.registered.type);
  if (grant.redirect.registered.type === 'spa' && grant.codeChallenge === undefined) {
    throw new AadError(
      400,
      'invalid_request',
      9002325,
      'Proof Key for Code Exchange is required for cross-origin authorization code redemption.',
    );
  }
  checkVerifier(grant.codeChallenge, params.get('code_verifier'));
  const scopes = tokenScopes(parseRequestedScopes(tenant, params.get('scope') ?? grant.scope), grant.granted, client, 'refuse');
  const user = tenant.users.byOid(grant.oid);
  if (user === undefined)
    throw new AadError(400, 'invalid_grant', 50034, `The user account ${grant.oid} does not exist in the ${tenant.tenantId} directory.`);
  tenant.codes.redeem(code);
  return delegatedTokenResponse(tenant, {
    client,
    clientAuth,
    user,
    scopes,
    nonce: grant.nonce,
    clientInfo: params.get('client_info') === '1',
    refresh: {
      clientId: client.clientId,
      oid: user.oid,
      sessionId: grant.sessionId,
      platform: grant.redirect.registered.type,
      scope: grant.scope,
      granted: grant.granted,
      signedInAt: tenant.now(),
    },
  });
}

/** The app named by `client_id`, which code and refresh token redemptions must send. */
export function requestingClient(tenant: EntraTenant, params: Map<string, string>): ResolvedApplication {
  const clientId = params.get('client_id');
  if (clientId === undefined || clientId === '') throw missingParameter('client_id');
  const client = tenant.applications.byClientId(clientId);
  if (client === undefined) throw unknownApplication(clientId, tenant.tenantId);
  return client;
}

function currentGrant(tenant: EntraTenant, code: string): CodeGrant {
  const lookup = tenant.codes.look(code);
  if (lookup.status === 'valid') return lookup.grant;
  if (lookup.status === 'redeemed') {
    throw new AadError(
      400,
      'invalid_grant',
      54005,
      'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
    );
  }
  if (lookup.status === 'expired') {
    throw new AadError(
      400,
      'invalid_grant',
      70008,
      'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
    );
  }
  // Entra's answer to a code it never issued is unconfirmed; a malformed grant is the closest documented case.
  throw new AadError(
    400,
    'invalid_grant',
    9002313,
    'Invalid request. Request is malformed or invalid. The authorization code is not valid.',
  );
}

/** The redemption must name the redirect URI the code was sent to. */
function checkRedirectUri(grant: CodeGrant, redirectUri: string | undefined): void {
  if (redirectUri === undefined || redirectUri === '') throw missingParameter('redirect_uri');
  const match = matchRedirectUri([grant.redirect.registered], redirectUri);
  if (match?.uri !== grant.redirect.uri) {
    throw new AadError(
      400,
      'invalid_grant',
      50011,
      `The reply address '${redirectUri}' does not match the reply address '${grant.redirect.uri}' provided when requesting Authorization code.`,
    );
  }
}

/** RFC 7636 §4.6: the verifier must hash (S256) or be equal (plain) to the challenge; a verifier without a challenge is refused too. */
function checkVerifier(challenge: CodeChallenge | undefined, verifier: string | undefined): void {
  if (challenge === undefined && verifier === undefined) return;
  const valid =
    challenge !== undefined &&
    verifier !== undefined &&
    /^[A-Za-z0-9._~-]{43,128}$/.test(verifier) &&
    (challenge.method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier) === challenge.value;
  if (!valid)
    throw new AadError(
      400,
      'invalid_grant',
      501481,
      'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
    );
}
