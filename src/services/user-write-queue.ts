/**
 * Runs each user's mapping writes (create, replace, delete, erase, stale-mapping repair) one after
 * another in this process. Graph has no conditional write for open extensions: a replace and a delete
 * of one user that interleave could each act on what the other just wrote (a delete landing on the new
 * mapping orphans its identity). Across instances the compare-and-delete of `remove` (ports.ts)
 * narrows that window but cannot close it; within one instance this queue does.
 */
export interface UserWriteQueue {
  /** Run `work` once every write queued before it under `key` has settled; settles as `work` does. */
  oneWriterAtATime<T>(key: string, work: () => Promise<T>): Promise<T>;
}

export function createUserWriteQueue(): UserWriteQueue {
  /** The tail of each user's queue; a key is dropped once its last write settles, so idle users cost nothing. */
  const tails = new Map<string, Promise<void>>();
  return {
    oneWriterAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
      const result = (tails.get(key) ?? Promise.resolve()).then(work);
      // The next writer waits for this one whether it succeeds or fails.
      const settled = result.then(
        () => undefined,
        () => undefined,
      );
      tails.set(key, settled);
      void settled.then(() => {
        if (tails.get(key) === settled) tails.delete(key);
      });
      return result;
    },
  };
}
