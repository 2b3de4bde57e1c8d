import type { ErrorRequestHandler, NextFunction, Request, Response } from 'express';
import type { EmulatorKit } from '../../kit/faults';
import { GraphEmulatorError } from '../graph-emulator-error';

/**
 * The last step of the Graph emulator: a {@link GraphEmulatorError} thrown by any step, and the body
 * parser's own errors, are answered in Graph's OData error envelope with Graph's codes and wording,
 * never as Express's HTML error page.
 */
export function graphErrorHandler(kit: EmulatorKit): ErrorRequestHandler {
  // Express recognises error middleware by its four parameters, so `_next` must stay.
  return (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof GraphEmulatorError) {
      kit.sendError(req, res, error.status, error.code, error.message);
      return;
    }
    const type = typeof error === 'object' && error !== null ? (error as { type?: unknown }).type : undefined;
    if (type === 'entity.parse.failed') {
      kit.sendError(
        req,
        res,
        400,
        'BadRequest',
        'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.',
      );
    } else if (type === 'entity.too.large') {
      kit.sendError(req, res, 413, 'RequestEntityTooLarge', 'The request payload is too large.');
    } else {
      kit.sendError(req, res, 500, 'generalException', 'An internal server error occurred.');
    }
  };
}
