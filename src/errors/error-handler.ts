import type { ErrorRequestHandler, RequestHandler } from 'express';

import { requestIdOf } from '../http/request-id';
import type { Logger } from '../observability/logger';
import { PATH_TEXT_LENGTH, redactTokens, summarizeError } from '../observability/redact';
import { AppError, BadRequestError, NotFoundError, publicMessage } from './app-errors';

/** Errors body-parser raises carry an HTTP status and a `type`; map the ones a client can cause. */
function fromHttpError(error: unknown): AppError | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { status, type } = error as { status?: unknown; type?: unknown };
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  if (type === 'entity.too.large') return new AppError('payload_too_large', 413, 'The request body is too large.');
  if (type === 'entity.parse.failed') return new BadRequestError('The request body is not valid JSON.');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new AppError('unsupported_media_type', 415, 'The request body encoding is not supported.');
  }
  return new BadRequestError('The request is malformed.');
}

/**
 * The one place errors become HTTP responses: `{ code, message }` (plus `requestId`, and a stack in
 * development only). 5xx details go to the log; the caller gets a generic message.
 */
export function createErrorHandler(options: { readonly logger: Logger; readonly exposeStack: boolean }): ErrorRequestHandler {
  return function handleError(error: unknown, req, res, next) {
    if (res.headersSent) {
      next(error);
      return;
    }
    const appError =
      error instanceof AppError
        ? error
        : (fromHttpError(error) ?? new AppError('internal_error', 500, 'Unexpected error', { cause: error }));
    const requestId = requestIdOf(res);
    res.locals['errorCode'] = appError.code;
    if (appError.status >= 500) {
      options.logger.error(
        { requestId, code: appError.code, err: summarizeError(error), method: req.method, path: redactTokens(req.path, PATH_TEXT_LENGTH) },
        appError.message,
      );
    }
    for (const [name, value] of Object.entries(appError.headers)) res.setHeader(name, value);
    const body: Record<string, unknown> = { code: appError.code, message: publicMessage(appError), requestId };
    // Development only, and only for failures: a 4xx is the caller's to fix, and its stack says nothing.
    if (options.exposeStack && appError.status >= 500 && error instanceof Error) body['stack'] = error.stack;
    res.status(appError.status).json(body);
  };
}

/** The last route: anything unmatched is a JSON 404. */
export const notFound: RequestHandler = function notFound(req, _res, next) {
  next(new NotFoundError(`No route for ${req.method} ${redactTokens(req.path, PATH_TEXT_LENGTH)}.`));
};
