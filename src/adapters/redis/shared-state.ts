/**
 * What the app shares with the other instances through Redis (REDIS_URL): for now the rate limiters' counts.
 * `createApp` takes it as a dependency, so the app never knows whether Redis is configured or up.
 *
 * @packageDocumentation
 */
import type { Store } from 'express-rate-limit';

import type { Logger } from '../../observability/logger';
import type { MappingCache } from '../../services/mapping-cache';
import { invalidatedAcrossInstances } from './mapping-invalidation';
import { createRedisConnection, type RedisState } from './redis-connection';
import { sharedRateLimitStore } from './rate-limit-store';

export interface SharedState {
  /** A store for one rate limiter (its own key space), counting across instances while Redis answers. */
  rateLimitStore(limiter: string): Store;
  /** The instance's mapping cache, with its deletes sent to every instance's cache. */
  mappingCache(cache: MappingCache): MappingCache;
  /** For `/health`: whether the counts are shared right now. */
  state(): RedisState;
  close(): Promise<void>;
}

export function createRedisSharedState(options: {
  readonly url: string;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  readonly logger: Logger;
}): SharedState {
  const redis = createRedisConnection(options);
  return {
    rateLimitStore: (limiter) => sharedRateLimitStore(redis, `${options.keyPrefix}rl:${limiter}:`),
    mappingCache: (cache) => invalidatedAcrossInstances(cache, redis, `${options.keyPrefix}mapping-deleted`),
    state: () => redis.state(),
    close: () => redis.close(),
  };
}
