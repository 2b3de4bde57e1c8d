/**
 * Per-operation request limits of the ACS Identity service (service-limits doc): a fixed number of
 * requests per 30-second window, HTTP 429 beyond it. Whether the live limits are per resource or per
 * subscription is not documented; the emulator counts per emulator (one resource).
 */
export type AcsOperation =
  | 'identities.create'
  | 'identities.createWithToken'
  | 'identities.delete'
  | 'identities.issueToken'
  | 'identities.revokeTokens'
  | 'teams.exchange';

export interface OperationLimit {
  /** Requests allowed per window. */
  readonly limit: number;
  readonly windowMs: number;
}

export type AcsLimits = Readonly<Record<AcsOperation, OperationLimit>>;

const WINDOW_MS = 30_000;

/** The documented limits (service-limits.md, "Identity"). */
export const DEFAULT_ACS_LIMITS: AcsLimits = Object.freeze({
  'identities.create': { limit: 1000, windowMs: WINDOW_MS },
  'identities.createWithToken': { limit: 1000, windowMs: WINDOW_MS },
  'identities.delete': { limit: 500, windowMs: WINDOW_MS },
  'identities.issueToken': { limit: 1000, windowMs: WINDOW_MS },
  'identities.revokeTokens': { limit: 500, windowMs: WINDOW_MS },
  'teams.exchange': { limit: 500, windowMs: WINDOW_MS },
});

export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

interface Window {
  startedAt: number;
  count: number;
}

/** Counts requests per operation in fixed windows that start with the first request after the previous window. */
export class FixedWindowRateLimiter {
  readonly #limits: AcsLimits;
  readonly #windows = new Map<AcsOperation, Window>();

  constructor(limits: AcsLimits) {
    for (const [operation, { limit, windowMs }] of Object.entries(limits)) {
      if (!Number.isInteger(limit) || limit < 0) throw new TypeError(`limits.${operation}.limit must be a non-negative integer`);
      if (!Number.isFinite(windowMs) || windowMs <= 0) throw new TypeError(`limits.${operation}.windowMs must be positive`);
    }
    this.#limits = limits;
  }

  /** Count one request of `operation`; refused requests count too, as they would against a real quota. */
  take(operation: AcsOperation, now: number = Date.now()): RateDecision {
    const { limit, windowMs } = this.#limits[operation];
    let window = this.#windows.get(operation);
    if (window === undefined || now - window.startedAt >= windowMs) {
      window = { startedAt: now, count: 0 };
      this.#windows.set(operation, window);
    }
    window.count += 1;
    if (window.count <= limit) return { allowed: true };
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((window.startedAt + windowMs - now) / 1000)) };
  }

  /** Forget all counts (a new window starts for every operation). */
  reset(): void {
    this.#windows.clear();
  }
}
