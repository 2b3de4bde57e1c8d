import { createHash } from 'node:crypto';

import { InteractionRequiredAuthError, ServerError, type AuthenticationResult, type ConfidentialClientApplication } from '@azure/msal-node';
import { LRUCache } from 'lru-cache';

import { AppError, InteractionRequiredError, InvalidTokenError, ThrottledError, UpstreamError } from '../../errors/app-errors';
import type { GraphTokenSource } from '../../services/ports';
import { fromTransportFailure } from '../upstream-errors';

/**
 * Graph access tokens through the process's one ConfidentialClientApplication: On-Behalf-Of for a
 * user, client credentials for the app itself.
 *
 * On-Behalf-Of results are cached here, per assertion, in a bounded LRU, instead of in msal's own
 * cache: msal's in-memory cache keeps every user's tokens forever and scans all of them on each
 * lookup and save, so with tens of thousands of users it grew without limit and took over half the
 * CPU (measured with `npm run bench`). msal is asked to skip its cache and is emptied after each
 * network call; its authority metadata survives that.
 */
export interface GraphTokenSourceOptions {
  readonly clientId: string;
  readonly oboScopes: readonly string[];
  readonly appScope: string;
  /** Deadline for one token acquisition. */
  readonly timeoutMs: number;
  /** On-Behalf-Of results kept (one per user token); 0 turns the cache off. */
  readonly cacheMaxEntries: number;
}

/** A cached Graph token is not handed out in its last minutes: the request using it must still finish. */
const EXPIRY_MARGIN_MS = 5 * 60 * 1000;

/**
 * After one 429 or 5xx, msal-node refuses every call with the same client, authority and scopes for
 * `Retry-After` (60 s when absent) without sending anything, and the error it throws then carries
 * no status. Remember the window so those refusals can be told apart and answered as throttling.
 */
const MSAL_DEFAULT_THROTTLE_SECONDS = 60;

function withDeadline<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`no answer within ${timeoutMs} ms`);
      error.name = 'TimeoutError';
      reject(error);
    }, timeoutMs);
    timer.unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export function createGraphTokenSource(msal: ConfidentialClientApplication, options: GraphTokenSourceOptions): GraphTokenSource {
  const throttle: ThrottleWindow = { until: 0 };
  const cache = options.cacheMaxEntries > 0 ? new LRUCache<string, string>({ max: options.cacheMaxEntries }) : undefined;
  const acquire = <T>(work: () => Promise<T | null>): Promise<T> => acquireWithin(work, options, throttle);

  return {
    async forUser(assertion) {
      const key = createHash('sha256').update(assertion).digest('base64url');
      const cached = cache?.get(key);
      if (cached !== undefined) return cached;
      refuseWhileThrottled(throttle);
      const result = await acquire(() =>
        msal.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [...options.oboScopes], skipCache: true }),
      );
      msal.clearCache();
      const accessToken = nonEmptyAccessToken(result);
      const ttl = (result.expiresOn?.getTime() ?? 0) - Date.now() - EXPIRY_MARGIN_MS;
      if (cache && ttl > 0) cache.set(key, accessToken, { ttl });
      return accessToken;
    },
    async forApp() {
      refuseWhileThrottled(throttle);
      return nonEmptyAccessToken(await acquire(() => msal.acquireTokenByClientCredential({ scopes: [options.appScope] })));
    },
  };
}

/**
 * Until when Entra ID token requests are paused after a throttling answer. msal forgets its own
 * pause when its cache is emptied (after every On-Behalf-Of call), so the pause is kept here.
 */
interface ThrottleWindow {
  until: number;
}

function refuseWhileThrottled(throttle: ThrottleWindow): void {
  const remainingMs = throttle.until - Date.now();
  if (remainingMs > 0) {
    throw new ThrottledError(
      'upstream_throttled',
      'Microsoft Entra ID token requests are paused after a throttling answer',
      remainingMs / 1000,
    );
  }
}

/** Run one msal acquisition within the deadline, with its failures as the project's AppErrors. */
async function acquireWithin<T>(
  work: () => Promise<T | null>,
  options: Pick<GraphTokenSourceOptions, 'timeoutMs' | 'clientId'>,
  throttle: ThrottleWindow,
): Promise<T> {
  let result: T | null;
  try {
    result = await withDeadline(work(), options.timeoutMs);
  } catch (error) {
    throw translate(error, options.clientId, throttle);
  }
  if (result === null) throw new UpstreamError('entra', 'error', 'returned no token');
  return result;
}

function nonEmptyAccessToken(result: AuthenticationResult): string {
  if (!result.accessToken) throw new UpstreamError('entra', 'error', 'returned an empty access token');
  return result.accessToken;
}

function translate(error: unknown, clientId: string, throttle: ThrottleWindow): Error {
  if (error instanceof AppError) return error;
  if (error instanceof InteractionRequiredAuthError) {
    return new InteractionRequiredError(
      'Microsoft Entra ID needs the user to sign in again (consent, MFA or another conditional access policy) before Graph can be reached on their behalf.',
      error.claims ?? '',
      { cause: error, clientId },
    );
  }
  if (error instanceof ServerError) return translateServerError(error, throttle);
  // What is left is msal's network_error / endpoints_resolution_error or our own deadline.
  return fromTransportFailure('entra', error);
}

function translateServerError(error: ServerError, throttle: ThrottleWindow): Error {
  // msal-node 7 leaves ServerError.status unset: tell throttling and outages apart by error code.
  // Entra answers 429/503 with temporarily_unavailable and 500 with server_error; while msal
  // replays its own throttle it throws the remembered AADSTS numbers (e.g. "90055") as the code.
  const code = error.errorCode;
  const replayedThrottle = /^\d+( \d+)*$/.test(code);
  if (code === 'temporarily_unavailable' || code === 'server_error' || replayedThrottle) {
    if (!replayedThrottle || throttle.until < Date.now()) throttle.until = Date.now() + MSAL_DEFAULT_THROTTLE_SECONDS * 1000;
    return new ThrottledError(
      'upstream_throttled',
      `Microsoft Entra ID is unavailable or throttling (${code})`,
      (throttle.until - Date.now()) / 1000,
      {
        cause: error,
      },
    );
  }
  if (error.errorCode === 'invalid_grant') {
    // The caller's token passed our checks but Entra would not redeem it (expired in between,
    // revoked session): the client must get a new token.
    return new InvalidTokenError('Microsoft Entra ID refused to exchange the access token on behalf of the user.', { cause: error });
  }
  return new UpstreamError(
    'entra',
    'error',
    `refused the token request (${error.errorCode}); check ENTRA_CLIENT_ID, the credential (ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERTIFICATE_PATH) and the app's Graph permissions`,
    { cause: error },
  );
}
