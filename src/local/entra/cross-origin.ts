/**
 * What the token endpoint makes of a browser's `Origin` header (v2-oauth2-auth-code-flow.md, "Redirect URIs for
 * single-page apps"): codes and refresh tokens issued to a `spa` redirect URI are redeemed only cross-origin
 * (AADSTS9002327 without `Origin`), only with PKCE (AADSTS9002325) and never with a credential; every other
 * redemption, and every other grant, is refused when it comes with an `Origin` (AADSTS9002326, "Request origin:
 * '…'", as Entra words it). CORS answers go to the origins of registered SPA redirect URIs only, so a page
 * elsewhere cannot read the answer.
 *
 * @packageDocumentation
 */
import type { Request, RequestHandler } from 'express';
import { AadError } from './aad-error';
import type { ResolvedApplication } from './application-registry';
import { authenticateClient, type ClientAuthMethod } from './client-authentication';
import type { EntraTenant } from './entra-tenant';
import { isSpaOrigin, type RedirectUriType } from './redirect-uris';

/** How a redeeming client proved itself: "0" a public client (SPA), else its secret or certificate. */
export type RedemptionAuth = '0' | ClientAuthMethod;

/** Refuses a request that came from a browser page to a grant only servers may use. */
export function refuseCrossOrigin(req: Request): void {
  const origin = req.get('origin');
  if (origin === undefined) return;
  throw new AadError(
    400,
    'invalid_request',
    9002326,
    `Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '${origin}'.`,
  );
}

/**
 * The client redeeming a code or refresh token of the given platform, as Entra admits it: a SPA grant from a
 * page of the app (no credential), any other grant server-side with the app's secret or certificate.
 */
export async function redeemingClient(
  tenant: EntraTenant,
  req: Request,
  params: Map<string, string>,
  client: ResolvedApplication,
  platform: RedirectUriType,
): Promise<RedemptionAuth> {
  if (platform !== 'spa') {
    refuseCrossOrigin(req);
    const authenticated = await authenticateClient(tenant, req, params);
    if (authenticated.app.clientId !== client.clientId) throw mismatchedClient();
    return authenticated.clientAuth;
  }
  const origin = req.get('origin');
  if (origin === undefined) {
    throw new AadError(
      400,
      'invalid_request',
      9002327,
      "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.",
    );
  }
  // Where Entra stands on an origin the app never registered is unconfirmed: the emulator refuses it.
  if (!isSpaOrigin(client.redirectUris, origin)) refuseCrossOrigin(req);
  if (params.has('client_secret') || params.has('client_assertion') || req.get('authorization') !== undefined) {
    throw new AadError(
      401,
      'invalid_client',
      700025,
      "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
    );
  }
  return '0';
}

/** The grant was issued to another client than the one redeeming it. */
export function mismatchedClient(): AadError {
  return new AadError(400, 'invalid_grant', 70000, 'Provided grant is invalid or malformed.');
}

/** CORS for the token endpoint: only for origins of SPA redirect URIs, so only their pages can read the answer. */
export function tokenCors(tenant: EntraTenant): RequestHandler {
  return (req, res, next) => {
    res.vary('Origin');
    const origin = req.get('origin');
    if (origin !== undefined && tenant.applications.isSpaOriginOfAnyApp(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Expose-Headers', 'x-ms-request-id, client-request-id');
    }
    next();
  };
}

/** OPTIONS on the token endpoint: a CORS preflight, allowed for SPA origins (msal itself avoids preflights). */
export function tokenPreflightAction(tenant: EntraTenant): RequestHandler {
  return (req, res) => {
    tenant.requireTenant(req);
    const origin = req.get('origin');
    if (origin !== undefined && tenant.applications.isSpaOriginOfAnyApp(origin)) {
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      const asked = req.get('access-control-request-headers');
      if (asked !== undefined && /^[A-Za-z0-9-]+(\s*,\s*[A-Za-z0-9-]+)*$/.test(asked)) res.setHeader('Access-Control-Allow-Headers', asked);
      res.setHeader('Access-Control-Max-Age', '86400');
    }
    res.status(204).end();
  };
}

/** Metadata, keys and discovery are public documents every page may read (msal-browser fetches them). */
export const publicDocumentCors: RequestHandler = (_req, res, next) => {
  res.setHeader('Access-Control-Allow-Origin', '*');
  next();
};
