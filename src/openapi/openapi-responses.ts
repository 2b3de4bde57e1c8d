import type { ErrorCode } from '../errors/app-errors';
import type { JsonSchema, OpenApiReference, OpenApiResponse } from './openapi-types';

/**
 * The responses the operations of the OpenAPI document are described with: one builder per kind of
 * answer (success, an error narrowed to its codes, the refusals every route shares), so each
 * operation lists a status with one call and the same refusal reads the same everywhere.
 */
export const JSON_MEDIA_TYPE = 'application/json';

/** A reference to a schema of the document's `components`. */
export const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

/** A reference to a header of the document's `components`. */
export const headerRef = (name: string): OpenApiReference => ({ $ref: `#/components/headers/${name}` });

/** Headers on every response: the request id the service echoes or assigns. */
export const REQUEST_ID_HEADERS = { 'x-request-id': headerRef('RequestId'), 'x-ms-client-request-id': headerRef('ClientRequestId') };

export function success(description: string, schemaName: string | undefined): OpenApiResponse {
  return {
    description,
    headers: REQUEST_ID_HEADERS,
    ...(schemaName === undefined ? {} : { content: { [JSON_MEDIA_TYPE]: { schema: ref(schemaName) } } }),
  };
}

/**
 * An error response whose body is the `Error` schema narrowed to the codes this operation can give
 * with this status, so a client (and the contract test) knows exactly which codes to expect.
 */
export function failure(
  description: string,
  codes: readonly ErrorCode[],
  extraHeaders: Readonly<Record<string, OpenApiReference>> = {},
): OpenApiResponse {
  return {
    description,
    headers: { ...REQUEST_ID_HEADERS, ...extraHeaders },
    content: {
      [JSON_MEDIA_TYPE]: {
        schema: { allOf: [ref('Error'), { type: 'object', properties: { code: { enum: [...codes] } } }] },
      },
    },
  };
}

/** This service's own rate limits (http/rate-limits.ts): every `/api` route, the public ones included. */
export function tooManyRequests(description: string): OpenApiResponse {
  return failure(description, ['too_many_requests'], {
    'Retry-After': headerRef('RetryAfterRequired'),
    RateLimit: headerRef('RateLimit'),
    'RateLimit-Policy': headerRef('RateLimitPolicy'),
  });
}

/**
 * What any route answers, before authentication, to a JSON body it cannot take; listed on the
 * operations that take a body or may be sent one (POST). The 400 for a body that does not parse is
 * in each operation's own 400.
 */
export function bodyRefusals(): Record<string, OpenApiResponse> {
  return {
    '413': failure('The JSON body is larger than JSON_BODY_LIMIT_BYTES.', ['payload_too_large']),
    '415': failure('The JSON body is not UTF-8 (`charset` other than `utf-8`) or has an unsupported `Content-Encoding`.', [
      'unsupported_media_type',
    ]),
  };
}

/** What the service answers when an upstream (Entra ID, Graph, ACS) fails; `/api` routes only. */
function upstreamFailures(): Record<string, OpenApiResponse> {
  return {
    '429': tooManyRequests(
      'Too many requests from this client address or this user (RATE_LIMIT_* settings); retry after `Retry-After` seconds.',
    ),
    '500': failure('Unexpected failure in the service (details are logged, never returned).', ['internal_error']),
    '502': failure('An upstream service refused or failed the request (often a deployment problem: credentials, permissions).', [
      'upstream_error',
    ]),
    '503': failure(
      'An upstream service is unavailable (`upstream_unavailable`) or keeps throttling (`upstream_throttled`, with `Retry-After`).',
      ['upstream_unavailable', 'upstream_throttled'],
      { 'Retry-After': headerRef('RetryAfter') },
    ),
    '504': failure('An upstream service did not answer within UPSTREAM_TIMEOUT_MS.', ['upstream_timeout']),
  };
}

export function unauthorized(onBehalfOf: boolean): OpenApiResponse {
  return failure(
    onBehalfOf
      ? 'No valid bearer token (`invalid_token`), or Entra ID needs the user to sign in again before Graph can be reached on their behalf (`interaction_required`, with a claims challenge in `WWW-Authenticate`).'
      : 'No valid bearer token (`invalid_token`).',
    onBehalfOf ? ['invalid_token', 'interaction_required'] : ['invalid_token'],
    { 'WWW-Authenticate': headerRef('WwwAuthenticate') },
  );
}

export function forbidden(requiredScope: string, adminRole?: string): OpenApiResponse {
  const clientAppText =
    'the client application that obtained the token is not listed in ENTRA_ALLOWED_CLIENT_APP_IDS (`client_app_not_allowed`, only when that setting is used)';
  const scopeText = `The token lacks the scope '${requiredScope}' (\`insufficient_scope\`, with \`WWW-Authenticate\`)`;
  return failure(
    adminRole === undefined
      ? `${scopeText}, or ${clientAppText}.`
      : `${scopeText}, ${clientAppText}, or the user lacks the app role '${adminRole}' (\`forbidden\`).`,
    adminRole === undefined
      ? ['insufficient_scope', 'client_app_not_allowed']
      : ['insufficient_scope', 'client_app_not_allowed', 'forbidden'],
    { 'WWW-Authenticate': headerRef('WwwAuthenticateInsufficientScope') },
  );
}

/** The upstream failures every authenticated `/api` operation lists; built once, as they never vary. */
export const UPSTREAM_FAILURES = upstreamFailures();

export const BAD_QUERY = failure('A query parameter is unknown, repeated or out of range.', ['bad_request']);

export const NO_IDENTITY = failure(
  'The caller has no ACS identity mapped (or the mapped identity no longer exists and the mapping was removed).',
  ['identity_not_found'],
);

/** Why a mapping is refused, in the words of every operation that reads one. */
export const UNTRUSTED_TEXT =
  '`mapping_untrusted`: the stored mapping has no valid seal of this service (written or changed outside it, copied from another user, or sealed for another ACS resource or under a retired key); nothing was done with the identity it names. `POST /api/user` replaces it.';

export const UNTRUSTED = failure(UNTRUSTED_TEXT, ['mapping_untrusted']);

export const UNTRUSTED_OR_NOT_OWNED = failure(
  `\`identity_not_owned\`: the mapped ACS identity belongs to another Communication Services resource. ${UNTRUSTED_TEXT}`,
  ['identity_not_owned', 'mapping_untrusted'],
);
