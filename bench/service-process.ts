import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { composeService, type ServiceRuntime } from '../src/composition-root';
import { loadConfig, type Config } from '../src/config/config';
import { createLogger } from '../src/observability/logger';
import { serveRpc } from './ipc';

/**
 * Benchmark child process: the service exactly as `npm start` composes it (loadConfig, the
 * composition root, the same server timeouts), pointed at the emulators by their settings and
 * trusting their CA, listening on an ephemeral loopback port.
 */

export interface ServiceMemory extends NodeJS.MemoryUsage {
  /** Mappings held in the identity service's cache. */
  readonly cachedMappings: number;
}

export interface ServiceApi {
  start(params: {
    readonly env: Readonly<Record<string, string>>;
    readonly caCertPem: string;
  }): Promise<{ readonly url: string; readonly mappingCache: Config['mappingCache'] }>;
  /** Memory of this process; collects garbage first when node runs with --expose-gc and `gc` is true. */
  memory(params: { readonly gc: boolean }): ServiceMemory;
  cpu(): NodeJS.CpuUsage;
  stop(): Promise<void>;
}

let runtime: ServiceRuntime | undefined;
let server: Server | undefined;

const api: ServiceApi = {
  async start({ env, caCertPem }) {
    if (runtime !== undefined) throw new Error('already started');
    const config = loadConfig(env);
    const logger = createLogger({ level: config.log.level });
    runtime = composeService(config, { logger, trustedCaPem: caCertPem });
    const app = runtime.app;
    server = await new Promise<Server>((resolve, reject) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
      listening.once('error', reject);
    });
    // Same values as src/server.ts, so connection handling matches production.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, mappingCache: config.mappingCache };
  },

  memory({ gc }) {
    const collect = (globalThis as { gc?: () => void }).gc;
    if (gc && collect !== undefined) collect();
    return { ...process.memoryUsage(), cachedMappings: runtime?.identities.cachedMappings() ?? 0 };
  },

  cpu: () => process.cpuUsage(),

  async stop() {
    if (server !== undefined) {
      const closed = new Promise<void>((resolve) => server?.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    }
    await runtime?.close();
    server = undefined;
    runtime = undefined;
  },
};

serveRpc(api);
