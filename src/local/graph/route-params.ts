import type { Request } from 'express';

/**
 * The path parameters of the Graph routes. Named (non-wildcard) route parameters are always single
 * strings in Express, so reading them here once keeps that assumption in one place.
 *
 * @packageDocumentation
 */

/** `{id|upn}` of `/v1.0/users/{id|upn}/…`; undefined on the `/v1.0/me` routes. */
export function userIdParam(req: Request): string | undefined {
  const value = req.params['userId'];
  return typeof value === 'string' ? value : undefined;
}

/** `{id}` of `…/extensions/{id}` (only registered on routes that have it). */
export function extensionIdParam(req: Request): string {
  const value = req.params['extensionId'];
  return typeof value === 'string' ? value : '';
}
