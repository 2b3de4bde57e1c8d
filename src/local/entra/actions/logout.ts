/**
 * `/{tenant}/oauth2/v2.0/logout` (the metadata's `end_session_endpoint`, GET or POST): ends the browser's
 * session, then redirects to `post_logout_redirect_uri` when it is a redirect URI registered for the app, which
 * the request names with `client_id` or an `id_token_hint` (msal sends the hint); otherwise shows a signed-out
 * page (v2-protocols-oidc.md, "Send a sign-out request"). `state` is echoed on the redirect.
 *
 * @packageDocumentation
 */
import { compactVerify, createLocalJWKSet } from 'jose';
import type { RequestHandler } from 'express';
import { AadError, traceIdOf } from '../aad-error';
import type { ResolvedApplication } from '../application-registry';
import { authorizeParameters } from '../authorization-request';
import type { EntraTenant } from '../entra-tenant';
import { matchRedirectUri } from '../redirect-uris';
import { sendErrorPage, sendSignedOutPage } from '../sign-in-pages';

export function logoutAction(tenant: EntraTenant): RequestHandler {
  return async (req, res) => {
    let params: Map<string, string>;
    try {
      tenant.requireTenant(req);
      params = authorizeParameters(req);
    } catch (error) {
      if (!(error instanceof AadError)) throw error;
      sendErrorPage(res, error, traceIdOf(req));
      return;
    }
    tenant.sessions.signOut(req, res);
    const app = await appOfLogout(tenant, params);
    const target = params.get('post_logout_redirect_uri');
    const match = app === undefined || target === undefined ? undefined : matchRedirectUri(app.redirectUris, target);
    if (match === undefined) {
      sendSignedOutPage(res);
      return;
    }
    const url = new URL(match.uri);
    const state = params.get('state');
    if (state !== undefined) url.searchParams.set('state', state);
    res.redirect(302, url.href);
  };
}

/** The app signing out: `client_id`, else the audience of an ID token this tenant signed (expired hints count). */
async function appOfLogout(tenant: EntraTenant, params: Map<string, string>): Promise<ResolvedApplication | undefined> {
  const clientId = params.get('client_id');
  if (clientId !== undefined) return tenant.applications.byClientId(clientId);
  const hint = params.get('id_token_hint');
  if (hint === undefined || hint.length > 16_384) return undefined;
  try {
    const { payload } = await compactVerify(hint, createLocalJWKSet(tenant.keys.publicJwks()), { algorithms: ['RS256'] });
    const claims = JSON.parse(Buffer.from(payload).toString('utf8')) as { aud?: unknown };
    return typeof claims.aud === 'string' ? tenant.applications.byClientId(claims.aud) : undefined;
  } catch {
    return undefined;
  }
}
