import { LRUCache } from 'lru-cache';

/**
 * The oid → ACS identity mapping, remembered in memory so that a steady-state token request needs
 * neither On-Behalf-Of nor Graph: only the ACS issue call remains.
 *
 * Bounded (least recently used entries go first) and time-limited. It is safe with several
 * instances, each with its own cache, because a mapping only ever changes by being deleted: a
 * cached id whose identity is gone makes ACS answer "not found", and the service then drops the
 * entry and reads Graph again. The TTL bounds how long an instance keeps a mapping another
 * instance removed, for the operations that do not call ACS.
 */
export interface MappingCache {
  get(key: string): string | undefined;
  set(key: string, acsUserId: string): void;
  delete(key: string): void;
  readonly size: number;
}

export function createMappingCache(options: { readonly maxEntries: number; readonly ttlMs: number }): MappingCache {
  if (options.maxEntries === 0) {
    return { get: () => undefined, set: () => undefined, delete: () => undefined, size: 0 };
  }
  const cache = new LRUCache<string, string>({ max: options.maxEntries, ttl: options.ttlMs, ttlAutopurge: false });
  return {
    get: (key) => cache.get(key),
    set: (key, acsUserId) => {
      cache.set(key, acsUserId);
    },
    delete: (key) => {
      cache.delete(key);
    },
    get size() {
      return cache.size;
    },
  };
}

/** The cache key of a user: object ids are unique within a tenant. */
export function mappingKey(tid: string, oid: string): string {
  return `${tid}/${oid}`;
}
