import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

// Ids the client chose are echoed only when they look like ids: never reflect arbitrary header text.
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * Request step: give every request an id, taken from `x-ms-client-request-id` (what Azure SDKs
 * send) or `x-request-id` when the client sent a well-formed one, and echo it in both headers so
 * a client, our logs and support can name the same request.
 */
export const assignRequestId: RequestHandler = function assignRequestId(req, res, next) {
  const offered = [req.headers['x-ms-client-request-id'], req.headers['x-request-id']].find(
    (value): value is string => typeof value === 'string' && SAFE_ID.test(value),
  );
  const id = offered ?? randomUUID();
  res.locals['requestId'] = id;
  res.setHeader('x-request-id', id);
  res.setHeader('x-ms-client-request-id', id);
  next();
};

export function requestIdOf(res: { locals: Record<string, unknown> }): string {
  const id = res.locals['requestId'];
  return typeof id === 'string' ? id : 'unknown';
}
