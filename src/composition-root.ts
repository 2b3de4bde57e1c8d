/**
 * The composition root: the one place that builds each SDK client (once per process) and wires the
 * adapters, the service and the app together. Production and local mode run exactly this code;
 * local mode only passes the emulators' CA, which these clients (and no others) then trust.
 *
 * @packageDocumentation
 */

import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import type { Express } from 'express';
import type { FetchImplementation } from 'jose';
import { Agent } from 'undici';

import { createAcsIdentityAdapter } from './adapters/acs/acs-identity-adapter';
import { createIdentityClient } from './adapters/acs/identity-client';
import { loadClientCertificate } from './adapters/entra/client-certificate';
import { createGraphTokenSource } from './adapters/entra/graph-token-source';
import { createMsalClient, type MsalClientCredential } from './adapters/entra/msal-client';
import { createMsalNetworkClient } from './adapters/entra/msal-network-client';
import { createGraphClient, type GraphClient } from './adapters/graph/graph-client';
import { createGraphMappingDirectory } from './adapters/graph/graph-mapping-directory';
import { createGraphMappingStore } from './adapters/graph/graph-mapping-store';
import { createMappingTableClient } from './adapters/table/table-client';
import { createTableMappingStore } from './adapters/table/table-mapping-store';
import { createMappingCopy, type MappingCopy } from './admin/mapping-copy';
import { createMappingMaintenance, type MappingMaintenance } from './admin/mapping-maintenance';
import { createApp } from './app';
import { createEntraTokenValidator } from './auth/entra-token-validator';
import { ConfigError, type Config, type EntraCredential, type GraphStoreConfig, type TableStoreConfig } from './config/config';
import type { Logger } from './observability/logger';
import { createIdentityService, type IdentityService } from './services/identity-service';
import { createMappingCache } from './services/mapping-cache';
import { acsResourceOf, graphSealerOf, mappingSealerOf } from './services/mapping-seal';
import type { AcsIdentities, GraphTokenSource, MappingStore } from './services/ports';
import type { WebPage } from './web/web-page';
import { createRedisSharedState, type SharedState } from './adapters/redis/shared-state';
import { withTokenReuse } from './services/token-reuse';

/** What the composition root takes besides the config: where to log, and the local CA if any. */
export interface ComposeOptions {
  readonly logger: Logger;
  /** PEM of a CA the upstream clients trust for the local emulators. Never set in production. */
  readonly trustedCaPem?: string;
  /** The sign-in page to serve at `/`, loaded by the caller (server.ts) when WEB_PAGE is on. */
  readonly webPage?: WebPage | undefined;
}

export interface ServiceRuntime {
  readonly app: Express;
  readonly identities: IdentityService;
  /** Release the upstream clients' pooled connections (after the HTTP server has drained). */
  close(): Promise<void>;
}

function jwksFetch(ca: string): { fetch: FetchImplementation; agent: Agent } {
  const agent = new Agent({ connect: { ca } });
  // Node's fetch accepts an undici dispatcher; its bundled undici types differ nominally from the package's.
  const fetchWithCa = ((url, init) => fetch(url, { ...init, dispatcher: agent } as unknown as RequestInit)) as FetchImplementation;
  return { fetch: fetchWithCa, agent };
}

/**
 * The API's credential for msal. A certificate file is read here, once, at start-up: a missing or bad
 * file stops the service with a ConfigError naming ENTRA_CLIENT_CERTIFICATE_PATH.
 */
function msalCredential(credential: EntraCredential): MsalClientCredential {
  if (credential.kind === 'secret') return { clientSecret: credential.secret };
  const { thumbprintSha256, privateKey } = loadClientCertificate(credential.path);
  // No x5c: Entra finds a certificate uploaded to the app registration by its thumbprint; the chain
  // matters only for subject name/issuer authentication, and would add a few KB to every token request.
  return { clientCertificate: { thumbprintSha256, privateKey } };
}

/** Waiting out a Retry-After inside a request only makes sense well within its deadline. */
function retryWaitBudgetMs(timeoutMs: number): number {
  return Math.min(2000, Math.floor(timeoutMs / 4));
}

/** What talks to Graph: msal (with its network client), the Graph client and the token source on msal. */
interface GraphAccess {
  readonly graph: GraphClient;
  readonly graphTokens: GraphTokenSource;
  /** Release msal's and the Graph client's pooled connections. */
  close(): Promise<void>;
}

function composeGraphAccess(config: Config, store: GraphStoreConfig, options: ComposeOptions): GraphAccess {
  const { logger } = options;
  const ca = options.trustedCaPem;
  const timeoutMs = config.upstream.timeoutMs;

  const msalNetwork = createMsalNetworkClient({ timeoutMs, ...(ca === undefined ? {} : { ca }) });
  const msal = createMsalClient({
    networkClient: msalNetwork,
    authorityHost: config.entra.authorityHost,
    tenantId: config.entra.tenantId,
    clientId: config.entra.clientId,
    ...msalCredential(store.credential),
    timeoutMs,
    logger: (level, message) => logger[level === 'error' ? 'error' : 'warn']({ component: 'msal' }, message),
  });
  const graph = createGraphClient({
    baseUrl: store.baseUrl,
    timeoutMs,
    maxRetries: config.upstream.maxRetries,
    maxRetryWaitMs: retryWaitBudgetMs(timeoutMs),
    ...(ca === undefined ? {} : { ca }),
  });
  const graphTokens = createGraphTokenSource(msal, {
    clientId: config.entra.clientId,
    oboScopes: store.oboScopes,
    appScope: store.appScope,
    timeoutMs,
    cacheMaxEntries: store.oboCacheMaxEntries,
  });
  return {
    graph,
    graphTokens,
    async close() {
      msalNetwork.destroy();
      await graph.close();
    },
  };
}

/** The mapping table's one client and the store on it (the table store, or the copy command's target). */
function composeTableStore(
  config: Config,
  table: TableStoreConfig,
  options: ComposeOptions,
  credential: () => TokenCredential,
): MappingStore {
  const timeoutMs = config.upstream.timeoutMs;
  const client = createMappingTableClient({
    table,
    ...(table.auth.kind === 'managedIdentity' ? { credential: credential() } : {}),
    maxRetries: config.upstream.maxRetries,
    maxRetryWaitMs: retryWaitBudgetMs(timeoutMs),
    userAgentPrefix: 'acs-auth-server',
    ...(options.trustedCaPem === undefined ? {} : { ca: options.trustedCaPem }),
  });
  return createTableMappingStore(client, { timeoutMs });
}

/** The configured mapping store, and what it holds open (the Graph store: msal and the Graph client). */
function composeMappingStore(
  config: Config,
  options: ComposeOptions,
  credential: () => TokenCredential,
): { readonly store: MappingStore; close(): Promise<void> } {
  const { mappings } = config;
  if (mappings.store === 'table') {
    // No msal, no Graph client, no Entra credential: the table is reached with the managed identity (or a connection string).
    return { store: composeTableStore(config, mappings.table, options, credential), close: () => Promise.resolve() };
  }
  const graphAccess = composeGraphAccess(config, mappings.graph, options);
  return {
    store: createGraphMappingStore(graphAccess.graph, graphAccess.graphTokens, { extensionName: mappings.graph.extensionName }),
    close: () => graphAccess.close(),
  };
}

/** One DefaultAzureCredential per process, made only when a managed identity is used (ACS or the table). */
function lazyCredential(): () => TokenCredential {
  let credential: TokenCredential | undefined;
  return () => (credential ??= new DefaultAzureCredential());
}

export function composeService(config: Config, options: ComposeOptions): ServiceRuntime {
  const { logger } = options;
  const ca = options.trustedCaPem;
  const timeoutMs = config.upstream.timeoutMs;
  const maxRetryWaitMs = retryWaitBudgetMs(timeoutMs);
  const credential = lazyCredential();
  const mappingStore = composeMappingStore(config, options, credential);
  const acsAuth = config.acs.auth;
  const identityClient = createIdentityClient({
    ...(acsAuth.kind === 'connectionString'
      ? { connectionString: acsAuth.connectionString }
      : { endpoint: acsAuth.endpoint, credential: credential() }),
    maxRetries: config.upstream.maxRetries,
    maxRetryWaitMs,
    userAgentPrefix: 'acs-auth-server',
  });
  const keysFetch = ca === undefined ? undefined : jwksFetch(ca);

  const validateToken = createEntraTokenValidator({
    tenantId: config.entra.tenantId,
    audiences: config.entra.audiences,
    issuers: config.entra.issuers,
    jwksUris: config.entra.jwksUris,
    refreshCooldownMs: config.entra.jwksRefreshCooldownMs,
    timeoutMs,
    ...(keysFetch === undefined ? {} : { fetch: keysFetch.fetch }),
  });

  // One Redis connection per process, when configured: shared rate-limit counts and cache deletes. Every use of it
  // falls back to the instance's own state while Redis is down.
  const { sharedState: shared } = config;
  const sharedState = shared.kind === 'redis' ? createRedisSharedState({ ...shared, logger }) : undefined;
  const mappingCache = createMappingCache(config.mappingCache);
  const identities = createIdentityService({
    mappings: mappingStore.store,
    acs: tokenReuseOf(config, sharedState, createAcsIdentityAdapter(identityClient, { timeoutMs })),
    logger,
    teamsClientId: config.entra.teamsClientId,
    mappingCache: sharedState === undefined ? mappingCache : sharedState.mappingCache(mappingCache),
    sealer: mappingSealerOf(config),
  });

  const app = createApp({ config, logger, validateToken, identities, webPage: options.webPage, sharedState });
  return {
    app,
    identities,
    async close() {
      await sharedState?.close();
      await mappingStore.close();
      await keysFetch?.agent.close();
    },
  };
}

/** What `npm run mappings` runs on: the maintenance logic and the connections to release afterwards. */
export interface MappingAdminRuntime {
  readonly maintenance: MappingMaintenance;
  /** The Graph open extension's name (GRAPH_EXTENSION_NAME). */
  readonly extensionName: string;
  /** `copy --to table`: the sealed Graph mappings into that table; undefined without MAPPING_TABLE_*. */
  readonly copy: MappingCopy | undefined;
  close(): Promise<void>;
}

/**
 * The admin command's composition: the same msal, Graph client and sealer as the service (built
 * once, from the same config), with the directory adapter on an app-only Graph token instead of
 * the request pipeline. Needs the application permission User.ReadWrite.All (User.Read.All for audit
 * and copy). The command works on the Graph store's mappings, so it needs MAPPING_STORE=graph and its
 * settings; `copy --to table` also MAPPING_TABLE_* (the table store's client, as the service builds it).
 */
export function composeMappingAdmin(config: Config, options: ComposeOptions): MappingAdminRuntime {
  const { mappings } = config;
  if (mappings.store !== 'graph') {
    throw new ConfigError([
      "MAPPING_STORE is 'table': the mappings command works on the Graph store's mappings (audit, seal, copy --to table); run it with MAPPING_STORE=graph and the Graph store's settings (docs/migrating-between-stores.md)",
    ]);
  }
  const graphAccess = composeGraphAccess(config, mappings.graph, options);
  const { graph, graphTokens } = graphAccess;
  const directory = createGraphMappingDirectory(graph, {
    extensionName: mappings.graph.extensionName,
    baseUrl: mappings.graph.baseUrl,
    appToken: () => graphTokens.forApp(),
  });
  const sealer = graphSealerOf(config, mappings.graph);
  const common = { directory, sealer, tenantId: config.entra.tenantId, extensionName: mappings.graph.extensionName };
  const maintenance = createMappingMaintenance({ ...common, keyIds: mappings.graph.sealKeys.map((key) => key.id) });
  const { table } = mappings;
  const copy =
    table === undefined
      ? undefined
      : createMappingCopy({
          ...common,
          table: composeTableStore(config, table, options, lazyCredential()),
          tableName: table.tableName,
          acsResource: acsResourceOf(config.acs.auth.endpoint),
        });
  return { maintenance, extensionName: mappings.graph.extensionName, copy, close: () => graphAccess.close() };
}

/** The ACS port, with recently issued tokens handed out again when ACS_TOKEN_REUSE_SECONDS allows (services/token-reuse.ts). */
function tokenReuseOf(config: Config, sharedState: SharedState | undefined, acs: AcsIdentities): AcsIdentities {
  const { tokenReuseSeconds } = config.acs;
  if (tokenReuseSeconds === 0) return acs;
  return withTokenReuse(acs, {
    windowMs: tokenReuseSeconds * 1000,
    maxIdentities: Math.max(config.mappingCache.maxEntries, 1_000),
    invalidations: sharedState?.tokenInvalidations,
  });
}
