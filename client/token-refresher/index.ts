/**
 * The `tokenRefresher` of `@azure/communication-common`'s `AzureCommunicationTokenCredential`, for this service:
 * it gets the signed-in user's Entra ID access token from the app (an MSAL `acquireTokenSilent` wrapper, or
 * any async function), calls `POST /api/token` (get or create the user's ACS identity, then issue a token)
 * and hands back the ACS token.
 *
 * It runs unchanged in browsers and in Node (20 or later): it uses only `fetch`, `AbortController`,
 * `setTimeout`, `atob` and `TextDecoder`, imports nothing and has no dependencies, so an app can copy this
 * one file. What it adds to a bare `fetch`:
 * - one request at a time: concurrent callers (a chat and a calling credential, say) share it;
 * - each caller's `abortSignal` rejects that caller only; the request stops when every caller gave up;
 * - 429 and 503 are retried after their `Retry-After`, within `maxRetries` and `maxRetryWaitMs`; a longer
 *   wait fails at once, carrying `retryAfterSeconds`. A network failure is retried the same way (the
 *   service's get-or-create makes repeating the POST safe); every other answer is final;
 * - Entra ID's claims challenge (401 `interaction_required`) comes back as a {@link ClaimsChallengeError}
 *   with the decoded `claims`, for MSAL's interactive call, and the next refresh hands those claims to
 *   `getEntraToken` so a silent MSAL call skips the token it has cached;
 * - it never resolves with a token that expires within `minValidityMs`.
 * No token, Entra ID's or ACS's, appears in an error, and nothing is logged.
 */

/** What `AzureCommunicationTokenCredential` passes (`@azure/abort-controller`'s `AbortSignalLike`); a DOM `AbortSignal` is one. */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { readonly once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** What the refresher asks of the app for each request to the service. */
export interface EntraTokenRequest {
  /**
   * The claims challenge of the service's last 401 `interaction_required` (a JSON string), until a token is
   * issued again: pass it as MSAL's `claims`, so that `acquireTokenSilent` asks Entra ID for a new token
   * instead of returning the cached one the service refused.
   */
  readonly claims?: string;
  /** Aborted when every caller of this refresh gave up. */
  readonly signal: AbortSignal;
}

/** The part of the Fetch API the refresher uses: the global `fetch` is one. */
export type FetchLike = (
  url: string,
  init: { readonly method: 'POST'; readonly headers: Record<string, string>; readonly signal: AbortSignal },
) => Promise<FetchResponseLike>;

export interface FetchResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** What the service said about a token it issued, without the token itself. */
export interface IssuedAcsToken {
  readonly communicationUserId: string;
  readonly expiresOn: Date;
}

export interface AcsTokenRefresherOptions {
  /** The service's base URL, e.g. `https://contoso-acs-auth.azurewebsites.net` (a path prefix is kept). */
  readonly serviceUrl: string;
  /** An Entra ID access token for the service's API (scope `api://<api-client-id>/access_as_user`). */
  readonly getEntraToken: (request: EntraTokenRequest) => Promise<string>;
  /** ACS token scopes (query `scopes`); the service's configured scopes when absent. */
  readonly scopes?: readonly string[];
  /** Token lifetime, a whole number of minutes from 60 to 1440 (query `expiresInMinutes`); the service's default when absent. */
  readonly expiresInMinutes?: number;
  /** The global `fetch` by default. */
  readonly fetch?: FetchLike;
  /** Retries after a 429, a 503 or a network failure (default 3). */
  readonly maxRetries?: number;
  /** The longest wait before a retry (default 30 s): a longer `Retry-After` fails at once. */
  readonly maxRetryWaitMs?: number;
  /** A token must stay valid at least this long to be handed out (default 60 s); one closer to expiry is fetched again, once. */
  readonly minValidityMs?: number;
  /** Told about every token handed out (for the app's own user id); an exception thrown here fails the refresh. */
  readonly onIssued?: (issued: IssuedAcsToken) => void;
}

/** The function `new AzureCommunicationTokenCredential({ tokenRefresher, refreshProactively: true })` takes. */
export type AcsTokenRefresher = (abortSignal?: AbortSignalLike) => Promise<string>;

/**
 * The service refused (`status` and `code` as in its `{ code, message }` body), could not be reached
 * (`status` 0, `code` `network_error`), or answered with a token the refresher cannot use (`status` 201,
 * `code` `invalid_response` or `token_expires_too_soon`).
 */
export class AcsTokenServiceError extends Error {
  readonly status: number;
  readonly code: string;
  /** The service's request id (body `requestId` or header `x-request-id`), for its logs. */
  readonly requestId: string | undefined;
  /** From `Retry-After`, on 429 and 503. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    details: { readonly requestId?: string; readonly retryAfterSeconds?: number; readonly cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    // Set by hand: a minifier renames classes in browser bundles.
    this.name = 'AcsTokenServiceError';
    this.status = status;
    this.code = code;
    this.requestId = details.requestId;
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

/**
 * 401 `interaction_required`: Entra ID needs the user to sign in again (MFA, consent, conditional access)
 * before the service can act for them. Run MSAL's `acquireTokenPopup` or `acquireTokenRedirect` with
 * `{ claims }`, then get a token again. `claims` (a JSON string) is absent when the challenge carries none
 * (missing consent): then the interactive call needs no claims.
 */
export class ClaimsChallengeError extends AcsTokenServiceError {
  readonly claims: string | undefined;

  constructor(message: string, claims: string | undefined, requestId: string | undefined) {
    super(401, 'interaction_required', message, requestId === undefined ? {} : { requestId });
    this.name = 'ClaimsChallengeError';
    this.claims = claims;
  }
}

interface Settings {
  readonly url: string;
  readonly getEntraToken: (request: EntraTokenRequest) => Promise<string>;
  readonly fetch: FetchLike;
  readonly maxRetries: number;
  readonly maxRetryWaitMs: number;
  readonly minValidityMs: number;
  readonly onIssued: ((issued: IssuedAcsToken) => void) | undefined;
}

/** What a refresher remembers between refreshes: the claims of the last challenge, until the service issues a token again. */
interface Memory {
  pendingClaims: string | undefined;
}

/** One request to the service (with its retries), and the callers waiting for it. */
interface Flight {
  readonly token: Promise<string>;
  readonly controller: AbortController;
  waiters: number;
}

/** Returns the `tokenRefresher` for `AzureCommunicationTokenCredential`. Throws `TypeError` on bad options. */
export function createAcsTokenRefresher(options: AcsTokenRefresherOptions): AcsTokenRefresher {
  const settings = settingsOf(options);
  const memory: Memory = { pendingClaims: undefined };
  let current: Flight | undefined;

  const start = (): Flight => {
    const controller = new AbortController();
    const flight: Flight = { token: refresh(settings, memory, controller.signal), controller, waiters: 0 };
    const forget = (): void => {
      if (current === flight) current = undefined;
    };
    // Also handles the rejection of a flight every caller has left.
    flight.token.then(forget, forget);
    return flight;
  };

  const leave = (flight: Flight): void => {
    flight.waiters -= 1;
    if (flight.waiters > 0) return;
    if (current === flight) current = undefined;
    flight.controller.abort();
  };

  return (abortSignal) => {
    if (abortSignal?.aborted) return Promise.reject(abortError());
    const flight = (current ??= start());
    flight.waiters += 1;
    if (abortSignal === undefined) return flight.token;
    return new Promise<string>((resolve, reject) => {
      const onAbort = (): void => {
        leave(flight);
        reject(abortError());
      };
      abortSignal.addEventListener('abort', onAbort, { once: true });
      flight.token.finally(() => abortSignal.removeEventListener('abort', onAbort)).then(resolve, reject);
    });
  };
}

function settingsOf(options: AcsTokenRefresherOptions): Settings {
  let base: URL;
  try {
    base = new URL(options.serviceUrl);
  } catch {
    throw new TypeError('serviceUrl must be an absolute http or https URL');
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new TypeError('serviceUrl must be an absolute http or https URL');
  if (typeof options.getEntraToken !== 'function') throw new TypeError('getEntraToken must be a function');
  const query = new URLSearchParams();
  if (options.scopes !== undefined) {
    if (options.scopes.length === 0 || options.scopes.some((scope) => !/^[A-Za-z.]+$/.test(scope))) {
      throw new TypeError("scopes must be a non-empty list of ACS token scopes, such as ['chat', 'voip']");
    }
    query.set('scopes', options.scopes.join(','));
  }
  if (options.expiresInMinutes !== undefined) {
    const minutes = options.expiresInMinutes;
    if (!Number.isInteger(minutes) || minutes < 60 || minutes > 1440)
      throw new TypeError('expiresInMinutes must be a whole number from 60 to 1440');
    query.set('expiresInMinutes', String(minutes));
  }
  const search = query.toString();
  const fetchFn: FetchLike = options.fetch ?? ((url, init) => globalThis.fetch(url, init));
  return {
    url: `${base.origin}${base.pathname.replace(/\/+$/, '')}/api/token${search === '' ? '' : `?${search}`}`,
    getEntraToken: options.getEntraToken,
    fetch: fetchFn,
    maxRetries: wholeNumber('maxRetries', options.maxRetries, 3),
    maxRetryWaitMs: wholeNumber('maxRetryWaitMs', options.maxRetryWaitMs, 30_000),
    minValidityMs: wholeNumber('minValidityMs', options.minValidityMs, 60_000),
    onIssued: options.onIssued,
  };
}

function wholeNumber(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`${name} must be a whole number, 0 or more`);
  return value;
}

/** A token that stays valid for at least `minValidityMs`: one more request when the first is too close to expiry. */
async function refresh(settings: Settings, memory: Memory, signal: AbortSignal): Promise<string> {
  for (let requests = 1; ; requests += 1) {
    const issued = await requestWithRetries(settings, memory, signal);
    if (issued.expiresOn.getTime() - Date.now() >= settings.minValidityMs) {
      settings.onIssued?.({ communicationUserId: issued.communicationUserId, expiresOn: issued.expiresOn });
      return issued.token;
    }
    if (requests === 2) {
      throw new AcsTokenServiceError(
        201,
        'token_expires_too_soon',
        `The token service issued a token valid until ${issued.expiresOn.toISOString()}, less than ${settings.minValidityMs} ms from now (check this device's clock).`,
        issued.requestId === undefined ? {} : { requestId: issued.requestId },
      );
    }
  }
}

async function requestWithRetries(settings: Settings, memory: Memory, signal: AbortSignal): Promise<IssuedAcsToken & Answered> {
  for (let retry = 0; ; retry += 1) {
    try {
      return await requestToken(settings, memory, signal);
    } catch (error) {
      const waitMs = retry < settings.maxRetries && !signal.aborted ? retryDelayMs(error, retry, settings.maxRetryWaitMs) : undefined;
      if (waitMs === undefined) throw error;
      await sleep(waitMs, signal);
    }
  }
}

/** How long to wait before retrying after `error`, or undefined when it must not be retried. */
function retryDelayMs(error: unknown, retry: number, maxWaitMs: number): number | undefined {
  if (!(error instanceof AcsTokenServiceError)) return undefined;
  if (error.status !== 0 && error.status !== 429 && error.status !== 503) return undefined;
  if (error.retryAfterSeconds !== undefined) {
    const waitMs = error.retryAfterSeconds * 1000;
    return waitMs <= maxWaitMs ? waitMs : undefined;
  }
  // No Retry-After (a network failure, a 503 from a proxy): 1 s, 2 s, 4 s…
  return Math.min(1000 * 2 ** retry, maxWaitMs);
}

interface Answered {
  readonly token: string;
  readonly requestId: string | undefined;
}

/** One `POST /api/token` with a fresh Entra ID token. */
async function requestToken(settings: Settings, memory: Memory, signal: AbortSignal): Promise<IssuedAcsToken & Answered> {
  if (signal.aborted) throw abortError();
  const claims = memory.pendingClaims;
  const entraToken = await settings.getEntraToken(claims === undefined ? { signal } : { claims, signal });
  let status: number;
  let headers: FetchResponseLike['headers'];
  let text: string;
  try {
    const response = await settings.fetch(settings.url, {
      method: 'POST',
      headers: { Authorization: `Bearer ${entraToken}`, Accept: 'application/json' },
      signal,
    });
    ({ status, headers } = response);
    text = await response.text();
  } catch (cause) {
    if (signal.aborted) throw cause;
    throw new AcsTokenServiceError(0, 'network_error', 'The token service could not be reached.', { cause });
  }
  const body = parseJson(text);
  const requestId = stringField(body, 'requestId') ?? headers.get('x-request-id') ?? undefined;
  if (status !== 200 && status !== 201) {
    const error = refusal(status, headers, body, requestId);
    if (error instanceof ClaimsChallengeError && error.claims !== undefined) memory.pendingClaims = error.claims;
    throw error;
  }
  memory.pendingClaims = undefined;
  return issuedToken(body, requestId);
}

function issuedToken(body: unknown, requestId: string | undefined): IssuedAcsToken & Answered {
  const token = stringField(body, 'token');
  const expiresOn = parseInstant(stringField(body, 'expiresOn'));
  const user = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['user'] : undefined;
  const communicationUserId = stringField(user, 'communicationUserId');
  if (token === undefined || token === '' || expiresOn === undefined || communicationUserId === undefined) {
    // Says which field, never what the body held: it may hold a token.
    const missing = token === undefined || token === '' ? 'token' : expiresOn === undefined ? 'expiresOn' : 'user.communicationUserId';
    throw new AcsTokenServiceError(
      201,
      'invalid_response',
      `The token service's answer has no valid '${missing}'.`,
      requestId === undefined ? {} : { requestId },
    );
  }
  return { token, expiresOn: new Date(expiresOn), communicationUserId, requestId };
}

/** The error for a non-success answer: the service's `{ code, message }`, or a generic one (a proxy's HTML page). */
function refusal(
  status: number,
  headers: FetchResponseLike['headers'],
  body: unknown,
  requestId: string | undefined,
): AcsTokenServiceError {
  const code = stringField(body, 'code') ?? `http_${status}`;
  const message = stringField(body, 'message') ?? `The token service answered ${status}.`;
  if (status === 401) {
    const challenge = authParams(headers.get('www-authenticate') ?? '');
    if (code === 'interaction_required' || challenge['error'] === 'insufficient_claims') {
      return new ClaimsChallengeError(message, decodeBase64Utf8(challenge['claims']), requestId);
    }
  }
  const retryAfterSeconds = status === 429 || status === 503 ? parseRetryAfter(headers.get('retry-after')) : undefined;
  return new AcsTokenServiceError(status, code, message, {
    ...(requestId === undefined ? {} : { requestId }),
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
}

/** The quoted parameters of a `WWW-Authenticate` challenge (the service never puts a quote inside a value). */
function authParams(challenge: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const match of challenge.matchAll(/([A-Za-z_][\w-]*)\s*=\s*"([^"]*)"/g)) {
    const [, name, value] = match;
    if (name !== undefined && value !== undefined) params[name.toLowerCase()] = value;
  }
  return params;
}

function decodeBase64Utf8(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  try {
    const bytes = Uint8Array.from(atob(value), (char) => char.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** `Retry-After` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text));
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/**
 * An ISO 8601 instant with any number of fractional digits (ACS writes seven: `…:39.3240000+00:00`), which
 * `Date.parse` is only required to accept with three.
 */
function parseInstant(text: string | undefined): number | undefined {
  const match = text === undefined ? null : /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(text);
  if (match === null) return undefined;
  const [, seconds, fraction = '', zone = 'Z'] = match;
  const epochMs = Date.parse(`${seconds}.${fraction.padEnd(3, '0').slice(0, 3)}${zone.toUpperCase()}`);
  return Number.isNaN(epochMs) ? undefined : epochMs;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function stringField(value: unknown, name: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const field = (value as Record<string, unknown>)[name];
  return typeof field === 'string' ? field : undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Named `AbortError`, which is what the Azure SDKs and `fetch` callers test for. */
function abortError(): Error {
  const error = new Error('The ACS token refresh was aborted.');
  error.name = 'AbortError';
  return error;
}
