import type { Request, RequestHandler } from 'express';
import { rateLimit, type Options, type Store } from 'express-rate-limit';

import { ThrottledError } from '../errors/app-errors';
import { clientAddressKey } from './client-address';

/**
 * Two fixed-window limits in front of the upstreams, counted in the instance's memory, or across instances in
 * Redis when REDIS_URL is set (`store`; see src/adapters/redis/rate-limit-store.ts):
 * - per client address, before authentication: bounds what any one address can make us verify;
 * - per user (`oid`), after authentication: bounds what one account can cost in Graph calls
 *   (455 requests per 10 s per app, shared by all users) and ACS operations.
 * Both answer 429 `too_many_requests` with `Retry-After` and the IETF `RateLimit` headers.
 */
const WINDOW_MS = 60_000;

function rejectWith(message: string): Options['handler'] {
  return (req, _res, next) => {
    const info = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit;
    const resetIn = info?.resetTime ? (info.resetTime.getTime() - Date.now()) / 1000 : Number.NaN;
    // Never more than a window, never NaN: the count's reset time may come from a store another process writes.
    const seconds = Number.isFinite(resetIn) ? Math.min(Math.max(resetIn, 0), WINDOW_MS / 1000) : WINDOW_MS / 1000;
    next(new ThrottledError('too_many_requests', message, seconds));
  };
}

const common = {
  windowMs: WINDOW_MS,
  standardHeaders: 'draft-8',
  legacyHeaders: false,
} as const;

/**
 * Per client address (from `trust proxy`, so App Service's front end is not everyone's address),
 * without the source port App Service puts in `X-Forwarded-For` (see client-address.ts).
 */
export function limitByClientAddress(perMinute: number, store?: Store): RequestHandler {
  return rateLimit({
    ...common,
    ...(store === undefined ? {} : { store }),
    limit: perMinute,
    identifier: 'per-address',
    keyGenerator: clientAddressKey,
    handler: rejectWith('Too many requests from this address; retry later.'),
  });
}

/** Per authenticated user: place after the authenticate step. */
export function limitByCaller(perMinute: number, store?: Store): RequestHandler {
  return rateLimit({
    ...common,
    ...(store === undefined ? {} : { store }),
    limit: perMinute,
    identifier: 'per-user',
    keyGenerator: (req) => `${req.user?.tid ?? ''}/${req.user?.oid ?? ''}`,
    handler: rejectWith('Too many requests for this user; retry later.'),
  });
}
