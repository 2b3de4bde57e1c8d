/**
 * Graph's per-app request budget for open extensions and users: 455 requests per 10 seconds per
 * app per tenant (concepts/throttling-limits.md). A sliding log keeps `Retry-After` exact, which is
 * what a well-behaved client must honour.
 */
export type ThrottleDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

export class SlidingWindowThrottle {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #accepted = new Map<string, number[]>();

  constructor(limit: number, windowMs: number, now: () => number = Date.now) {
    if (!Number.isInteger(limit) || limit < 1) throw new TypeError('throttle.limit must be a positive integer');
    if (!Number.isFinite(windowMs) || windowMs <= 0) throw new TypeError('throttle.windowMs must be a positive number');
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Count one request for `key`, or refuse it. Refused requests do not use up budget. */
  take(key: string): ThrottleDecision {
    const now = this.#now();
    const since = now - this.#windowMs;
    const log = (this.#accepted.get(key) ?? []).filter((at) => at > since);
    // The limit is at least 1, so a full log always has an oldest entry.
    const [oldest] = log;
    if (oldest !== undefined && log.length >= this.#limit) {
      this.#accepted.set(key, log);
      // Graph sends fractional seconds (e.g. "2.128"); never 0, so a client cannot retry into the same window.
      const retryAfterSeconds = Math.max(0.001, Math.ceil(oldest + this.#windowMs - now) / 1000);
      return { allowed: false, retryAfterSeconds };
    }
    log.push(now);
    this.#accepted.set(key, log);
    return { allowed: true };
  }

  reset(): void {
    this.#accepted.clear();
  }
}
