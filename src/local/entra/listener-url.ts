/**
 * Which listener a request came in on: the https one services use, or the plain-http loopback one for
 * browsers. Endpoints the emulator hands out (metadata, discovery, the sign-in form) point at the listener
 * asked, so a browser that reached the http listener stays on it; issuers do not change (tokens are the same).
 *
 * @packageDocumentation
 */
import type { RequestHandler, Response } from 'express';

const LISTENER_URL = 'listenerUrl';

/** First middleware of a listener's routes: remembers its base URL (known only once it listens, hence a function). */
export function listenerUrlStep(url: () => string): RequestHandler {
  return (_req, res, next) => {
    res.locals[LISTENER_URL] = url();
    next();
  };
}

/** The base URL of the listener that received this request, e.g. `http://127.0.0.1:49153`. */
export function listenerUrlOf(res: Response): string {
  const url: unknown = res.locals[LISTENER_URL];
  if (typeof url !== 'string') throw new Error('listenerUrlStep must run before the Entra routes');
  return url;
}
