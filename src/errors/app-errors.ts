/**
 * The service's error model: every failure the API reports is one of these, with a stable `code`
 * clients can match on, the HTTP `status` it maps to, and whether its message may be shown to the
 * caller (`expose`, true below 500). SDK errors are translated into these at the adapter boundary;
 * routes and services never see MSAL, Graph or ACS error types.
 */
export type ErrorCode =
  | 'bad_request'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'client_app_not_allowed'
  | 'forbidden'
  | 'interaction_required'
  | 'not_found'
  | 'identity_not_found'
  | 'identity_not_owned'
  | 'mapping_untrusted'
  | 'mapping_changed'
  | 'mapping_limit_reached'
  | 'invalid_teams_token'
  | 'method_not_allowed'
  | 'uri_too_long'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'too_many_requests'
  | 'upstream_throttled'
  | 'upstream_unavailable'
  | 'upstream_error'
  | 'upstream_timeout'
  | 'internal_error';

export interface AppErrorOptions {
  readonly cause?: unknown;
  /** Headers the response must carry (`WWW-Authenticate`, `Retry-After`). */
  readonly headers?: Readonly<Record<string, string>>;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly expose: boolean;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, status: number, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.expose = status < 500;
    this.headers = options.headers ?? {};
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, options?: AppErrorOptions) {
    super('bad_request', 400, message, options);
  }
}

function quoted(value: string): string {
  return value.replace(/["\\]/g, '');
}

/** 401 with an RFC 6750 challenge: the bearer token is missing or does not pass validation. */
export class InvalidTokenError extends AppError {
  constructor(message: string, options: { readonly cause?: unknown; readonly missing?: boolean } = {}) {
    // RFC 6750 §3.1: a request that carried no token gets a bare challenge, without an error code.
    const challenge = options.missing ? 'Bearer' : `Bearer error="invalid_token", error_description="${quoted(message)}"`;
    super('invalid_token', 401, message, { cause: options.cause, headers: { 'WWW-Authenticate': challenge } });
  }
}

/** 403: the token is valid but lacks the delegated scope this API requires. */
export class InsufficientScopeError extends AppError {
  constructor(scope: string) {
    const message = `The access token does not carry the required scope '${scope}'.`;
    super('insufficient_scope', 403, message, {
      headers: {
        'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${quoted(scope)}", error_description="${quoted(message)}"`,
      },
    });
  }
}

/**
 * 403: the token is valid, but the client application that obtained it (`appid`/`azp`) is not on
 * ENTRA_ALLOWED_CLIENT_APP_IDS. No bearer challenge: a new token from the same app would not help.
 */
export class ClientAppNotAllowedError extends AppError {
  constructor(clientAppId: string) {
    super('client_app_not_allowed', 403, `The client application '${clientAppId}' is not allowed to call this API.`);
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super('forbidden', 403, message);
  }
}

/**
 * 401 carrying Entra ID's claims challenge (conditional access, MFA, missing consent), in the shape
 * Microsoft Identity Web uses, so the client can run an interactive sign-in and call again.
 */
export class InteractionRequiredError extends AppError {
  readonly claims: string;

  constructor(message: string, claims: string, options: { readonly cause?: unknown; readonly clientId: string }) {
    const parts = [
      'Bearer realm=""',
      `client_id="${quoted(options.clientId)}"`,
      'error="insufficient_claims"',
      `error_description="${quoted(message)}"`,
    ];
    if (claims !== '') parts.push(`claims="${Buffer.from(claims, 'utf8').toString('base64')}"`);
    super('interaction_required', 401, message, { cause: options.cause, headers: { 'WWW-Authenticate': parts.join(', ') } });
    this.claims = claims;
  }
}

export class NotFoundError extends AppError {
  constructor(message: string) {
    super('not_found', 404, message);
  }
}

/** 404: the caller has no ACS identity mapped (or its mapping pointed to an identity that is gone). */
export class IdentityNotFoundError extends AppError {
  constructor(message = 'No Communication Services identity is mapped to this user. Create one with POST /api/user.') {
    super('identity_not_found', 404, message);
  }
}

/** 409: the mapped identity belongs to another ACS resource (the deployment switched resources). */
export class IdentityNotOwnedError extends AppError {
  constructor(options: AppErrorOptions = {}) {
    super(
      'identity_not_owned',
      409,
      'The mapped Communication Services identity belongs to another Communication Services resource.',
      options,
    );
  }
}

/**
 * 409: the user's stored mapping does not carry a valid seal of this service (written by someone
 * else, changed, copied from another user, or sealed for another ACS resource or under a retired
 * key), so it is used for nothing. The reason goes to the log only.
 */
export class MappingUntrustedError extends AppError {
  /** @param message for an admin, who may be told more than the user (admin erasure). */
  constructor(message?: string) {
    super(
      'mapping_untrusted',
      409,
      message ??
        'The identity mapping stored on this user was not written by this service or has been changed, so it is not used. ' +
          'POST /api/user replaces it with a new Communication Services identity.',
    );
  }
}

/**
 * 409: the user's mapping changed under the request. While it was being deleted (another mapping was
 * written after the identity was deleted): the identity is gone, but the user still has a mapping, and
 * calling again deletes it. While it was being created: other requests kept creating and deleting it.
 */
export class MappingChangedError extends AppError {
  /**
   * @param identityDeleted the old mapping's identity was deleted (false when the old mapping was untrusted, whose identity is never touched).
   * @param during what the request was doing.
   */
  constructor(identityDeleted: boolean, during: 'delete' | 'create' = 'delete') {
    super(
      'mapping_changed',
      409,
      during === 'create'
        ? "The user's identity mapping kept changing while it was being created (other requests created and deleted it). Try again."
        : identityDeleted
          ? "The user's identity mapping changed while it was being deleted; the identity it named is deleted. Call again to delete the new one."
          : "The user's identity mapping changed while it was being removed; nothing was deleted. Call again to delete the new one.",
    );
  }
}

/** 409: Graph refuses a third open extension from this app on the user. */
export class MappingLimitReachedError extends AppError {
  constructor(options: AppErrorOptions = {}) {
    super(
      'mapping_limit_reached',
      409,
      'The user already has the maximum number of open extensions this application may create (2).',
      options,
    );
  }
}

export class InvalidTeamsTokenError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('invalid_teams_token', 400, message, options);
  }
}

/** 429 (this service's own limit) or 503 (an upstream keeps throttling), always with `Retry-After`. */
export class ThrottledError extends AppError {
  readonly retryAfterSeconds: number;

  constructor(code: 'too_many_requests' | 'upstream_throttled', message: string, retryAfterSeconds: number, options: AppErrorOptions = {}) {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super(code, code === 'too_many_requests' ? 429 : 503, message, {
      ...options,
      headers: { ...options.headers, 'Retry-After': String(seconds) },
    });
    this.retryAfterSeconds = seconds;
  }
}

export type Upstream = 'entra' | 'graph' | 'acs' | 'storage';

const UPSTREAM_NAMES: Readonly<Record<Upstream, string>> = {
  entra: 'Microsoft Entra ID',
  graph: 'Microsoft Graph',
  acs: 'Azure Communication Services',
  storage: 'Azure Table Storage',
};

/** 502, 503 or 504: an upstream failed, is unavailable, or did not answer in time. */
export class UpstreamError extends AppError {
  readonly upstream: Upstream;

  constructor(upstream: Upstream, kind: 'error' | 'unavailable' | 'timeout', detail: string, options: AppErrorOptions = {}) {
    const code = kind === 'timeout' ? 'upstream_timeout' : kind === 'unavailable' ? 'upstream_unavailable' : 'upstream_error';
    const status = kind === 'timeout' ? 504 : kind === 'unavailable' ? 503 : 502;
    super(code, status, `${UPSTREAM_NAMES[upstream]}: ${detail}`, options);
    this.upstream = upstream;
  }
}

/** Public message for 5xx responses: the detail goes to the log, never to the caller. */
export function publicMessage(error: AppError): string {
  if (error.expose) return error.message;
  switch (error.code) {
    case 'upstream_timeout':
      return 'An upstream service did not answer in time. Try again later.';
    case 'upstream_unavailable':
    case 'upstream_throttled':
      return 'An upstream service is unavailable or throttling. Try again later.';
    case 'upstream_error':
      return 'An upstream service failed to complete the request.';
    default:
      return 'The server failed to complete the request.';
  }
}

/**
 * The mapping store refused a mapping because the ACS identity is already mapped to another user (the
 * table store's identity row). The service only maps identities it has just made, so for a caller this is
 * a store failure (502); the copy command reports it as its own outcome.
 */
export class IdentityMappedElsewhereError extends UpstreamError {
  constructor(options: AppErrorOptions = {}) {
    super('storage', 'error', 'refused the mapping: the ACS identity is already mapped to another user', options);
  }
}
