import type { RequestHandler, Response } from 'express';
import { ACS_ERRORS, sendAcsError } from '../acs-errors';
import type { AcsOperation, FixedWindowRateLimiter } from '../rate-limiter';

/**
 * The per-operation request limits as route steps. They answer 429 with `Retry-After`, which is what
 * makes the SDK's retry policy wait and try again, so clients are tested against real back-off.
 *
 * @packageDocumentation
 */

/**
 * Count a request against its operation's limit; answers 429 and returns false when over it. For
 * actions that only know their operation once they have read the body (create with or without token).
 */
export function withinLimit(limiter: FixedWindowRateLimiter, res: Response, operation: AcsOperation): boolean {
  const decision = limiter.take(operation);
  if (decision.allowed) return true;
  sendAcsError(res, ACS_ERRORS.throttled, { 'Retry-After': String(decision.retryAfterSeconds) });
  return false;
}

/** A route step that counts every request against `operation`'s limit. */
export function limitOperation(limiter: FixedWindowRateLimiter, operation: AcsOperation): RequestHandler {
  return (_req, res, next) => {
    if (withinLimit(limiter, res, operation)) next();
  };
}
