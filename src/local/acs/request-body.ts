import express, { type Request, type RequestHandler } from 'express';
import { parseJsonBody, type Validated } from './request-validation';

/**
 * Request bodies of the ACS emulator. The HMAC signature covers the body bytes exactly as sent, so
 * they are kept raw and decoded only after the signature check: a JSON parser in front would have
 * re-serialised them.
 *
 * @packageDocumentation
 */

/** Largest body accepted; a larger one is answered 413 before any other check. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Keeps every body as a Buffer (any content type), refusing more than {@link MAX_BODY_BYTES}. */
export const rawBodyParser: RequestHandler = express.raw({ type: () => true, limit: MAX_BODY_BYTES, inflate: false });

/** The body bytes as received; empty when there was none. */
export function rawBody(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

/** The body decoded as JSON, or the error the service answers for it (see {@link parseJsonBody}). */
export function jsonBodyOf(req: Request): Validated<unknown> {
  return parseJsonBody(rawBody(req), req.get('content-type'));
}
