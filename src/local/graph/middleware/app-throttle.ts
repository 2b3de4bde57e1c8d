import type { RequestHandler } from 'express';
import type { EmulatorKit } from '../../kit/faults';
import type { SlidingWindowThrottle } from '../graph-throttle';
import { callerOf } from './authenticate-caller';

/**
 * Graph's per-app request budget as a route step, behind authentication because the budget is
 * counted per tenant and app (the token's `tid` and `appid`). Over budget is 429 with a fractional
 * `Retry-After`, which a well-behaved client must honour.
 */
export function throttlePerApp(throttle: SlidingWindowThrottle, kit: EmulatorKit): RequestHandler {
  return (req, res, next) => {
    const caller = callerOf(res);
    const decision = throttle.take(`${caller.tenantId}/${caller.appId}`);
    if (!decision.allowed) {
      kit.counters.increment('throttled');
      res.set('Retry-After', String(decision.retryAfterSeconds));
      kit.sendError(req, res, 429, 'TooManyRequests', 'Please retry again later.');
      return;
    }
    next();
  };
}
