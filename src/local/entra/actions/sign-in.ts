/**
 * `POST /{tenant}/login`: the account picker's form. It names the pending sign-in by its flow token (used
 * once, expiring: AADSTS50089) and the user picked; the browser is then signed in (a session cookie) and the
 * code goes to the app. A post from another origin is refused, on top of the flow token no other site knows.
 *
 * @packageDocumentation
 */
import type { Request, RequestHandler } from 'express';
import { AadError, traceIdOf } from '../aad-error';
import { sendAuthorizationCode } from '../authorization-response';
import type { EntraTenant } from '../entra-tenant';
import { sendErrorPage } from '../sign-in-pages';
import { formParameters } from '../token-request';

export function signInAction(tenant: EntraTenant): RequestHandler {
  return (req, res) => {
    try {
      tenant.requireTenant(req);
      requireSameOrigin(req);
      const params = formParameters(req);
      const request = tenant.signIns.take(params.get('flowToken') ?? '');
      if (request === undefined) {
        throw new AadError(
          400,
          'invalid_request',
          50089,
          'Authentication failed due to flow token expired. Start the sign-in again from the application.',
        );
      }
      const name = params.get('user') ?? '';
      const user = tenant.users.byName(name);
      if (user === undefined) {
        throw new AadError(400, 'invalid_request', 50034, `The user account ${name} does not exist in the ${tenant.tenantId} directory.`);
      }
      sendAuthorizationCode(tenant, res, request, tenant.sessions.signIn(req, res, user.oid));
    } catch (error) {
      if (!(error instanceof AadError)) throw error;
      sendErrorPage(res, error, traceIdOf(req));
    }
  };
}

/** Browsers send `Origin` with a form post; it must be the picker page's own (the host this request reached). */
function requireSameOrigin(req: Request): void {
  const origin = req.get('origin');
  if (origin === undefined) return;
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (host === undefined || host !== req.get('host')) {
    throw new AadError(400, 'invalid_request', 9002313, 'Invalid request. The sign-in form was posted from another origin.');
  }
}
