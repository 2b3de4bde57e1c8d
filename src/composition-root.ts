/**
 * The composition root: the one place that builds each SDK client (once per process) and wires the
 * adapters, the service and the app together. Production and local mode run exactly this code;
 * local mode only passes the emulators' CA, which these clients (and no others) then trust.
 *
 * @packageDocumentation
 */

import { DefaultAzureCredential } from '@azure/identity';
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
import { createMappingMaintenance, type MappingMaintenance } from './admin/mapping-maintenance';
import { createApp } from './app';
import { createEntraTokenValidator } from './auth/entra-token-validator';
import type { Config, EntraCredential } from './config/config';
import type { Logger } from './observability/logger';
import { createIdentityService, type IdentityService } from './services/identity-service';
import { createMappingCache } from './services/mapping-cache';
import { mappingSealerOf } from './services/mapping-seal';
import type { GraphTokenSource } from './services/ports';

/** What the composition root takes besides the config: where to log, and the local CA if any. */
export interface ComposeOptions {
  readonly logger: Logger;
  /** PEM of a CA the upstream clients trust for the local emulators. Never set in production. */
  readonly trustedCaPem?: string;
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

function composeGraphAccess(config: Config, options: ComposeOptions): GraphAccess {
  const { logger } = options;
  const ca = options.trustedCaPem;
  const timeoutMs = config.upstream.timeoutMs;

  const msalNetwork = createMsalNetworkClient({ timeoutMs, ...(ca === undefined ? {} : { ca }) });
  const msal = createMsalClient({
    networkClient: msalNetwork,
    authorityHost: config.entra.authorityHost,
    tenantId: config.entra.tenantId,
    clientId: config.entra.clientId,
    ...msalCredential(config.entra.credential),
    timeoutMs,
    logger: (level, message) => logger[level === 'error' ? 'error' : 'warn']({ component: 'msal' }, message),
  });
  const graph = createGraphClient({
    baseUrl: config.graph.baseUrl,
    timeoutMs,
    maxRetries: config.upstream.maxRetries,
    maxRetryWaitMs: retryWaitBudgetMs(timeoutMs),
    ...(ca === undefined ? {} : { ca }),
  });
  const graphTokens = createGraphTokenSource(msal, {
    clientId: config.entra.clientId,
    oboScopes: config.graph.oboScopes,
    appScope: config.graph.appScope,
    timeoutMs,
    cacheMaxEntries: config.oboCacheMaxEntries,
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

export function composeService(config: Config, options: ComposeOptions): ServiceRuntime {
  const { logger } = options;
  const ca = options.trustedCaPem;
  const timeoutMs = config.upstream.timeoutMs;
  const maxRetryWaitMs = retryWaitBudgetMs(timeoutMs);
  const graphAccess = composeGraphAccess(config, options);
  const acsAuth = config.acs.auth;
  const identityClient = createIdentityClient({
    ...(acsAuth.kind === 'connectionString'
      ? { connectionString: acsAuth.connectionString }
      : { endpoint: acsAuth.endpoint, credential: new DefaultAzureCredential() }),
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

  const identities = createIdentityService({
    graphTokens: graphAccess.graphTokens,
    mappings: createGraphMappingStore(graphAccess.graph, { extensionName: config.graph.extensionName }),
    acs: createAcsIdentityAdapter(identityClient, { timeoutMs }),
    logger,
    teamsClientId: config.entra.teamsClientId,
    mappingCache: createMappingCache(config.mappingCache),
    sealer: mappingSealerOf(config),
  });

  const app = createApp({ config, logger, validateToken, identities });
  return {
    app,
    identities,
    async close() {
      await graphAccess.close();
      await keysFetch?.agent.close();
    },
  };
}

/** What `npm run mappings` runs on: the maintenance logic and the connections to release afterwards. */
export interface MappingAdminRuntime {
  readonly maintenance: MappingMaintenance;
  close(): Promise<void>;
}

/**
 * The admin command's composition: the same msal, Graph client and sealer as the service (built
 * once, from the same config), with the directory adapter on an app-only Graph token instead of
 * the request pipeline. Needs the application permission User.ReadWrite.All (User.Read.All for audit).
 */
export function composeMappingAdmin(config: Config, options: ComposeOptions): MappingAdminRuntime {
  const graphAccess = composeGraphAccess(config, options);
  const { graph, graphTokens } = graphAccess;
  const directory = createGraphMappingDirectory(graph, {
    extensionName: config.graph.extensionName,
    baseUrl: config.graph.baseUrl,
    appToken: () => graphTokens.forApp(),
  });
  const maintenance = createMappingMaintenance({
    directory,
    sealer: mappingSealerOf(config),
    tenantId: config.entra.tenantId,
    extensionName: config.graph.extensionName,
    keyIds: config.mappingSeal.keys.map((key) => key.id),
  });
  return { maintenance, close: () => graphAccess.close() };
}
