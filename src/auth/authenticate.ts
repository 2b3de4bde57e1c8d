import type { RequestHandler } from 'express';
import { Passport } from 'passport';

import { AppError, ForbiddenError, InsufficientScopeError, InvalidTokenError } from '../errors/app-errors';
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
