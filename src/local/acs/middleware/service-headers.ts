import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { RequestHandler, Response } from 'express';
import { ACS_SUPPORTED_API_VERSIONS } from './api-version';

/**
 * The headers the live Identity service puts on every answer, errors and injected faults included:
 * `MS-CV`, `api-supported-versions`, `X-Processing-Time`, and the caller's `x-ms-client-request-id`
 * echoed back. Clients log them, so a client's logging is exercised against the same shapes.
 */
export const serviceHeaders: RequestHandler = (req, res, next) => {
  const startedAt = process.hrtime.bigint();
  res.setHeader('MS-CV', correlationVector());
  res.setHeader('api-supported-versions', ACS_SUPPORTED_API_VERSIONS.join(', '));
  const clientRequestId = req.get('x-ms-client-request-id');
  if (clientRequestId !== undefined) res.setHeader('x-ms-client-request-id', clientRequestId);
  stampProcessingTime(res, startedAt);
  next();
};

/** A correlation vector like the live `MS-CV` header (base64 of 16 random bytes, then `.0`). */
function correlationVector(): string {
  return `${randomBytes(16).toString('base64').replace(/=+$/, '')}.0`;
}

/**
 * The processing time is only known when the head is written; Node calls writeHead for every
 * response (explicitly or through end()), so faults and errors get the header too.
 */
function stampProcessingTime(res: Response, startedAt: bigint): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  // writeHead is overloaded; the wrapper forwards whatever it was given, so its arguments stay unknown[].
  res.writeHead = ((...args: unknown[]) => {
    const elapsedMs = Number((process.hrtime.bigint() - startedAt) / 1_000_000n);
    if (!res.headersSent) res.setHeader('X-Processing-Time', `${elapsedMs}ms`);
    return writeHead(...args);
  }) as Response['writeHead'];
}
