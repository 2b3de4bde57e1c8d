/**
 * The rate limiters' counts in Redis, so a limit holds across instances (rate-limit-redis, the store the
 * express-rate-limit project maintains), with the instance's own memory as the fallback: while Redis is down or
 * slow each instance counts for itself (the limit is then per instance, as without Redis), and the shared count
 * resumes when Redis is back. A Redis failure never turns into an error answer.
 *
 * @packageDocumentation
 */
import { MemoryStore, type ClientRateLimitInfo, type IncrementResponse, type Options, type Store } from 'express-rate-limit';
import { RedisStore } from 'rate-limit-redis';

import type { RedisConnection } from './redis-connection';

export function sharedRateLimitStore(redis: RedisConnection, prefix: string): Store {
  return new SharedOrLocalStore(redis, prefix);
}

class SharedOrLocalStore implements Store {
  readonly localKeys = false;
  readonly prefix: string;
  readonly #redis: RedisConnection;
  readonly #shared: RedisStore;
  readonly #local = new MemoryStore();
  #options: Options | undefined;

  constructor(redis: RedisConnection, prefix: string) {
    this.#redis = redis;
    this.prefix = prefix;
    this.#shared = new RedisStore({ prefix, sendCommand: (...args: string[]) => redis.command(args) as Promise<never> });
    // After a restart Redis has forgotten the store's scripts; loading them again on every connection covers it.
    redis.onReady(() => this.#initShared());
  }

  init(options: Options): void {
    this.#options = options;
    this.#local.init(options);
    this.#initShared();
  }

  #initShared(): void {
    // A failure here (Redis not there yet) only leaves increments to the local count until the next connection.
    if (this.#options !== undefined) this.#shared.init(this.#options).catch(() => undefined);
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    return this.#either((store) => store.get(key));
  }

  async increment(key: string): Promise<IncrementResponse> {
    return this.#either((store) => store.increment(key));
  }

  /**
   * Whoever can write to the Redis can write any count: one that is not a whole number, or that resets later than a
   * window from now, is not believed (the local count answers), so it cannot lock a user out or break Retry-After.
   */
  #plausible(counted: ClientRateLimitInfo | undefined): boolean {
    if (counted === undefined) return true;
    const windowMs = this.#options?.windowMs ?? 0;
    const resetIn = counted.resetTime === undefined ? 0 : counted.resetTime.getTime() - Date.now();
    return Number.isSafeInteger(counted.totalHits) && counted.totalHits >= 0 && Number.isFinite(resetIn) && resetIn <= windowMs;
  }

  async decrement(key: string): Promise<void> {
    await Promise.all([this.#local.decrement(key), this.#sharedOrNothing((store) => store.decrement(key))]);
  }

  async resetKey(key: string): Promise<void> {
    await Promise.all([this.#local.resetKey(key), this.#sharedOrNothing((store) => store.resetKey(key))]);
  }

  shutdown(): void {
    this.#local.shutdown();
  }

  /** The shared answer while Redis answers in time with a plausible count; the instance's own otherwise. */
  async #either<T extends ClientRateLimitInfo | undefined>(call: (store: RedisStore | MemoryStore) => Promise<T>): Promise<T> {
    if (this.#redis.state() === 'connected') {
      try {
        const shared = await call(this.#shared);
        if (this.#plausible(shared)) return shared;
      } catch {
        // Slow or failed: the connection logs outages; this request is counted here instead.
      }
    }
    return call(this.#local);
  }

  async #sharedOrNothing(call: (store: RedisStore) => Promise<void>): Promise<void> {
    if (this.#redis.state() === 'connected') await call(this.#shared).catch(() => undefined);
  }
}
