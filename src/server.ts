import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { composeService, type ServiceRuntime } from './composition-root';
import { ConfigError, hasNoAzureSettings, loadConfig, type Config } from './config/config';
import { trackConnections } from './http/connection-drain';
import type { LocalAzure, LocalAzureOptions } from './local/local-azure';
import type { LocalMode } from './local/local-mode';
import { createLogger, type Logger } from './observability/logger';
import { pageSettingsOf } from './web/page-settings';
import { loadWebPage, WebPageNotBuiltError, type WebPage } from './web/web-page';

/** A started service: its address, its parts, and how to stop it. */
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

/**
 * The emulators are loaded only here, on demand: a deployment in Azure mode never loads their modules
 * (nor node-forge, which they use to make certificates). The `.js` suffix is what Node's resolver needs
 * for a dynamic import from the built CommonJS; Jest maps it back to the TypeScript source.
 */
async function startLocalMode(options: StartOptions, env: Env): Promise<LocalMode> {
  const localMode = await import('./local/local-mode.js');
  // Any other value is left for loadConfig to refuse, with the rest of the settings' problems.
  const mappingStore = env['MAPPING_STORE']?.trim() === 'table' ? 'table' : 'graph';
  return localMode.startLocalMode({
    ...(options.sessionFile === undefined ? {} : { sessionFile: options.sessionFile }),
    ...(options.localAzure === undefined ? {} : { localAzure: options.localAzure }),
    mappingStore,
    webPage: env['WEB_PAGE']?.trim().toLowerCase() !== 'off',
  });
}

/** Where `npm run build` puts the sign-in page: `dist/web`, next to the compiled `server.js`. */
const WEB_PAGE_DIRECTORY = join(__dirname, 'web');

/** The page, when WEB_PAGE is on; a page that was not built is left out with a warning (the API still serves). */
async function webPageOf(
  config: Config,
  local: LocalMode | undefined,
  options: StartOptions,
  logger: Logger,
): Promise<WebPage | undefined> {
  if (!config.webPage.enabled) return undefined;
  const browserUrl = local?.azure.entra.browserUrl;
  const settings = pageSettingsOf(config, config.webPage.clientId, browserUrl === undefined ? undefined : { browserUrl });
  try {
    return await loadWebPage(options.webPageDirectory ?? WEB_PAGE_DIRECTORY, settings);
  } catch (error) {
    if (!(error instanceof WebPageNotBuiltError)) throw error;
    logger.warn({ reason: error.message }, 'sign-in page not served');
    return undefined;
  }
}

const SHUTDOWN_GRACE_MS = 10_000;

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
  /** The built sign-in page (default `dist/web` beside this file); tests point it at a build of their own. */
  readonly webPageDirectory?: string;
  /** Local mode only: further emulator options, for tests. */
  readonly localAzure?: Pick<LocalAzureOptions, 'acsTokenLifetimeSeconds' | 'certificates' | 'rsaKeys'>;
}

/**
 * Starts the service: decides between Azure and local mode, loads the config, composes the service
 * and listens. `main.ts` calls this with `process.env`; tests and the package check call it too.
 */
export async function startService(env: Env, options: StartOptions = {}): Promise<RunningService> {
  const local = wantsLocalMode(env) ? await startLocalMode(options, env) : undefined;
  let config: Config;
  try {
    config = loadConfig(local ? { NODE_ENV: 'development', ...env, ...local.settings } : env);
  } catch (error) {
    await local?.close();
    throw error;
  }
  const logger = createLogger({ level: config.log.level });
  for (const name of config.deprecatedNamesUsed) logger.warn({ setting: name }, 'deprecated setting name; rename it');
  for (const name of config.unusedSettings) {
    logger.warn(
      { setting: name },
      'setting not used with MAPPING_STORE=table; remove it (a secret the service does not need should not be deployed)',
    );
  }

  let webPage: WebPage | undefined;
  try {
    webPage = await webPageOf(config, local, options, logger);
  } catch (error) {
    await local?.close();
    throw error;
  }
  const runtime = composeService(config, { logger, webPage, ...(local ? { trustedCaPem: local.caCertPem } : {}) });
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

  await local?.announce(url, logger, { banner: options.announce === true });
  logger.info({ port, mode: local ? 'local' : 'azure', environment: config.environment }, 'listening');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await connections.drain(options.shutdownGraceMs ?? SHUTDOWN_GRACE_MS);
      await runtime.close();
      await local?.close();
      logger.info('stopped');
    })();
    return stopping;
  };

  return { url, config, logger, server, runtime, local: local?.azure, stop };
}

export function describeStartupError(error: unknown): string {
  if (error instanceof ConfigError) {
    return `${error.message}\nSee .env.sample and docs/configuration.md. With no Azure setting at all (and NODE_ENV not production), the service starts on local emulators.\n`;
  }
  return `acs-auth-server failed to start: ${error instanceof Error ? error.message : String(error)}\n`;
}
