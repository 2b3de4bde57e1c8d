/**
 * Request step: one structured line per finished request. It logs the route shape, never headers,
 * bodies or the query string (which could carry tokens a client put in the wrong place).
 *
 * @packageDocumentation
 */

import type { RequestHandler } from 'express';

import type { Logger } from '../observability/logger';
import { PATH_TEXT_LENGTH, redactTokens } from '../observability/redact';
import { requestIdOf } from './request-id';

/** The path the client asked for, without the query string, cut short and with tokens masked. */
function pathOf(originalUrl: string): string {
  const query = originalUrl.indexOf('?');
  return redactTokens(query < 0 ? originalUrl : originalUrl.slice(0, query), PATH_TEXT_LENGTH);
}

export function logRequests(logger: Logger): RequestHandler {
  return function logRequest(req, res, next) {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      const level = res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info';
      logger[level](
        {
          requestId: requestIdOf(res),
          method: req.method,
          path: pathOf(req.originalUrl),
          status: res.statusCode,
          durationMs: Math.round(durationMs * 10) / 10,
          oid: req.user?.oid,
          code: res.locals['errorCode'],
        },
        'request',
      );
    });
    next();
  };
}
