/**
 * Deletes from the mapping cache reach every instance: the cache's `delete` (a user's identity deleted, erased or
 * found stale) is published on a Redis channel, and every instance deletes the same key from its own cache. So after
 * a delete on one instance the others stop using the old identity at once, instead of at their next ACS "not found"
 * or when the entry's TTL ends; both of those still hold when a message is lost (Redis down, a reconnect), which
 * keeps the cache correct without Redis.
 *
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';

import type { MappingCache } from '../../services/mapping-cache';
import type { RedisConnection } from './redis-connection';

/** `<tid>/<oid>`, the only key shape the mapping cache has (see `mappingKey`); anything else on the channel is ignored. */
const MAPPING_KEY = /^[0-9a-f-]{36}\/[0-9a-f-]{36}$/;
/** `<instance id> <key>`: an instance skips its own messages. */
const MAX_MESSAGE_LENGTH = 128;

export function invalidatedAcrossInstances(cache: MappingCache, redis: RedisConnection, channel: string): MappingCache {
  const instance = randomUUID();
  // Whoever can publish on the channel (anyone with access to this Redis) can at most evict entries: a store read more.
  redis.subscribe(channel, (message) => {
    if (message.length > MAX_MESSAGE_LENGTH) return;
    const [from, key] = message.split(' ');
    if (from !== instance && key !== undefined && MAPPING_KEY.test(key)) cache.delete(key);
  });
  return {
    get: (key) => cache.get(key),
    set: (key, acsUserId) => cache.set(key, acsUserId),
    delete: (key) => {
      cache.delete(key);
      // Fire and forget: without Redis the other instances find out from ACS, as they always did.
      redis.command(['PUBLISH', channel, `${instance} ${key}`]).catch(() => undefined);
    },
    get size() {
      return cache.size;
    },
  };
}
