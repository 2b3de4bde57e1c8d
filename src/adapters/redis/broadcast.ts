/**
 * One instance telling the others about a change, over Redis pub/sub: `<instance id> <value>` on a channel, each
 * instance skipping its own messages. Delivery is best effort (nothing is sent or received while Redis is down),
 * so every use must stay correct without it. Whoever can publish on the channel can send any value: `accepts`
 * decides which values are taken, after a length bound.
 *
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';

import type { RedisConnection } from './redis-connection';

export interface Broadcast {
  /** To every other instance; fire and forget. */
  publish(value: string): void;
  /** What the other instances publish, once `accepts` has let it through. */
  subscribe(listener: (value: string) => void): void;
  /** Whether messages can be sent and received now. */
  connected(): boolean;
  /** After every (re)connection: messages sent while this instance was cut off never arrive. */
  onResume(listener: () => void): void;
}

const MAX_MESSAGE_LENGTH = 160;

export function createBroadcast(redis: RedisConnection, channel: string, accepts: (value: string) => boolean): Broadcast {
  const instance = randomUUID();
  return {
    publish(value) {
      redis.command(['PUBLISH', channel, `${instance} ${value}`]).catch(() => undefined);
    },
    connected: () => redis.state() === 'connected',
    onResume: (listener) => redis.onReady(listener),
    subscribe(listener) {
      redis.subscribe(channel, (message) => {
        if (message.length > MAX_MESSAGE_LENGTH) return;
        const space = message.indexOf(' ');
        const value = message.slice(space + 1);
        if (space > 0 && message.slice(0, space) !== instance && accepts(value)) listener(value);
      });
    },
  };
}
