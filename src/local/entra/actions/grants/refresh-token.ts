/**
 * The refresh token grant (`grant_type=refresh_token`): a refresh token is redeemed by the client it was issued
 * to, the way its platform demands (cross-origin.ts), for permissions the user consented to; scopes of several
 * resources give a token for the first (v2-oauth2-auth-code-flow.md). The answer carries a new refresh token; the
 * old one stays valid, and a SPA's keeps the expiry of the sign-in, 24 hours (refresh-tokens.md, AADSTS700084).
 *
 * @packageDocumentation
 */
import type { Request } from 'express';
import { AadError } from '../../aad-error';
import { mismatchedClient, redeemingClient } from '../../cross-origin';
import { delegatedTokenResponse, type DelegatedTokenResponse } from '../../delegated-token-response';
import type { EntraTenant } from '../../entra-tenant';
import type { RefreshGrant } from '../../refresh-tokens';
import { parseRequestedScopes, tokenScopes } from '../../requested-scopes';
import { missingParameter } from '../../sts-refusals';
import { requestingClient } from './authorization-code';

export const REFRESH_TOKEN = 'refresh_token';

export async function refreshTokenGrant(tenant: EntraTenant, req: Request, params: Map<string, string>): Promise<DelegatedTokenResponse> {
  const client = requestingClient(tenant, params);
  const token = params.get('refresh_token');
  if (token === undefined || token === '') throw missingParameter('refresh_token');
  const grant = currentGrant(tenant, token, client.clientId);
  const clientAuth = await redeemingClient(tenant, req, params, client, grant.platform);
  const scopes = tokenScopes(parseRequestedScopes(tenant, params.get('scope') ?? grant.scope), grant.granted, client, 'first');
  const user = tenant.users.byOid(grant.oid);
  if (user === undefined)
    throw new AadError(400, 'invalid_grant', 50034, `The user account ${grant.oid} does not exist in the ${tenant.tenantId} directory.`);
  return delegatedTokenResponse(tenant, {
    client,
    clientAuth,
    user,
    scopes,
    nonce: undefined,
    clientInfo: params.get('client_info') === '1',
    refresh: grant,
  });
}

function currentGrant(tenant: EntraTenant, token: string, clientId: string): RefreshGrant {
  const lookup = tenant.refreshTokens.use(token);
  if (lookup.status === 'unknown') {
    throw new AadError(400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid. The refresh token is not valid.');
  }
  if (lookup.grant.clientId !== clientId) throw mismatchedClient();
  if (lookup.status === 'spaExpired') {
    const issued = new Date(lookup.grant.signedInAt).toISOString();
    throw new AadError(
      400,
      'invalid_grant',
      700084,
      `The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on ${issued}.`,
    );
  }
  if (lookup.status === 'inactive') {
    throw new AadError(
      400,
      'invalid_grant',
      700082,
      `The refresh token has expired due to inactivity. The token was issued on ${new Date(lookup.grant.signedInAt).toISOString()} and was inactive for 90.00:00:00.`,
    );
  }
  return lookup.grant;
}
