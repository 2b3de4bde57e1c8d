import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { composeService, type ServiceRuntime } from './composition-root';
import { trackConnections } from './http/connection-drain';
import { ConfigError, hasNoAzureSettings, loadConfig, type Config } from './config/config';
import { startLocalAzure, type LocalAzure } from './local/local-azure';
import { LOCAL_TENANT_ID } from './local/local-directory';
import { adminFilePath, removeLocalFile, removeLocalSession, sessionFilePath, writeLocalAdmin, writeLocalSession } from './local/local-session';
import { createLogger, type Logger } from './observability/logger';

/**
 * Starts the service: decides between Azure and local mode, loads the config, composes the service
 * and listens. `main.ts` calls this with `process.env`; tests and the package check call it too.
 */
export interface RunningService {
  readonly url: string;
  readonly config: Config;
  readonly logger: Logger;
  readonly server: Server;
  readonly runtime: ServiceRuntime;
  /** The emulators, when the service runs in local mode. */
  readonly local: LocalAzure | undefined;
  /** Stop accepting, let in-flight requests finish (up to the grace period), then release everything. */
  stop(): Promise<void>;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Local mode starts only when nothing points at Azure, and never in production. */
export function wantsLocalMode(env: Env): boolean {
  return hasNoAzureSettings(env) && env['NODE_ENV'] !== 'production';
}

const SHUTDOWN_GRACE_MS = 10_000;

function banner(url: string): string {
  const line = '='.repeat(78);
  return [
    line,
    ' acs-auth-server is running on LOCAL EMULATORS of Entra ID, Microsoft Graph and ACS Identity.',
    ' Nothing here talks to Azure. Identities, mappings and tokens live in memory until you stop it.',
    ` Tenant ${LOCAL_TENANT_ID}; demo users: alice, bob, carol.`,
    '',
    ' Get a token for a demo user and call the API:',
    `   curl -X POST -H "Authorization: Bearer $(npm run -s token -- alice)" ${url}/api/user`,
    `   curl -H "Authorization: Bearer $(npm run -s token -- alice)" ${url}/api/token`,
    '',
    ' To run against Azure, set the ENTRA_*, ACS_* settings (see .env.sample and docs/configuration.md).',
    line,
    '',
  ].join('\n');
}

export interface StartOptions {
  /** Print the local-mode banner (the process entry point does). */
  readonly announce?: boolean;
  /**
   * Where local mode tells the `token` command about itself; `.local-azure/session.json` in the working
   * folder by default. The admin command's `admin.json` (this run's secrets, mode 0600) goes next to it.
   */
  readonly sessionFile?: string;
  /** How long in-flight requests may take to finish on stop (default 10 s; App Service waits about 30 s after SIGTERM). */
  readonly shutdownGraceMs?: number;
}

export async function startService(env: Env, options: StartOptions = {}): Promise<RunningService> {
  const sessionFile = options.sessionFile ?? sessionFilePath();
  const adminFile = adminFilePath(sessionFile);
  const local = wantsLocalMode(env) ? await startLocalAzure({}) : undefined;
  let config: Config;
  try {
    config = loadConfig(local ? { NODE_ENV: 'development', ...env, ...local.settings } : env);
  } catch (error) {
    await local?.close();
    throw error;
  }
  const logger = createLogger({ level: config.log.level });
  for (const name of config.deprecatedNamesUsed) logger.warn({ setting: name }, 'deprecated setting name; rename it');

  const runtime = composeService(config, { logger, ...(local ? { trustedCaPem: local.caCertPem } : {}) });
  // Local mode answers on loopback only unless HOST says otherwise: its emulators hand out tokens to anyone who asks.
  const host = config.server.host ?? (local ? '127.0.0.1' : undefined);
  let server: Server;
  try {
    server = await new Promise<Server>((resolve, reject) => {
      const onListening = (): void => resolve(listening);
      const { port } = config.server;
      const listening = host === undefined ? runtime.app.listen(port, onListening) : runtime.app.listen(port, host, onListening);
      listening.once('error', reject);
    });
  } catch (error) {
    await runtime.close();
    await local?.close();
    throw error;
  }
  const connections = trackConnections(server);
  // Longer than App Service's front end idle timeout, so it never reuses a socket we are closing.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const { port } = server.address() as AddressInfo;
  const url = `http://localhost:${port}`;

  if (local) {
    await writeLocalSession(
      { serviceUrl: url, entraUrl: local.entra.url, tenantId: LOCAL_TENANT_ID, caCertPem: local.caCertPem, pid: process.pid },
      sessionFile,
    );
    await writeLocalAdmin({ settings: local.settings, caCertPem: local.caCertPem, pid: process.pid }, adminFile);
    logger.warn({ mode: 'local', entra: local.entra.url, graph: local.graph.url, acs: local.acs.url }, 'running on local emulators');
    if (options.announce) process.stderr.write(banner(url));
  }
  logger.info({ port, mode: local ? 'local' : 'azure', environment: config.environment }, 'listening');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await connections.drain(options.shutdownGraceMs ?? SHUTDOWN_GRACE_MS);
      await runtime.close();
      if (local) {
        await removeLocalSession(sessionFile);
        await removeLocalFile(adminFile);
        await local.close();
      }
      logger.info('stopped');
    })();
    return stopping;
  };

  return { url, config, logger, server, runtime, local, stop };
}

export function describeStartupError(error: unknown): string {
  if (error instanceof ConfigError) {
    return `${error.message}\nSee .env.sample and docs/configuration.md. With no Azure setting at all (and NODE_ENV not production), the service starts on local emulators.\n`;
  }
  return `acs-auth-server failed to start: ${error instanceof Error ? error.message : String(error)}\n`;
}
