import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';

/** Debian's redis-server (`apt-get install redis-server`; `.ci/run` installs it when absent), or REDIS_SERVER_PATH. */
export const REDIS_SERVER_PATH = process.env['REDIS_SERVER_PATH'] ?? '/usr/bin/redis-server';

/**
 * A real redis-server of the test file's own, on a loopback port nobody else uses, in memory only (no RDB, no
 * AOF), stopped after. `kill()` and `start()` again on the same port stand for an outage and a recovery.
 */
export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** Starts it (again) on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** SIGKILL: an outage, as abrupt as a crashed or unreachable Redis. */
  kill(): Promise<void>;
  /** SIGSTOP and SIGCONT: a Redis that hangs with its connections open (a failover, a stuck network path). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export async function startTestRedis(): Promise<TestRedis> {
  if (!existsSync(REDIS_SERVER_PATH)) {
    throw new Error(
      `no redis-server at ${REDIS_SERVER_PATH}: install Debian's redis-server package (.ci/run does) or set REDIS_SERVER_PATH`,
    );
  }
  const port = await freeLoopbackPort();
  let child: ChildProcess | undefined;
  const redis: TestRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      child = spawn(
        REDIS_SERVER_PATH,
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--protected-mode',
          'yes',
          '--loglevel',
          'warning',
        ],
        { stdio: 'ignore' },
      );
      await waitUntilListening(port, child);
    },
    async kill() {
      await ended(child, 'SIGKILL');
      child = undefined;
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
    async stop() {
      await ended(child, 'SIGTERM');
      child = undefined;
    },
  };
  await redis.start();
  return redis;
}

async function ended(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child?.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilListening(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode} on port ${port}`);
    if (await accepts(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`redis-server did not listen on 127.0.0.1:${port} within 5 s`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
