import type { TestService } from './test-service';

/**
 * The failures a mapping store has, injected the way each store's stand-in allows: the Graph
 * emulator's fault steps, or the fault proxy in front of Azurite. Suites that run against both stores
 * arm faults through this, so one test states one failure for both.
 */
export interface StoreFaults {
  /** Every store request answers `status` (with `Retry-After`), until cleared. */
  throttle(status: 429 | 503, retryAfterSeconds: number): void;
  /** The next `times` mapping reads answer `status` with `Retry-After`. */
  throttleReads(status: 429 | 503, retryAfterSeconds: number, times: number): void;
  /** Mapping reads that reached the store so far (each retry counts). */
  reads(): number;
  /** The store cannot be reached: connections are reset. */
  unavailable(): void;
  /** Reads of a mapping answer only after `ms`. */
  slowReads(ms: number): void;
  /** The next mapping write is applied, but its answer is lost (the connection drops). */
  loseNextWriteAnswer(): void;
  /** The next mapping write is applied, but answered 503 (the SDKs retry it, and meet their own write). */
  answerNextWriteWith503(): void;
  /** The next mapping removal is applied, but its answer is lost. */
  loseNextRemoveAnswer(): void;
  clear(): void;
}

const TABLE_WRITE = { method: 'POST', path: /\/\$batch$/ } as const;
const TABLE_REMOVE = { method: 'DELETE' } as const;
const TABLE_READ = { method: 'GET' } as const;

export function storeFaultsOf(service: Pick<TestService, 'store' | 'local' | 'tableProxy'>): StoreFaults {
  const { tableProxy } = service;
  if (service.store === 'table') {
    if (tableProxy === undefined) throw new Error('the table store is tested behind the fault proxy');
    return {
      throttle: (status, retryAfterSeconds) => tableProxy.fail({}, { status, retryAfterSeconds }),
      throttleReads: (status, retryAfterSeconds, times) => tableProxy.fail(TABLE_READ, { status, retryAfterSeconds, times }),
      reads: () => tableProxy.seen.filter((request) => request.method === 'GET').length,
      unavailable: () => tableProxy.unavailable(),
      slowReads: (ms) => tableProxy.delay(TABLE_READ, ms),
      loseNextWriteAnswer: () => tableProxy.loseAnswer(TABLE_WRITE, 1),
      loseNextRemoveAnswer: () => tableProxy.loseAnswer(TABLE_REMOVE, 1),
      answerNextWriteWith503: () => tableProxy.failAfterApplying(TABLE_WRITE, 503, 1),
      clear: () => tableProxy.clear(),
    };
  }
  const { faults } = service.local.graph;
  return {
    throttle: (status, retryAfterSeconds) => faults.inject({ status, retryAfterSeconds, times: Infinity }),
    throttleReads: (status, retryAfterSeconds, times) => faults.inject({ route: 'user.get', status, retryAfterSeconds, times }),
    reads: () => service.local.graph.counters.get('user.get'),
    unavailable: () => faults.inject({ status: 503, dropConnection: true, times: Infinity }),
    slowReads: (ms) => faults.setLatency(ms, 'user.get'),
    loseNextWriteAnswer: () => faults.inject({ route: 'extensions.create', status: 500, afterHandler: true, dropConnection: true }),
    loseNextRemoveAnswer: () => faults.inject({ route: 'extensions.delete', status: 500, afterHandler: true, dropConnection: true }),
    answerNextWriteWith503: () => faults.inject({ route: 'extensions.create', status: 503, afterHandler: true }),
    clear: () => faults.clear(),
  };
}
