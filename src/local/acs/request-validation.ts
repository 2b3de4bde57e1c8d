import { ACS_ERRORS, type AcsErrorSpec } from './acs-errors';

/**
 * Body validation for the Identity operations, following the 2023-10-01 spec's schemas. Wording
 * recorded from the live service is reused; the other messages are plausible choices (unconfirmed).
 */
export const ACS_TOKEN_SCOPES = ['chat', 'voip', 'chat.join', 'chat.join.limited', 'voip.join'] as const;
export type AcsTokenScope = (typeof ACS_TOKEN_SCOPES)[number];

export const DEFAULT_TOKEN_MINUTES = 1440;
export const MIN_TOKEN_MINUTES = 60;
export const MAX_TOKEN_MINUTES = 1440;

export type Validated<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: AcsErrorSpec };

export interface CreateIdentityRequest {
  /** Scopes of the token to issue with the identity; absent when no token was asked for. */
  readonly scopes?: readonly AcsTokenScope[];
  readonly expiresInMinutes: number;
}

export interface IssueTokenRequest {
  readonly scopes: readonly AcsTokenScope[];
  readonly expiresInMinutes: number;
}

export interface TeamsExchangeRequest {
  readonly token: string;
  readonly appId: string;
  readonly userId: string;
}

const JSON_MEDIA_TYPE = /^(application\/json|text\/json|application\/[^;\s]+\+json)\s*(;|$)/i;

function invalid<T>(error: AcsErrorSpec): Validated<T> {
  return { ok: false, error };
}

function fieldError(field: string, message: string): AcsErrorSpec {
  return { status: 400, code: 'ValidationError', message, target: field };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Decode a request body. An empty body is `undefined` (createUser sends none while still declaring
 * `application/json`); a non-empty body must be JSON and declared as such.
 */
export function parseJsonBody(raw: Buffer, contentType: string | undefined): Validated<unknown> {
  if (raw.length === 0) return { ok: true, value: undefined };
  if (contentType === undefined || !JSON_MEDIA_TYPE.test(contentType)) return invalid(ACS_ERRORS.unsupportedMediaType);
  try {
    return { ok: true, value: JSON.parse(raw.toString('utf8')) as unknown };
  } catch {
    return invalid(ACS_ERRORS.malformedBody);
  }
}

function validateScopes(value: unknown, field: string): Validated<readonly AcsTokenScope[]> {
  if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) {
    return invalid({ ...ACS_ERRORS.scopesRequired, target: field });
  }
  if (!Array.isArray(value)) return invalid(fieldError(field, 'Invalid scopes - Scopes must be an array of scope names.'));
  for (const scope of value) {
    if (typeof scope !== 'string' || !(ACS_TOKEN_SCOPES as readonly string[]).includes(scope)) {
      return invalid(fieldError(field, `Invalid scopes - Scope '${String(scope)}' is not supported.`));
    }
  }
  return { ok: true, value: value as AcsTokenScope[] };
}

function validateExpiresInMinutes(value: unknown): Validated<number> {
  if (value === undefined || value === null) return { ok: true, value: DEFAULT_TOKEN_MINUTES };
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_TOKEN_MINUTES || value > MAX_TOKEN_MINUTES) {
    return invalid(
      fieldError(
        'expiresInMinutes',
        `Invalid expiresInMinutes - The value must be an integer between ${MIN_TOKEN_MINUTES} and ${MAX_TOKEN_MINUTES}.`,
      ),
    );
  }
  return { ok: true, value };
}

/** `POST /identities`: the body is optional; `createTokenWithScopes` asks for a token too. */
export function validateCreateRequest(body: unknown): Validated<CreateIdentityRequest> {
  if (body === undefined || body === null) return { ok: true, value: { expiresInMinutes: DEFAULT_TOKEN_MINUTES } };
  if (!isRecord(body)) return invalid(fieldError('body', 'The request body must be a JSON object.'));
  const expires = validateExpiresInMinutes(body['expiresInMinutes']);
  if (!expires.ok) return expires;
  const requested = body['createTokenWithScopes'];
  if (requested === undefined || requested === null) return { ok: true, value: { expiresInMinutes: expires.value } };
  // An explicitly empty list is treated like `scopes: []` on issue (unconfirmed for create).
  const scopes = validateScopes(requested, 'createTokenWithScopes');
  if (!scopes.ok) return scopes;
  return { ok: true, value: { scopes: scopes.value, expiresInMinutes: expires.value } };
}

/** `POST /identities/{id}/:issueAccessToken`: `scopes` is required. */
export function validateIssueRequest(body: unknown): Validated<IssueTokenRequest> {
  if (body !== undefined && body !== null && !isRecord(body)) {
    return invalid(fieldError('body', 'The request body must be a JSON object.'));
  }
  const fields = isRecord(body) ? body : {};
  const scopes = validateScopes(fields['scopes'], 'scopes');
  if (!scopes.ok) return scopes;
  const expires = validateExpiresInMinutes(fields['expiresInMinutes']);
  if (!expires.ok) return expires;
  return { ok: true, value: { scopes: scopes.value, expiresInMinutes: expires.value } };
}

/**
 * `POST /teamsUser/:exchangeAccessToken`: all three fields are required strings. An empty `token` is
 * left to token verification, because the live service answers it with 401 InvalidAccessToken.
 */
export function validateTeamsExchangeRequest(body: unknown): Validated<TeamsExchangeRequest> {
  if (!isRecord(body)) return invalid(fieldError('body', 'The request body is required.'));
  const { token, appId, userId } = body;
  if (typeof token !== 'string') return invalid(fieldError('token', 'The token field is required.'));
  if (typeof appId !== 'string' || appId.trim() === '') return invalid(fieldError('appId', 'The appId field is required.'));
  if (typeof userId !== 'string' || userId.trim() === '') return invalid(fieldError('userId', 'The userId field is required.'));
  return { ok: true, value: { token, appId, userId } };
}
