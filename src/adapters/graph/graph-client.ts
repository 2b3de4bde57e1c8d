import {
  AuthenticationHandler,
  AuthenticationHandlerOptions,
  Client,
  GraphClientError,
  RedirectHandler,
  RedirectHandlerOptions,
  RetryHandler,
  RetryHandlerOptions,
  TelemetryHandler,
  type AuthenticationProvider,
  type Context,
  type FetchOptions,
  type GraphRequest,
  type Middleware,
  type MiddlewareOptions,
} from '@microsoft/microsoft-graph-client';
import { Agent } from 'undici';

import { retryAfterSeconds } from '../upstream-errors';

/**
 * The process's one Microsoft Graph client. Only the access token differs between requests (each
 * is a user's On-Behalf-Of token), so the token travels with the request as middleware options
 * instead of living in a per-user client.
 */
export interface GraphClientOptions {
  /** Graph base URL without the version segment; `https://graph.microsoft.com` by default. Must be https. */
  readonly baseUrl?: string;
  /** Extra CA certificate (PEM) to trust for this client only, e.g. the local emulator's CA. */
  readonly ca?: string;
  /** Abort a request (including its retries) after this many milliseconds; no limit by default. */
  readonly timeoutMs?: number;
  /** How often 429/503/504 answers are retried (honouring `Retry-After`); the SDK's 3 by default, at most 10. */
  readonly maxRetries?: number;
  /**
   * Longest `Retry-After` worth waiting for inside one request. A longer one is not retried: the
   * caller gets the throttling answer (and its `Retry-After`) at once instead of a held request.
   */
  readonly maxRetryWaitMs?: number;
}

export interface GraphClient {
  /** The shared SDK client. Prefer {@link GraphClient.api}: a request built on `sdk.api()` directly has no token. */
  readonly sdk: Client;
  /**
   * Start a request that carries `accessToken` (and the configured timeout), e.g.
   * `graph.api('/me', token).select('id').expand('extensions').get()`.
   */
  api(path: string, accessToken: string): GraphRequest;
  /** Close the client's keep-alive connections. */
  close(): Promise<void>;
}

const DEFAULT_BASE_URL = 'https://graph.microsoft.com';
/** Backoff base when Graph sends no Retry-After (the SDK's default is 3 s, too long for a token request). */
const RETRY_BASE_DELAY_SECONDS = 1;

/** Whether a Retry-After (seconds or HTTP date; absent means "use the backoff") fits the wait budget. */
function retryAfterWithin(retryAfter: string | null, maxWaitMs: number | undefined): boolean {
  return maxWaitMs === undefined || retryAfterSeconds(retryAfter, 0) * 1000 <= maxWaitMs;
}

/** An auth provider that hands out one fixed token: a request's own OBO token. */
class StaticTokenProvider implements AuthenticationProvider {
  readonly #token: string;

  constructor(token: string) {
    this.#token = token;
  }

  getAccessToken(): Promise<string> {
    return Promise.resolve(this.#token);
  }
}

/** The chain's fallback provider: a request without its own token must fail, never go out anonymously. */
const refuseWithoutToken: AuthenticationProvider = {
  getAccessToken: () =>
    Promise.reject(new GraphClientError('No access token for this Graph request: build it with graphClient.api(path, accessToken).')),
};

/**
 * The chain's last step, as the SDK's HTTPMessageHandler (global fetch), except that a failed fetch
 * is rethrown as a plain Error named after the cause. The SDK turns only `instanceof Error` into a
 * coded GraphError, and fetch's DOMException/TypeError come from another realm under Jest, so
 * without this a timeout would surface as `code: null` in tests but `TimeoutError` in production.
 */
class FetchHandler implements Middleware {
  async execute(context: Context): Promise<void> {
    // The SDK types `request` as the DOM's RequestInfo, which this Node program (no DOM lib) does not
    // declare; what the SDK puts there is the URL string or a Request, both of which fetch takes.
    const input = context.request as string | Request;
    try {
      context.response = await fetch(input, context.options);
    } catch (cause) {
      const name = typeof cause === 'object' && cause !== null ? (cause as { name?: unknown }).name : undefined;
      const message = typeof cause === 'object' && cause !== null ? (cause as { message?: unknown }).message : undefined;
      const error = new Error(typeof message === 'string' ? message : 'fetch failed', { cause });
      error.name = typeof name === 'string' ? name : 'Error';
      throw error;
    }
  }
}

/**
 * Middleware options that make one request authenticate with `accessToken`. Use them with the
 * shared client when not going through {@link GraphClient.api}:
 * `client.api(path).middlewareOptions(withAccessToken(token))`. They replace the request's whole
 * middleware-options list.
 */
export function withAccessToken(accessToken: string): MiddlewareOptions[] {
  if (typeof accessToken !== 'string' || accessToken === '') throw new TypeError('accessToken must be a non-empty string');
  return [new AuthenticationHandlerOptions(new StaticTokenProvider(accessToken))];
}

function parseBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`graph baseUrl is not a URL: ${raw}`);
  }
  // The SDK attaches tokens only to https URLs, and its host check cannot parse IPv6 literals.
  if (url.protocol !== 'https:') throw new TypeError('graph baseUrl must use https');
  if (url.hostname.startsWith('[')) throw new TypeError('graph baseUrl cannot be an IPv6 literal; use a host name or IPv4 address');
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new TypeError('graph baseUrl must not have a path (the client adds /v1.0)');
  }
  return url;
}

/**
 * Build the Graph client once per process.
 *
 * The middleware chain is the SDK's default (auth → retry → redirect → telemetry → fetch) with the
 * retry count made configurable and fetch failures given a stable `code` (`TimeoutError` when
 * `timeoutMs` expires, `TypeError` for a refused or reset connection; `statusCode` is -1 for both). The base URL's host is always listed in `customHosts`, since the
 * SDK only sends tokens to Graph's own hosts and those. A dedicated undici agent carries the
 * optional CA, so trust never leaks to other HTTP clients.
 */
export function createGraphClient(options: GraphClientOptions = {}): GraphClient {
  const baseUrl = parseBaseUrl(options.baseUrl ?? DEFAULT_BASE_URL);
  const { timeoutMs, maxRetries } = options;
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) {
    throw new TypeError('timeoutMs must be a positive integer');
  }
  if (maxRetries !== undefined && !(Number.isInteger(maxRetries) && maxRetries >= 0 && maxRetries <= 10)) {
    throw new TypeError('maxRetries must be an integer from 0 to 10');
  }

  const agent = new Agent(options.ca === undefined ? {} : { connect: { ca: options.ca } });
  const middleware = [
    new AuthenticationHandler(refuseWithoutToken),
    new RetryHandler(
      new RetryHandlerOptions(RETRY_BASE_DELAY_SECONDS, maxRetries, (_delay, _attempt, _request, _options, response) =>
        retryAfterWithin(response.headers.get('Retry-After'), options.maxRetryWaitMs),
      ),
    ),
    new RedirectHandler(new RedirectHandlerOptions()),
    new TelemetryHandler(),
    new FetchHandler(),
  ];
  // Node's global fetch (what the SDK calls) takes an undici dispatcher. Its types come from Node's
  // bundled undici-types, which differ nominally from the undici 7 package's; the runtime interface matches.
  const fetchOptions = { dispatcher: agent } as unknown as FetchOptions;
  const sdk = Client.initWithMiddleware({
    baseUrl: baseUrl.origin,
    customHosts: new Set([baseUrl.hostname]),
    fetchOptions,
    middleware,
  });

  return {
    sdk,
    api(path, accessToken) {
      const request = sdk.api(path).middlewareOptions(withAccessToken(accessToken));
      // One signal per request, started now: it bounds every attempt and the body read. The SDK's retry
      // sleeps are not abortable, so a request can outlast it by one Retry-After before failing.
      if (timeoutMs !== undefined) request.option('signal', AbortSignal.timeout(timeoutMs));
      return request;
    },
    close: () => agent.close(),
  };
}
