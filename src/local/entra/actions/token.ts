/**
 * The v2 token endpoint, `/{tenant}/oauth2/v2.0/token`: checks the tenant and the request, authenticates
 * the client, and hands over to the grant type asked for. Only the two grants a confidential API uses
 * exist (On-Behalf-Of and client credentials); anything else is refused as Entra refuses an unsupported grant.
 *
 * @packageDocumentation
 */
import type { RequestHandler } from 'express';
import { AadError } from '../aad-error';
import { authenticateClient } from '../client-authentication';
import type { EntraTenant } from '../entra-tenant';
import { missingParameter } from '../sts-refusals';
import { formParameters } from '../token-request';
import { clientCredentialsGrant } from './grants/client-credentials';
import { JWT_BEARER, onBehalfOfGrant } from './grants/on-behalf-of';

/** POST: issues a token, or answers Entra's refusal (thrown, for the AAD error handler to render). */
export function tokenAction(tenant: EntraTenant): RequestHandler {
  return async (req, res) => {
    tenant.requireTenant(req);
    const params = formParameters(req);
    const grantType = params.get('grant_type');
    if (grantType === undefined || grantType === '') throw missingParameter('grant_type');
    if (grantType !== JWT_BEARER && grantType !== 'client_credentials') {
      throw new AadError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
    }
    const client = await authenticateClient(tenant, req, params);
    const response =
      grantType === JWT_BEARER ? await onBehalfOfGrant(tenant, params, client) : await clientCredentialsGrant(tenant, params, client);
    res.status(200).json(response);
  };
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
