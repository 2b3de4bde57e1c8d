import type { Response } from 'supertest';

/**
 * The service's response bodies, typed and checked. supertest types `response.body` as `any`; these
 * read it as `unknown`, check its shape, and fail with the status and body when it is something else
 * (a test that expected a token but got an error body says so, rather than reading `undefined`).
 */

/** Every error: `{ code, message, requestId }` (and `stack` for a 5xx in development). */
export interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly requestId: string;
  readonly stack?: string;
}

/** `GET`/`POST /api/user`. */
export interface UserBody {
  readonly acsUserIdentity: string;
}

/** `GET`/`POST /api/token`. */
export interface TokenBody {
  readonly token: string;
  readonly expiresOn: string;
  readonly user: { readonly communicationUserId: string };
}

/** Any issued token: the Teams routes answer just this, the ACS token routes add `user` ({@link TokenBody}). */
export interface IssuedTokenBody {
  readonly token: string;
  readonly expiresOn: string;
}

/** A JSON object, for bodies a test inspects member by member (documents, arbitrary JSON). */
export type JsonObject = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isString = (value: unknown): value is string => typeof value === 'string';

function checked<T>(response: Response, kind: string, matches: (body: JsonObject) => boolean): T {
  const body: unknown = response.body;
  if (!isObject(body) || !matches(body)) {
    const shown = JSON.stringify(body) ?? String(body);
    throw new Error(`expected ${kind} body, got HTTP ${response.status}: ${shown.length > 300 ? `${shown.slice(0, 300)}…` : shown}`);
  }
  return body as T;
}

export function errorBody(response: Response): ErrorBody {
  return checked(response, 'an error', (body) => isString(body['code']) && isString(body['message']) && isString(body['requestId']));
}

export function userBody(response: Response): UserBody {
  return checked(response, 'a user', (body) => isString(body['acsUserIdentity']));
}

export function tokenBody(response: Response): TokenBody {
  return checked(
    response,
    'a token',
    (body) =>
      isString(body['token']) && isString(body['expiresOn']) && isObject(body['user']) && isString(body['user']['communicationUserId']),
  );
}

export function issuedTokenBody(response: Response): IssuedTokenBody {
  return checked(response, 'an issued token', (body) => isString(body['token']) && isString(body['expiresOn']));
}

/**
 * One member of the body, whatever the body is (undefined when it is not an object or has no such
 * member): for answers that may be a success or an error.
 */
export function bodyMember(response: Response, name: string): unknown {
  const body: unknown = response.body;
  return isObject(body) ? body[name] : undefined;
}

/** Any JSON object body (the OpenAPI document, an emulator's answer). */
export function objectBody(response: Response): JsonObject {
  return checked(response, 'a JSON object', () => true);
}
