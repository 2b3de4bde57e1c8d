/**
 * Reading a token request's form body as Entra reads it: only `application/x-www-form-urlencoded` is
 * read at all, and a repeated parameter makes the whole request malformed. Every grant and client
 * authentication method reads its parameters from the map built here.
 *
 * @packageDocumentation
 */
import express, { type Request, type RequestHandler } from 'express';
import { AadError } from './aad-error';

const FORM = 'application/x-www-form-urlencoded';

/** Keeps the form body as text, so that repeated parameters can be seen and refused. */
export const tokenRequestBody: RequestHandler = express.text({ type: FORM, limit: '256kb' });

/** Form parameters, refusing repeated ones (Entra answers a malformed request). */
export function formParameters(req: Request): Map<string, string> {
  // A body that is not form-encoded is not read at all, as Entra does: the request then lacks every parameter.
  if (!req.is(FORM) || typeof req.body !== 'string') return new Map();
  return uniqueParameters(req.body);
}

/** `application/x-www-form-urlencoded` parameters (a query string or a form body), refusing repeated ones. */
export function uniqueParameters(encoded: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(encoded)) {
    if (params.has(key))
      throw new AadError(
        400,
        'invalid_request',
        9002313,
        `Invalid request. Request is malformed or invalid. Parameter '${key}' is repeated.`,
      );
    params.set(key, value);
  }
  return params;
}
