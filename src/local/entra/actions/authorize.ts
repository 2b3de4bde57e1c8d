/**
 * `/{tenant}/oauth2/v2.0/authorize` (GET, or POST with a form): the start of the authorization code flow.
 * Refusals about the client or the redirect URI are error pages; the rest go to the redirect URI. Then, as
 * Entra does: `prompt=none` answers at once from the browser's session or with `login_required`
 * (AADSTS50058), or `consent_required` (AADSTS65001) when it asks for a permission only an admin may grant;
 * otherwise such a request ends on an error page (AADSTS90094); a session and no prompt signs its user in again
 * without a page (unless `login_hint` names someone else); anything else shows the account picker, whose form
 * posts to `/{tenant}/login`.
 *
 * @packageDocumentation
 */
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { DemoUser } from '../../local-directory';
import { AadError, traceIdOf } from '../aad-error';
import {
  authorizationRequest,
  authorizeParameters,
  responseTarget,
  type AuthorizationRequest,
  type ResponseTarget,
} from '../authorization-request';
import { sendAuthorizationCode, sendAuthorizationError } from '../authorization-response';
import type { EntraTenant } from '../entra-tenant';
import { adminConsentRequired, consentRequired } from '../requested-scopes';
import { sendErrorPage, sendSignInPage } from '../sign-in-pages';

/** The account picker lists this many users (plus the one `login_hint` names). */
const PICKER_USERS = 20;

/** A POSTed authorize request's form, kept as text so that repeated parameters can be refused. */
export const authorizeFormBody: RequestHandler = express.text({ type: 'application/x-www-form-urlencoded', limit: '64kb' });

export function authorizeAction(tenant: EntraTenant): RequestHandler {
  return (req, res) => {
    let target: ResponseTarget;
    let params: Map<string, string>;
    try {
      tenant.requireTenant(req);
      params = authorizeParameters(req);
      target = responseTarget(tenant, params);
    } catch (error) {
      if (!(error instanceof AadError)) throw error;
      sendErrorPage(res, error, traceIdOf(req));
      return;
    }
    let request: AuthorizationRequest;
    try {
      request = authorizationRequest(tenant, target, params);
    } catch (error) {
      if (!(error instanceof AadError)) throw error;
      sendAuthorizationError(tenant, req, res, target, error);
      return;
    }
    continueSignIn(tenant, req, res, request);
  };
}

function continueSignIn(tenant: EntraTenant, req: Request, res: Response, request: AuthorizationRequest): void {
  const session = tenant.sessions.of(req);
  const sessionUser = session === undefined ? undefined : tenant.users.byOid(session.oid);
  const hint = request.loginHint?.toLowerCase();
  const hintFits = hint === undefined || sessionUser?.userPrincipalName.toLowerCase() === hint;
  if (request.prompt === 'none') {
    if (session === undefined || sessionUser === undefined || !hintFits) {
      const error = new AadError(
        400,
        'login_required',
        50058,
        "A silent sign-in request was sent but no user is signed in. The cookies used to represent the user's session were not sent in the request to Azure AD.",
      );
      sendAuthorizationError(tenant, req, res, request, error);
      return;
    }
    if (request.needingAdminConsent.length > 0) {
      sendAuthorizationError(tenant, req, res, request, consentRequired(request.app, 'authorize'));
      return;
    }
    sendAuthorizationCode(tenant, res, request, session);
    return;
  }
  if (request.needingAdminConsent.length > 0) {
    // Entra shows its "Need admin approval" page once the user is known; no demo user is an admin, so the answer
    // is the same for all of them and comes before the account picker.
    sendErrorPage(res, adminConsentRequired(request.app), traceIdOf(req));
    return;
  }
  if (session !== undefined && sessionUser !== undefined && request.prompt === undefined && hintFits) {
    sendAuthorizationCode(tenant, res, request, session);
    return;
  }
  const flowToken = tenant.signIns.start(request);
  sendSignInPage(res, request, pickerUsers(tenant, request.loginHint), flowToken, tenant.tenantId);
}

function pickerUsers(tenant: EntraTenant, loginHint: string | undefined): readonly DemoUser[] {
  const listed = tenant.users.first(PICKER_USERS);
  const hinted = loginHint === undefined ? undefined : tenant.users.byUserPrincipalName(loginHint);
  return hinted === undefined || listed.includes(hinted) ? listed : [hinted, ...listed];
}
