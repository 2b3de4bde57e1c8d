import type { RequestHandler } from 'express';
import { ACS_ERRORS, sendAcsError } from '../acs-errors';
import { verifyHmacRequest } from '../hmac-authentication';
import { rawBody } from '../request-body';

/**
 * The access-key (HMAC-SHA256) check in front of every operation. It runs on the path and body
 * bytes exactly as received, before anything parses them, so a client that signs something other
 * than what it sends is refused here as the live service refuses it.
 *
 * @param macKey - the resource's access key, base64-decoded
 */
export function authenticateAccessKey(macKey: Buffer): RequestHandler {
  return (req, res, next) => {
    const verdict = verifyHmacRequest(
      { method: req.method, pathAndQuery: req.originalUrl, headers: req.headers, body: rawBody(req) },
      macKey,
    );
    if (verdict.ok) next();
    else sendAcsError(res, verdict.failure === 'clock-skew' ? ACS_ERRORS.clockSkew : ACS_ERRORS.denied);
  };
}
