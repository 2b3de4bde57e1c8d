/**
 * Answering a sign-in at the app's redirect URI, in the response mode asked for: a redirect with the
 * parameters in the query or the fragment, or a self-posting form (`form_post`). Successes carry `code`,
 * `state`, `session_state` and, when msal asks with `client_info=1`, `client_info`; refusals carry `error`,
 * `error_description` (with Entra's trace, correlation id and timestamp) and `error_uri`, whose `code=` msal
 * reads as the AADSTS number.
 *
 * @packageDocumentation
 */
import type { Request, Response } from 'express';
import { aadErrorBody, type AadError } from './aad-error';
import type { AuthorizationRequest, ResponseTarget } from './authorization-request';
import type { BrowserSession } from './browser-sessions';
import type { EntraTenant } from './entra-tenant';
import { clientInfoOf } from './entra-token-claims';
import { sendFormPost } from './sign-in-pages';

/** Sends the parameters to the redirect URI the way the request's response mode says. */
function answer(res: Response, target: ResponseTarget, fields: Map<string, string>): void {
  if (target.state !== undefined) fields.set('state', target.state);
  if (target.responseMode === 'form_post') {
    sendFormPost(res, target.redirect.uri, fields);
    return;
  }
  const url = new URL(target.redirect.uri);
  if (target.responseMode === 'fragment') {
    url.hash = new URLSearchParams([...fields]).toString();
  } else {
    for (const [name, value] of fields) url.searchParams.append(name, value);
  }
  res.redirect(302, url.href);
}

/** Issues a code for the signed-in user and sends it to the app. */
export function sendAuthorizationCode(tenant: EntraTenant, res: Response, request: AuthorizationRequest, session: BrowserSession): void {
  const code = tenant.codes.issue({
    clientId: request.app.clientId,
    oid: session.oid,
    sessionId: session.sid,
    redirect: request.redirect,
    codeChallenge: request.codeChallenge,
    nonce: request.nonce,
    scope: request.scope,
    granted: request.granted,
  });
  const fields = new Map([['code', code]]);
  if (request.clientInfo) fields.set('client_info', clientInfoOf(session.oid, tenant.tenantId));
  fields.set('session_state', session.sid);
  answer(res, request, fields);
}

/** Sends a refusal to the app's redirect URI. */
export function sendAuthorizationError(tenant: EntraTenant, req: Request, res: Response, target: ResponseTarget, error: AadError): void {
  const body = aadErrorBody(req, tenant.baseUrl(), error);
  const fields = new Map([
    ['error', body.error],
    ['error_description', body.error_description],
  ]);
  if (body.error_uri !== undefined) fields.set('error_uri', body.error_uri);
  if (body.suberror !== undefined) fields.set('suberror', body.suberror);
  answer(res, target, fields);
}
