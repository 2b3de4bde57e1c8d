/**
 * The one Redis connection of a process (REDIS_URL), built by the composition root. Redis is shared state the
 * service can do without: a command is sent only while the connection is ready and gets a short deadline, and
 * every caller has a per-instance answer to fall back to. So a slow or missing Redis costs at most the deadline,
 * never a 5xx, and the client reconnects by itself (with backoff) while the instance keeps serving.
 *
 * @packageDocumentation
 */
import { createClient } from '@redis/client';

import type { Logger } from '../../observability/logger';

export type RedisState = 'connected' | 'unavailable';

export interface RedisConnection {
  /** Sends a raw command; rejects at once when not connected, and after the deadline when Redis is slow. */
  command(args: readonly string[]): Promise<unknown>;
  /** For the health answer. */
  state(): RedisState;
  /** Called on every (re)connection: state kept in Redis (loaded scripts, say) may be gone after a restart. */
  onReady(listener: () => void): void;
  /**
   * Receives the messages published on `channel`, on a second connection of its own (a subscribed connection
   * can send nothing else); the client subscribes again by itself after a reconnect. Messages published while
   * this instance was cut off are not delivered: callers must stay correct without them.
   */
  subscribe(channel: string, listener: (message: string) => void): void;
  close(): Promise<void>;
}

export interface RedisConnectionOptions {
  readonly url: string;
  readonly commandTimeoutMs: number;
  readonly logger: Logger;
}

/** Longest pause between reconnection attempts: a recovered Redis is used again within this. */
const MAX_RECONNECT_DELAY_MS = 2_000;
/**
 * After a command missed its deadline, Redis is left alone this long: a Redis that hangs with its connection open
 * (a failover, a stuck network path) would otherwise cost every request the whole deadline.
 */
const STALL_PAUSE_MS = 1_000;

export function createRedisConnection(options: RedisConnectionOptions): RedisConnection {
  const { logger, commandTimeoutMs } = options;
  const client = newClient(options.url, commandTimeoutMs);
  const readyListeners: (() => void)[] = [];
  /** One connection for every subscription (a subscribed connection can send nothing else), made on first use. */
  let subscriber: Promise<typeof client> | undefined;
  const subscriberClient = client.duplicate();
  // Its outages are the main connection's too, which logs them.
  subscriberClient.on('error', () => undefined);
  const startSubscriber = async (): Promise<typeof client> => {
    await subscriberClient.connect();
    return subscriberClient;
  };
  /** Whether this outage (or the failed first connection) was logged: once per outage, not once per retry. */
  let outageLogged = false;
  let closing = false;
  /** Until when Redis is treated as unavailable after a missed deadline (epoch ms). */
  let stalledUntil = 0;
  const reportOutage = (reason: string): void => {
    if (outageLogged) return;
    outageLogged = true;
    logger.warn({ redis: 'unavailable', reason }, 'shared state: Redis unavailable; each instance counts for itself until it is back');
  };
  const subscriberReady = (): boolean => subscriber === undefined || subscriberClient.isReady;
  const connected = (): boolean => client.isReady && subscriberReady() && Date.now() >= stalledUntil;

  client.on('ready', () => {
    outageLogged = false;
    logger.info({ redis: 'connected' }, 'shared state: Redis connected');
    for (const listener of readyListeners) listener();
  });
  // Messages published while the subscriber was cut off are lost: its reconnection is a resume too.
  subscriberClient.on('ready', () => {
    for (const listener of readyListeners) listener();
  });
  // Without a listener an 'error' event would end the process. The message never holds the URL.
  client.on('error', (error: unknown) => reportOutage(error instanceof Error ? error.message : String(error)));
  client.connect().catch(() => {
    // The 'error' listener has logged it; the reconnect strategy keeps trying unless the client is closed.
  });

  return {
    async command(args) {
      if (!client.isReady || Date.now() < stalledUntil) throw new Error('Redis is not connected');
      // node-redis's own `timeout` stops counting once the command is written, so the deadline is kept here.
      const reply = await withDeadline(client.sendCommand([...args]), commandTimeoutMs, () => {
        stalledUntil = Date.now() + STALL_PAUSE_MS;
        reportOutage(`no answer within ${commandTimeoutMs} ms`);
      });
      if (outageLogged && client.isReady) {
        // Answering again after a stall (the connection never dropped, so no 'ready' says so).
        outageLogged = false;
        logger.info({ redis: 'connected' }, 'shared state: Redis connected');
      }
      return reply;
    },
    state: () => (connected() ? 'connected' : 'unavailable'),
    onReady(listener) {
      readyListeners.push(listener);
    },
    subscribe(channel, listener) {
      subscriber ??= startSubscriber();
      subscriber
        .then((connected) => connected.subscribe(channel, listener))
        .catch(() => {
          // Not connected yet: the reconnect strategy keeps trying, and node-redis subscribes again when it connects.
        });
    },
    async close() {
      if (closing) return;
      closing = true;
      await Promise.all([closeClient(subscriberClient), closeClient(client)]);
    },
  };
}

async function closeClient(client: { readonly isOpen: boolean; close(): Promise<void>; destroy(): void }): Promise<void> {
  if (client.isOpen) await client.close().catch(() => client.destroy());
  else client.destroy();
}

function newClient(url: string, commandTimeoutMs: number) {
  return createClient({
    url,
    socket: {
      connectTimeout: Math.max(1_000, commandTimeoutMs),
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), MAX_RECONNECT_DELAY_MS),
    },
    // Fail at once while disconnected: a queued command would wait for a reconnect the caller cannot wait for.
    disableOfflineQueue: true,
  });
}

/** `work`, or a rejection after `ms` (calling `onTimeout` first); the timer never outlives the race. */
async function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`Redis did not answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
