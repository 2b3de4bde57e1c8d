/**
 * What the app shares with the other instances through Redis (REDIS_URL): for now the rate limiters' counts.
 * `createApp` takes it as a dependency, so the app never knows whether Redis is configured or up.
 *
 * @packageDocumentation
 */
import type { Store } from 'express-rate-limit';

import type { Logger } from '../../observability/logger';
import type { MappingCache } from '../../services/mapping-cache';
import { isAcsUserId } from '../../services/mapping-seal';
import type { TokenInvalidations } from '../../services/token-reuse';
import { createBroadcast } from './broadcast';
import { invalidatedAcrossInstances, MAPPING_KEY } from './mapping-invalidation';
import { createRedisConnection, type RedisState } from './redis-connection';
import { sharedRateLimitStore } from './rate-limit-store';

export interface SharedState {
  /** A store for one rate limiter (its own key space), counting across instances while Redis answers. */
  rateLimitStore(limiter: string): Store;
  /** The instance's mapping cache, with its deletes sent to every instance's cache. */
  mappingCache(cache: MappingCache): MappingCache;
  /** Revokes and deletes of ACS identities, for every instance's reused tokens (services/token-reuse.ts). */
  readonly tokenInvalidations: TokenInvalidations;
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
    mappingCache: (cache) =>
      invalidatedAcrossInstances(
        cache,
        createBroadcast(redis, `${options.keyPrefix}mapping-deleted`, (key) => MAPPING_KEY.test(key)),
      ),
    tokenInvalidations: createBroadcast(redis, `${options.keyPrefix}tokens-invalidated`, isAcsUserId),
    state: () => redis.state(),
    close: () => redis.close(),
  };
}
