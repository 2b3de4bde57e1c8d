/**
 * Deletes from the mapping cache reach every instance: the cache's `delete` (a user's identity deleted, erased or
 * found stale) is broadcast, and every instance deletes the same key from its own cache. So after a delete on one
 * instance the others stop using the old identity at once, instead of at their next ACS "not found" or when the
 * entry's TTL ends; both of those still hold when a message is lost (Redis down, a reconnect), which keeps the
 * cache correct without Redis.
 *
 * @packageDocumentation
 */
import type { MappingCache } from '../../services/mapping-cache';
import type { Broadcast } from './broadcast';

/** `<tid>/<oid>`, the only key shape the mapping cache has (see `mappingKey`); at worst a message evicts an entry. */
export const MAPPING_KEY = /^[0-9a-f-]{36}\/[0-9a-f-]{36}$/;

export function invalidatedAcrossInstances(cache: MappingCache, deletes: Broadcast): MappingCache {
  deletes.subscribe((key) => cache.delete(key));
  return {
    get: (key) => cache.get(key),
    set: (key, acsUserId) => cache.set(key, acsUserId),
    delete: (key) => {
      cache.delete(key);
      deletes.publish(key);
    },
    get size() {
      return cache.size;
    },
  };
}
