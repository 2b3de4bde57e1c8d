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
import { createGraphClient } from './adapters/graph/graph-client';
import { createGraphMappingStore } from './adapters/graph/graph-mapping-store';
import { createApp } from './app';
import { createEntraTokenValidator } from './auth/entra-token-validator';
import type { Config, EntraCredential } from './config/config';
import type { Logger } from './observability/logger';
import { createIdentityService, type IdentityService } from './services/identity-service';
import { createMappingCache } from './services/mapping-cache';
import { acsResourceOf, createMappingSealer } from './services/mapping-seal';

/**
 * The composition root: the one place that builds each SDK client (once per process) and wires the
 * adapters, the service and the app together. Production and local mode run exactly this code;
 * local mode only passes the emulators' CA, which these clients (and no others) then trust.
 */
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

export function composeService(config: Config, options: ComposeOptions): ServiceRuntime {
  const { logger } = options;
  const ca = options.trustedCaPem;
  const timeoutMs = config.upstream.timeoutMs;
  // Waiting out a Retry-After inside a request only makes sense well within its deadline.
  const maxRetryWaitMs = Math.min(2000, Math.floor(timeoutMs / 4));

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
    maxRetryWaitMs,
    ...(ca === undefined ? {} : { ca }),
  });
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
    graphTokens: createGraphTokenSource(msal, {
      clientId: config.entra.clientId,
      oboScopes: config.graph.oboScopes,
      appScope: config.graph.appScope,
      timeoutMs,
      cacheMaxEntries: config.oboCacheMaxEntries,
    }),
    mappings: createGraphMappingStore(graph, { extensionName: config.graph.extensionName }),
    acs: createAcsIdentityAdapter(identityClient, { timeoutMs }),
    logger,
    teamsClientId: config.entra.teamsClientId,
    mappingCache: createMappingCache(config.mappingCache),
    sealer: createMappingSealer(config.mappingSeal.keys, acsResourceOf(acsAuth.endpoint)),
  });

  const app = createApp({ config, logger, validateToken, identities });
  return {
    app,
    identities,
    async close() {
      msalNetwork.destroy();
      await graph.close();
      await keysFetch?.agent.close();
    },
  };
}
