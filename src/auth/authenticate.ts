import type { RequestHandler } from 'express';
import { Passport } from 'passport';

import { AppError, ClientAppNotAllowedError, ForbiddenError, InsufficientScopeError, InvalidTokenError } from '../errors/app-errors';
import { ENTRA_BEARER, EntraBearerStrategy } from './bearer-strategy';
import type { Caller } from './caller';
import type { EntraTokenValidator } from './entra-token-validator';

/**
 * The `authenticate` request step: runs the Entra bearer strategy through a private passport
 * instance (no global state, no sessions) and puts the Caller on `req.user`.
 */
export function createAuthenticate(validate: EntraTokenValidator): RequestHandler {
  const passport = new Passport();
  passport.use(new EntraBearerStrategy(validate));
  return function authenticate(req, res, next) {
    const handler = passport.authenticate(
      ENTRA_BEARER,
      { session: false },
      (error: unknown, caller: Caller | false, challenge: unknown) => {
        if (error) return next(error);
        if (!caller) return next(challenge instanceof AppError ? challenge : new InvalidTokenError('The access token is invalid.'));
        req.user = caller;
        return next();
      },
    ) as RequestHandler;
    handler(req, res, next);
  };
}

/** The caller established by `authenticate`; a route that reads it without that step is a bug. */
export function callerOf(req: { user?: Caller }): Caller {
  if (!req.user) throw new Error('callerOf() used on a route without the authenticate step');
  return req.user;
}

/**
 * Request step: the client application that obtained the token (`appid`/`azp`) must be one of these
 * (ENTRA_ALLOWED_CLIENT_APP_IDS). An empty list lets any client app of the tenant through, because
 * Entra itself lets any of them ask for this API's scope once a user or an admin consents.
 */
export function requireClientApp(allowedClientAppIds: readonly string[]): RequestHandler {
  const allowed = new Set(allowedClientAppIds.map((id) => id.toLowerCase()));
  return function requireClientAppStep(req, _res, next) {
    const { clientAppId } = callerOf(req);
    next(allowed.size === 0 || allowed.has(clientAppId) ? undefined : new ClientAppNotAllowedError(clientAppId));
  };
}

/** Request step: the token must carry this delegated scope (`scp`). */
export function requireScope(scope: string): RequestHandler {
  return function requireScopeStep(req, _res, next) {
    next(callerOf(req).scopes.includes(scope) ? undefined : new InsufficientScopeError(scope));
  };
}

/** Request step: the user must hold this app role (`roles`). */
export function requireRole(role: string): RequestHandler {
  return function requireRoleStep(req, _res, next) {
    next(callerOf(req).roles.includes(role) ? undefined : new ForbiddenError(`This operation needs the app role '${role}'.`));
  };
}
