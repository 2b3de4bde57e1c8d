import type { RequestHandler } from 'express';
import { sendAcsError } from '../acs-errors';

/**
 * The `api-version` query parameter every Identity operation requires. The emulator accepts the GA
 * versions the JS SDK has sent, so an SDK upgrade that moves to a new version fails loudly here
 * instead of being served a contract the emulator was never checked against.
 */
export const ACS_SUPPORTED_API_VERSIONS = Object.freeze(['2021-03-07', '2022-06-01', '2022-10-01', '2023-10-01'] as const);

function isSupported(version: unknown): version is string {
  return typeof version === 'string' && (ACS_SUPPORTED_API_VERSIONS as readonly string[]).includes(version);
}

/** Answer 400 `UnsupportedApiVersion` unless the request names a supported `api-version`. */
export const requireApiVersion: RequestHandler = (req, res, next) => {
  const version = req.query['api-version'];
  if (isSupported(version)) {
    next();
    return;
  }
  // ASP.NET API Versioning wording (Azure/Communication#159); status and code unconfirmed.
  const uri = `${req.protocol}://${req.get('host') ?? ''}${req.originalUrl}`;
  const shown = typeof version === 'string' ? version : '';
  sendAcsError(res, {
    status: 400,
    code: 'UnsupportedApiVersion',
    message: `The HTTP resource that matches the request URI '${uri}' does not support the API version '${shown}'.`,
  });
};
