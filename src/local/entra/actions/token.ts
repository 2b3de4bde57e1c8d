/**
 * The v2 token endpoint, `/{tenant}/oauth2/v2.0/token`: reads the form, checks the grant type, and hands over
 * to the grant asked for. The two grants a confidential API uses (On-Behalf-Of and client credentials)
 * authenticate the client first and are for servers only (no browser `Origin`); the code and refresh token
 * grants admit their client the way the redirect URI's platform demands. Anything else is refused as Entra
 * refuses an unsupported grant.
 *
 * @packageDocumentation
 */
import type { Request, RequestHandler } from 'express';
import { AadError } from '../aad-error';
import { authenticateClient } from '../client-authentication';
import { refuseCrossOrigin } from '../cross-origin';
import type { EntraTenant } from '../entra-tenant';
import { missingParameter } from '../sts-refusals';
import { formParameters } from '../token-request';
import { AUTHORIZATION_CODE, authorizationCodeGrant } from './grants/authorization-code';
import { clientCredentialsGrant } from './grants/client-credentials';
import { JWT_BEARER, onBehalfOfGrant } from './grants/on-behalf-of';
import { REFRESH_TOKEN, refreshTokenGrant } from './grants/refresh-token';

const GRANT_TYPES: readonly string[] = [JWT_BEARER, 'client_credentials', AUTHORIZATION_CODE, REFRESH_TOKEN];

/** POST: issues a token, or answers Entra's refusal (thrown, for the AAD error handler to render). */
export function tokenAction(tenant: EntraTenant): RequestHandler {
  return async (req, res) => {
    tenant.requireTenant(req);
    const params = formParameters(req);
    const grantType = params.get('grant_type');
    if (grantType === undefined || grantType === '') throw missingParameter('grant_type');
    if (!GRANT_TYPES.includes(grantType)) {
      throw new AadError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
    }
    res.status(200).json(await grantResponse(tenant, req, params, grantType));
  };
}

async function grantResponse(tenant: EntraTenant, req: Request, params: Map<string, string>, grantType: string): Promise<object> {
  if (grantType === AUTHORIZATION_CODE) return authorizationCodeGrant(tenant, req, params);
  if (grantType === REFRESH_TOKEN) return refreshTokenGrant(tenant, req, params);
  // Credentials never come from a browser page (v2-oauth2-auth-code-flow.md).
  refuseCrossOrigin(req);
  const client = await authenticateClient(tenant, req, params);
  return grantType === JWT_BEARER ? onBehalfOfGrant(tenant, params, client) : clientCredentialsGrant(tenant, params, client);
}

/** Any other method on the token endpoint, refused as Entra refuses it (after the tenant check, as there). */
export function tokenOtherMethodsAction(tenant: EntraTenant): RequestHandler {
  return (req) => {
    tenant.requireTenant(req);
    throw new AadError(
      400,
      'invalid_request',
      900561,
      `The endpoint only accepts POST, OPTIONS requests. Received a ${req.method} request.`,
    );
  };
}
