import express, { type RequestHandler } from 'express';

/**
 * Request step: parse JSON bodies, UTF-8 only. body-parser accepts any `utf-*` charset and decodes
 * with it, so a UTF-8 body labelled `charset=utf-16` became garbage and answered 400 "not valid
 * JSON", where the API promises 415 for a charset it does not take. RFC 8259 (section 8.1) requires
 * UTF-8 for JSON between systems, so anything else is refused with 415 before the body is decoded.
 */
export function parseJsonBodies(limitBytes: number): RequestHandler {
  return express.json({ limit: limitBytes, strict: true, verify: refuseNonUtf8 });
}

/** body-parser's `verify` hook: it runs on the raw bytes, with the charset body-parser read (lower case). */
function refuseNonUtf8(_req: unknown, _res: unknown, _body: Buffer, charset: string): void {
  if (charset !== 'utf-8') {
    // The status and `type` body-parser gives its own charset refusals, so error-handler.ts maps both alike.
    throw Object.assign(new Error(`unsupported charset "${charset.slice(0, 32)}"`), { status: 415, type: 'charset.unsupported' });
  }
}
