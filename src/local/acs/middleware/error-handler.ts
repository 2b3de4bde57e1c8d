import type { NextFunction, Request, Response } from 'express';
import { ACS_ERRORS, sendAcsError } from '../acs-errors';

/**
 * The last step of the ACS emulator: errors thrown by body parsing or an action are answered in
 * the ACS envelope, as the live service would, instead of Express's HTML error page.
 * Express recognises error middleware by its four parameters, so `_req` stays.
 */
export function handleAcsError(error: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) {
    next(error);
    return;
  }
  const status = typeof error === 'object' && error !== null && 'status' in error ? Number(error.status) : 500;
  const type = typeof error === 'object' && error !== null && 'type' in error ? String(error.type) : '';
  if (type === 'entity.too.large') sendAcsError(res, ACS_ERRORS.payloadTooLarge);
  else if (type === 'encoding.unsupported') sendAcsError(res, ACS_ERRORS.unsupportedMediaType);
  else if (status >= 400 && status < 500) sendAcsError(res, { status, code: 'BadRequest', message: 'The request is malformed.' });
  else sendAcsError(res, ACS_ERRORS.internal);
}
