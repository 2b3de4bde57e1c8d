import type { Response } from 'express';
import type { ErrorEnvelopeInput } from '../kit/faults';

/**
 * The ACS error envelope (`CommunicationErrorResponse`, common.json 2022-07-13) and the error
 * strings the emulator answers with. Strings seen on the live service are marked as such; the rest
 * are plausible choices where no source was found (listed in docs/local-development.md).
 */
export interface CommunicationError {
  readonly code: string;
  readonly message: string;
  readonly target?: string;
  readonly details?: readonly CommunicationError[];
  readonly innererror?: CommunicationError;
}

export interface CommunicationErrorResponse {
  readonly error: CommunicationError;
}

/** An error the emulator answers with: HTTP status plus the envelope's fields. */
export interface AcsErrorSpec {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly target?: string;
}

export const ACS_ERRORS = Object.freeze({
  /** Bad key or signature, missing auth headers: recorded live (azure-sdk-for-js#22312). */
  denied: { status: 401, code: 'Denied', message: 'Denied by the resource provider.' },
  /** Clock skew: the message comes from third-party code only; the code is our choice (unconfirmed). */
  clockSkew: {
    status: 401,
    code: 'Denied',
    message: 'The time difference between the originating client and the server is greater than the allowed margin of 5 minutes.',
  },
  /** Recorded live. */
  identityNotOwned: { status: 401, code: 'IdentityNotOwned', message: "Provided identity doesn't belong to the resource." },
  /** Message seen live; status and code unconfirmed (404 `IdentityNotFound` is our choice). */
  identityNotFound: { status: 404, code: 'IdentityNotFound', message: "Provided identity doesn't exist." },
  /** Unconfirmed: the live wording for a malformed id was not found. */
  invalidIdentity: { status: 400, code: 'InvalidIdentity', message: 'Provided identity is not valid.', target: 'id' },
  /** Recorded live (issue token with `scopes: []`). */
  scopesRequired: { status: 400, code: 'ValidationError', message: 'Invalid scopes - Scopes field is required.', target: 'scopes' },
  /** Recorded live. */
  invalidAccessToken: { status: 401, code: 'InvalidAccessToken', message: 'Provided access token is not valid.' },
  /** Unconfirmed wording for a body that is not JSON. */
  malformedBody: { status: 400, code: 'ValidationError', message: 'The request body is not valid JSON.' },
  /** Unconfirmed: the spec only says the operations consume application/json. */
  unsupportedMediaType: {
    status: 415,
    code: 'UnsupportedMediaType',
    message: 'The request content type is not supported; use application/json.',
  },
  /** Unconfirmed wording. */
  payloadTooLarge: { status: 413, code: 'RequestEntityTooLarge', message: 'The request body is too large.' },
  /** Unconfirmed wording (the limits doc only promises HTTP 429). */
  throttled: { status: 429, code: 'TooManyRequests', message: 'Rate limit exceeded. Try again later.' },
  internal: { status: 500, code: 'InternalServerError', message: 'An internal server error occurred.' },
} satisfies Record<string, AcsErrorSpec>);

const DEFAULT_CODES: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Denied',
  403: 'Forbidden',
  404: 'NotFound',
  408: 'RequestTimeout',
  409: 'Conflict',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
  504: 'GatewayTimeout',
};

/** Render an error in the ACS envelope; used by the emulator kit for faults and unmatched routes. */
export function acsErrorEnvelope(input: ErrorEnvelopeInput): CommunicationErrorResponse {
  const code = input.code ?? DEFAULT_CODES[input.status] ?? (input.status >= 500 ? 'InternalServerError' : 'BadRequest');
  const message = input.message ?? `The request failed with status ${input.status}.`;
  return { error: { code, message } };
}

/**
 * Write an ACS error. Error bodies go out as plain `application/json` (no charset), as the live
 * service sends them; Express's `res.json` would add `; charset=utf-8`.
 */
export function sendAcsError(res: Response, spec: AcsErrorSpec, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent) return;
  const error: CommunicationError =
    spec.target === undefined
      ? { code: spec.code, message: spec.message }
      : { code: spec.code, message: spec.message, target: spec.target };
  const body = Buffer.from(JSON.stringify({ error } satisfies CommunicationErrorResponse), 'utf8');
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.statusCode = spec.status;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', String(body.length));
  res.end(body);
}
