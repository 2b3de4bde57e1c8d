import { randomBytes } from 'node:crypto';

import { createAcsEmulator, type AcsEmulator } from './acs/acs-emulator';
import { startAzuriteTables, type AzuriteTables } from './azurite/azurite-tables';
import type { AcsOperation, OperationLimit } from './acs/rate-limiter';
import { createEntraEmulator, type EntraEmulator, type RegisteredApplication } from './entra/entra-emulator';
import { SigningKeySet } from './entra/signing-keys';
import type { RsaKeySource } from './kit/rsa-keys';
import { createGraphEmulator, type GraphEmulator } from './graph/graph-emulator';
import { LOCAL_API_CLIENT_ID, LOCAL_SPA_CLIENT_ID, LOCAL_TENANT_ID, type DemoUser } from './local-directory';
import { generateLocalCertificates, type LocalCertificates } from './tls/local-certificate-authority';

/**
 * "Local Azure": the Entra ID, Microsoft Graph and ACS Identity emulators started together and
 * registered the way a real deployment is (this API with a secret and its Graph permissions, a
 * client app for the users), plus the settings that point the service at them.
 *
 * The service then runs its normal code path on these settings; only the endpoints, the authority
 * and the CA its clients trust differ from production.
 */
export interface LocalAzureOptions {
  /** Fixed ports (0 picks free ones, which is what tests use). */
  readonly ports?: { readonly entra?: number; readonly graph?: number; readonly acs?: number };
  /** Reuse certificates (tests start many emulators; making a CA costs a few hundred milliseconds). */
  readonly certificates?: LocalCertificates;
  /** Graph throttle; Graph's own 455 requests per 10 s per app by default. */
  readonly graphThrottle?: { readonly limit?: number; readonly windowMs?: number };
  /** ACS request limits per operation (the documented limits otherwise); the benchmark lifts them. */
  readonly acsLimits?: Partial<Record<AcsOperation, OperationLimit>>;
  /** ACS identity tokens live this many seconds whatever was asked (tests that watch a client refresh). */
  readonly acsTokenLifetimeSeconds?: number;
  /** Where the Entra and ACS token-signing keys come from: fresh by default; tests hand out keys made in advance. */
  readonly rsaKeys?: RsaKeySource;
  /** Users of the Entra tenant (default: the demo users); the benchmark adds thousands. */
  readonly users?: readonly DemoUser[];
  /**
   * Certificates (PEM, public part) uploaded to the API's app registration besides its secret, so the
   * service can authenticate with ENTRA_CLIENT_CERTIFICATE_PATH instead (see `createClientCertificate`).
   */
  readonly apiCertificates?: readonly string[];
  /**
   * Where the service keeps its mappings (MAPPING_STORE): `graph` (default) in the Graph emulator;
   * `table` in Azurite's Table service, which then starts too, and the settings name no Entra
   * credential, Graph endpoint or seal key (the table store needs none).
   */
  readonly mappingStore?: 'graph' | 'table';
  /**
   * Redirect URIs of the sample SPA's Single-page application platform (LOCAL_SPA_CLIENT_ID), where the Entra
   * emulator sends sign-ins; default {@link DEFAULT_SPA_REDIRECT_URIS}. As in Entra, the port of a loopback
   * redirect URI is not compared.
   */
  readonly spaRedirectUris?: readonly string[];
  /**
   * Let browsers sign in: the Entra emulator also listens on plain http on loopback (a browser cannot trust the
   * throwaway CA), `port` 0 or absent picking a free one. The service keeps reaching Entra over https.
   */
  readonly browserSignIn?: { readonly port?: number };
}

/** Where the sample SPA is served in local mode: the service's own origin, by either loopback name. */
export const DEFAULT_SPA_REDIRECT_URIS: readonly string[] = Object.freeze(['http://localhost:5000/', 'http://127.0.0.1:5000/']);

export interface LocalAzure {
  readonly entra: EntraEmulator;
  readonly graph: GraphEmulator;
  readonly acs: AcsEmulator;
  /** Azurite's Table service, when the mappings are kept in a table (`mappingStore: 'table'`). */
  readonly tables: AzuriteTables | undefined;
  /** PEM of the throwaway CA that signed the https emulators' certificate. */
  readonly caCertPem: string;
  /**
   * Environment settings that point the service at the emulators: with the Graph store, a fresh client
   * secret and seal key; with the table store, Azurite's connection string (a fresh account key) instead.
   */
  readonly settings: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

export async function startLocalAzure(options: LocalAzureOptions = {}): Promise<LocalAzure> {
  // RSA key generation is most of the start-up time: the CA's, the TLS server's and the token signing
  // keys are made at once, off the main thread.
  const [certificates, keys] = await Promise.all([
    options.certificates ?? generateLocalCertificates(),
    SigningKeySet.create(options.rsaKeys),
  ]);
  const tls = { certPem: certificates.certPem, keyPem: certificates.keyPem };
  // A new secret every start: local mode never ships a fixed credential anyone could copy.
  const clientSecret = randomBytes(24).toString('base64url');
  // Likewise the mapping seal key: mappings sealed in one local run are not trusted by another.
  const sealKeys = `local:${randomBytes(32).toString('base64')}`;

  const entra = await createEntraEmulator({
    tls,
    keys,
    tenantId: LOCAL_TENANT_ID,
    port: options.ports?.entra ?? 0,
    ...(options.browserSignIn ? { browserHttp: { port: options.browserSignIn.port ?? 0 } } : {}),
    ...(options.users ? { users: options.users } : {}),
    applications: [apiRegistration(clientSecret, options.apiCertificates), sampleSpaRegistration(options.spaRedirectUris)],
  });
  const started: Closable[] = [entra];
  try {
    // Together: the ACS emulator makes its own token signing key meanwhile.
    const graphStarting = createGraphEmulator({
      tls,
      keys,
      tenantId: LOCAL_TENANT_ID,
      port: options.ports?.graph ?? 0,
      ...(options.graphThrottle ? { throttle: options.graphThrottle } : {}),
    });
    const acsStarting = createAcsEmulator({
      entraKeys: keys,
      entraTenantId: LOCAL_TENANT_ID,
      entraIssuers: [entra.issuerV2],
      port: options.ports?.acs ?? 0,
      ...(options.acsLimits ? { limits: options.acsLimits } : {}),
      ...(options.acsTokenLifetimeSeconds === undefined ? {} : { tokenLifetimeSeconds: options.acsTokenLifetimeSeconds }),
      ...(options.rsaKeys === undefined ? {} : { rsaKeys: options.rsaKeys }),
    });
    // Azurite (a child process) only for the table store: the Graph store never reads it.
    const tablesStarting = options.mappingStore === 'table' ? startAzuriteTables({ tls }) : undefined;
    await settleStarts(started, tablesStarting === undefined ? [graphStarting, acsStarting] : [graphStarting, acsStarting, tablesStarting]);
    const [graph, acs, tables] = [await graphStarting, await acsStarting, await tablesStarting];
    const common = {
      ENTRA_TENANT_ID: LOCAL_TENANT_ID,
      ENTRA_CLIENT_ID: LOCAL_API_CLIENT_ID,
      ENTRA_AUTHORITY_HOST: entra.url,
      ACS_CONNECTION_STRING: acs.connectionString,
      // Teams users' tokens are the sample SPA's (it signs them in), whether from the CLI or a browser.
      TEAMS_CLIENT_ID: LOCAL_SPA_CLIENT_ID,
    };

    return {
      entra,
      graph,
      acs,
      tables,
      caCertPem: certificates.caCertPem,
      settings: Object.freeze(
        tables === undefined
          ? { ...common, ENTRA_CLIENT_SECRET: clientSecret, GRAPH_BASE_URL: graph.url, MAPPING_SEAL_KEYS: sealKeys }
          : { ...common, MAPPING_STORE: 'table', MAPPING_TABLE_CONNECTION_STRING: tables.connectionString },
      ),
      close: () => closeAll(started),
    };
  } catch (error) {
    await closeAll(started);
    throw error;
  }
}

/**
 * The sample SPA's app registration: the public client Teams users sign in to, so an admin granted it the ACS Teams
 * permissions, as a real deployment's client app needs them to get its users' Teams tokens for ACS.
 */
/** This API's registration: its secret (and certificates), the Graph permissions it holds, the scope it exposes. */
function apiRegistration(clientSecret: string, certificates: readonly string[] | undefined): RegisteredApplication {
  return {
    clientId: LOCAL_API_CLIENT_ID,
    clientSecret,
    ...(certificates ? { certificates: certificates.map((certPem) => ({ certPem })) } : {}),
    displayName: 'acs-auth-server (local)',
    graphDelegatedScopes: ['User.Read', 'User.ReadWrite'],
    graphApplicationRoles: ['User.ReadWrite.All'],
    exposedScopes: ['access_as_user'],
  };
}

function sampleSpaRegistration(redirectUris: readonly string[] = DEFAULT_SPA_REDIRECT_URIS): RegisteredApplication {
  return {
    clientId: LOCAL_SPA_CLIENT_ID,
    displayName: 'Sample client app (local)',
    spa: { redirectUris },
    acsDelegatedScopes: ['Teams.ManageCalls', 'Teams.ManageChats'],
  };
}

/**
 * Waits for servers starting at once and adds each one that started to `started`, so that when one
 * fails the caller still closes the others; then rethrows the first failure.
 */
async function settleStarts(started: Closable[], starting: readonly Promise<Closable>[]): Promise<void> {
  const outcomes = await Promise.allSettled(starting);
  for (const outcome of outcomes) if (outcome.status === 'fulfilled') started.push(outcome.value);
  const failure = outcomes.find((outcome) => outcome.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
}

interface Closable {
  close(): Promise<void>;
}

async function closeAll(servers: readonly Closable[]): Promise<void> {
  await Promise.allSettled([...servers].reverse().map((server) => server.close()));
}
