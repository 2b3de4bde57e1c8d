import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

import { RequestCounters } from '../src/local/kit/faults';

/**
 * Benchmark: an https reverse proxy on 127.0.0.1 in front of Azurite's Table service that counts the
 * requests reaching the table (Azurite counts nothing) and holds each one for the injected latency, as
 * the other emulators' `faults.setLatency` does, so a table read pays the modelled cloud round trip too.
 *
 * It keeps Azurite's path layout (`/<account>/...`), so the service only swaps the endpoint in its
 * connection string: the SharedKey signature covers the account and path, not the host or port.
 * (tests/helpers/table-fault-proxy.ts is the tests' fault-injecting cousin; the bench compiles only
 * src/ and bench/, so it has its own, smaller one.)
 */
export interface CountingTableProxy {
  /** Same path layout as the Azurite url: `https://127.0.0.1:PROXYPORT/<account>`. */
  readonly url: string;
  /** Requests per operation: `entities.get`, `entities.query`, `entities.delete`, `entities.write`, `batch`, `tables.create`, `other`. */
  readonly counters: RequestCounters;
  setLatency(ms: number): void;
  close(): Promise<void>;
}

export interface CountingTableProxyOptions {
  /** The Azurite table endpoint, e.g. `https://127.0.0.1:PORT/acsauthlocal`. */
  readonly target: string;
  /** The proxy's own server certificate and key (the same as Azurite's will do). */
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  /** The CA that signed Azurite's certificate: the proxy verifies it. */
  readonly caCertPem: string;
}

// Per connection, not end to end: never copied from one side of the proxy to the other.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/** The Table service operation a request is, from its method and path (after the account segment). */
export function tableOperationOf(method: string, path: string): string {
  const resource = path.split('?')[0]?.split('/').slice(2).join('/') ?? '';
  if (resource === '$batch') return 'batch';
  if (resource === 'Tables' || resource.startsWith('Tables(')) return method === 'POST' ? 'tables.create' : 'tables.other';
  const entity = /\(.+\)$/.test(resource);
  if (method === 'GET') return entity ? 'entities.get' : 'entities.query';
  if (method === 'DELETE') return 'entities.delete';
  return entity || method === 'POST' ? 'entities.write' : 'other';
}

function endToEnd(headers: IncomingMessage['headers']): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  return kept;
}

export async function startCountingTableProxy(options: CountingTableProxyOptions): Promise<CountingTableProxy> {
  const target = new URL(options.target);
  const counters = new RequestCounters();
  const agent = new Agent({ keepAlive: true, ca: options.caCertPem });
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let latencyMs = 0;

  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const upstream = httpsRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...endToEnd(req.headers), host: target.host },
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        answer.pipe(res);
      },
    );
    // Azurite unreachable or gone: the client sees its connection drop, not an invented status.
    upstream.once('error', () => req.socket.destroy());
    req.pipe(upstream);
  };

  const server: Server = createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, (req, res) => {
    counters.increment(tableOperationOf(req.method ?? 'GET', req.url ?? '/'));
    if (latencyMs <= 0) {
      forward(req, res);
      return;
    }
    // The request body stays paused in `req` meanwhile; it is piped on when the latency has passed.
    const timer = setTimeout(() => {
      timers.delete(timer);
      forward(req, res);
    }, latencyMs);
    timers.add(timer);
  });
  // Longer than the SDK's idle keep-alive, as Azurite's own, so a reused connection is never closed under a request.
  server.keepAliveTimeout = 65_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject).listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `https://127.0.0.1:${port}${target.pathname.replace(/\/$/, '')}`,
    counters,
    setLatency(ms) {
      if (!Number.isFinite(ms) || ms < 0) throw new TypeError('latency must be a non-negative number of milliseconds');
      latencyMs = ms;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await closed;
    },
  };
}
