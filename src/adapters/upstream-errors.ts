import { ThrottledError, UpstreamError, type Upstream } from '../errors/app-errors';

/**
 * Shared translation of transport-level and throttling failures, the part every upstream has in
 * common. Each adapter handles its service's own error codes first and falls back to this.
 */

/** Seconds from a `Retry-After` header (delta-seconds, possibly fractional, or an HTTP date). */
export function retryAfterSeconds(value: string | null | undefined, fallback: number): number {
  if (value === null || value === undefined || value.trim() === '') return fallback;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(value);
  if (Number.isFinite(date)) return Math.max(0, (date - Date.now()) / 1000);
  return fallback;
}

const TIMEOUT_NAMES = new Set(['TimeoutError', 'AbortError']);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** True when an error (or one of its causes) is a timeout or an abort by our own deadline. */
export function isTimeout(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 5; depth += 1) {
    const { name, code } = current as { name?: unknown; code?: unknown };
    if (typeof name === 'string' && TIMEOUT_NAMES.has(name)) return true;
    if (typeof code === 'string' && (TIMEOUT_CODES.has(code) || TIMEOUT_NAMES.has(code))) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Map an upstream HTTP status that the adapter had no specific meaning for. */
export function fromUpstreamStatus(upstream: Upstream, status: number, retryAfter: string | null | undefined, cause: unknown): Error {
  if (status === 429) {
    return new ThrottledError('upstream_throttled', `${upstream} is throttling requests`, retryAfterSeconds(retryAfter, 10), { cause });
  }
  if (status === 503) return new UpstreamError(upstream, 'unavailable', `answered ${status}`, { cause });
  if (status === 504 || status === 408) return new UpstreamError(upstream, 'timeout', `answered ${status}`, { cause });
  return new UpstreamError(upstream, 'error', `answered ${status}`, { cause });
}

/** Map a failure that produced no HTTP answer (connection refused, reset, DNS, our own deadline). */
export function fromTransportFailure(upstream: Upstream, cause: unknown): UpstreamError {
  if (isTimeout(cause)) return new UpstreamError(upstream, 'timeout', 'did not answer in time', { cause });
  return new UpstreamError(upstream, 'unavailable', 'could not be reached', { cause });
}

/** @azure/identity's failures to get a token (no managed identity, a refused or unusable credential). */
const CREDENTIAL_FAILURES = new Set([
  'CredentialUnavailableError',
  'AuthenticationError',
  'AggregateAuthenticationError',
  'AuthenticationRequiredError',
]);

/**
 * The service's own credential (DefaultAzureCredential: the managed identity in Azure) could not get a
 * token, so the upstream was never asked: a deployment problem, answered 502 like the upstream refusing
 * the credential, not a 503 that invites retries which cannot succeed. Undefined for any other error.
 */
export function fromCredentialFailure(upstream: Upstream, error: unknown, hint: string): UpstreamError | undefined {
  if (!(error instanceof Error) || !CREDENTIAL_FAILURES.has(error.name)) return undefined;
  return new UpstreamError(upstream, 'error', `the service could not get a token for it (${error.name}); ${hint}`, { cause: error });
}
