import type { RequestHandler } from 'express';

import { UriTooLongError } from '../errors/request-errors';

/**
 * The longest URL (path and query string) the service accepts, in characters (Node reads the request
 * line byte for byte, so also bytes). Its longest real URL is under 100 characters
 * (`/api/token?scopes=chat,voip&expiresInMinutes=1440`, `/api/user/{guid}`, the docs' assets), and
 * RFC 9110 (section 4.1) asks servers to take at least 8,000 octets, so 8 KiB refuses nothing real.
 * A constant rather than a setting: no deployment has a reason to change it.
 */
export const MAX_URL_LENGTH = 8192;

/**
 * Request step, before the request is logged or anything else looks at the URL: 414 for a longer
 * one. Node's own limit is the whole header block (16 KB), which left room for 15 KB paths that every
 * later step (routing, logging, redaction) would scan.
 */
export const refuseLongUrls: RequestHandler = function refuseLongUrls(req, _res, next) {
  if (req.originalUrl.length > MAX_URL_LENGTH) next(new UriTooLongError(MAX_URL_LENGTH));
  else next();
};
