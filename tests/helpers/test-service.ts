import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';

import type { Express } from 'express';
import supertest from 'supertest';

import { loadClientCertificate } from '../../src/adapters/entra/client-certificate';
import { composeService, type ServiceRuntime } from '../../src/composition-root';
import { loadConfig, type Config } from '../../src/config/config';
import type { DEMO_USERS } from '../../src/local/local-directory';
import { startLocalAzure, type LocalAzure, type LocalAzureOptions } from '../../src/local/local-azure';
import type { MintAccessTokenOptions } from '../../src/local/entra/entra-emulator';
import { createLogger } from '../../src/observability/logger';
import { createLocalCertificates, type LocalCertificates } from '../../src/local/tls/local-certificate-authority';
import { mappingViewOf, type MappingView } from './mapping-view';
import { findLeaks, tapResponses, type CapturedResponse } from './secrecy';
import { pooledCertificates, pooledRsaKeys } from './key-pool';
import { graphStoreOf } from './store-config';
import { startTableFaultProxy, type TableFaultProxy } from './table-fault-proxy';

/** One throwaway CA per test file (each jest worker module registry): every service in it reuses it. */
let certificates: LocalCertificates | undefined;

/**
 * This test file's certificates: the CA every test service of the file trusts (`local.caCertPem`), and
 * the server certificate its emulators present. For a server a test starts next to them (an Azurite
 * the service's clients must trust).
 */
export function testCertificates(): LocalCertificates {
  return (certificates ??= pooledCertificates() ?? createLocalCertificates());
}

/**
 * The service under test: the three emulators, and the service composed on them exactly as
 * `npm start` composes it in local mode (same composition root, real SDKs, TLS verification on).
 * Tests drive it over HTTP with supertest and inspect the emulators' state and counters.
 */
export interface TestService {
  /** Where the service keeps its mappings (MAPPING_STORE). */
  readonly store: MappingStoreKind;
  /** The mappings as the store holds them, read and written past the service. */
  readonly mappings: MappingView;
  /**
   * The fault-injecting proxy between the service and Azurite (table store only): the service's
   * MAPPING_TABLE_CONNECTION_STRING points at it, so every table request passes it.
   */
  readonly tableProxy: TableFaultProxy | undefined;
  readonly local: LocalAzure;
  readonly runtime: ServiceRuntime;
  readonly app: Express;
  readonly config: Config;
  /** Every log line the service wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Every log line as written (for secrecy checks). */
  readonly rawLogs: string[];
  /** Every response the service sent through `http`. */
  readonly responses: CapturedResponse[];
  readonly http: ReturnType<typeof supertest>;
  /** An access token for this API, for a demo user (v1 with `access_as_user` unless told otherwise). */
  readonly tokenFor: (user?: keyof typeof DEMO_USERS, options?: MintAccessTokenOptions) => Promise<string>;
  /** Requests the emulators have answered so far, per upstream. */
  readonly upstreamCalls: () => {
    readonly entra: number;
    readonly graph: number;
    readonly acs: number;
    /** Requests to the mapping table (table store only; 0 otherwise). */
    readonly storage: number;
    readonly total: number;
  };
  /** Stop everything, then fail if any log line or response leaked a token or secret. */
  readonly close: () => Promise<void>;
}

export interface TestServiceOptions {
  /**
   * Extra settings on top of the emulators' (e.g. UPSTREAM_TIMEOUT_MS). With ENTRA_CLIENT_CERTIFICATE_PATH
   * the emulators' client secret is left out, so the service has the certificate as its only credential
   * (register it with `localAzure: { apiCertificates }`).
   */
  readonly env?: Readonly<Record<string, string>>;
  readonly localAzure?: LocalAzureOptions;
  /** MAPPING_STORE of the service (default graph); `table` starts Azurite and the fault proxy too. */
  readonly store?: MappingStoreKind;
}

export type MappingStoreKind = 'graph' | 'table';

/** Both stores, for suites that run once against each: `describe.each(MAPPING_STORES)('… (%s store)', (store) => …)`. */
export const MAPPING_STORES: readonly MappingStoreKind[] = ['graph', 'table'];

export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  const store = options.store ?? 'graph';
  const local = await startLocalAzure({
    certificates: testCertificates(),
    rsaKeys: pooledRsaKeys,
    mappingStore: store,
    ...options.localAzure,
  });
  let tableProxy: TableFaultProxy | undefined;
  try {
    if (local.tables !== undefined) {
      tableProxy = await startTableFaultProxy({ target: local.tables.url, tls: testCertificates(), caCertPem: local.caCertPem });
    }
    return serviceOn(local, options, tableProxy);
  } catch (error) {
    // Settings that do not load or a composition that throws must not leave the emulators listening:
    // their servers would keep the Jest worker alive after its last test.
    await tableProxy?.close();
    await local.close();
    throw error;
  }
}

/** The service's settings for the emulators: with the table store, the table is reached through the fault proxy. */
function settingsFor(local: LocalAzure, options: TestServiceOptions, tableProxy: TableFaultProxy | undefined): Record<string, string> {
  const usesCertificate = options.env?.['ENTRA_CLIENT_CERTIFICATE_PATH'] !== undefined;
  const { ENTRA_CLIENT_SECRET: _secret, ...withoutSecret } = local.settings;
  const settings = { ...(usesCertificate ? withoutSecret : local.settings) };
  if (tableProxy !== undefined && local.tables !== undefined) {
    settings['MAPPING_TABLE_CONNECTION_STRING'] = local.tables.connectionString.replace(local.tables.url, tableProxy.url);
  }
  return settings;
}

/** The service composed on running emulators, as `npm start` composes it in local mode. */
function serviceOn(local: LocalAzure, options: TestServiceOptions, tableProxy: TableFaultProxy | undefined): TestService {
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    // SDK retries would only slow the fault tests down; the tests that need them turn them on.
    UPSTREAM_MAX_RETRIES: '0',
    UPSTREAM_TIMEOUT_MS: '5000',
    ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS: '0',
    // Suites send hundreds of requests from one address and user; the rate-limit tests turn these back on.
    RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '0',
    RATE_LIMIT_PER_USER_PER_MINUTE: '0',
    ...settingsFor(local, options, tableProxy),
    ...options.env,
  });
  const rawLogs: string[] = [];
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        rawLogs.push(line);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  const logger = createLogger({ level: config.log.level, destination });
  const runtime = composeService(config, { logger, trustedCaPem: local.caCertPem });
  const responses: CapturedResponse[] = [];

  const mappings = mappingViewOf(local, config);

  return {
    store: config.mappings.store,
    mappings,
    tableProxy,
    local,
    runtime,
    app: runtime.app,
    config,
    logs,
    rawLogs,
    responses,
    http: supertest(tapResponses(runtime.app, responses)),
    tokenFor: (user = 'alice', mint = {}) => local.entra.mintAccessToken({ user, ...mint }),
    upstreamCalls() {
      const entra = local.entra.counters.total();
      const graph = local.graph.counters.total();
      const acs = local.acs.counters.total();
      const storage = tableProxy?.seen.length ?? 0;
      return { entra, graph, acs, storage, total: entra + graph + acs + storage };
    },
    async close() {
      try {
        await runtime.close();
      } finally {
        await tableProxy?.close();
        await local.close();
      }
      const leaks = findLeaks({
        logLines: rawLogs,
        responses,
        secrets: [
          ...credentialSecrets(config),
          local.acs.accessKey,
          local.acs.connectionString,
          ...(local.tables === undefined ? [] : [local.tables.accountKey, local.tables.connectionString]),
        ],
      });
      if (leaks.length > 0) throw new Error(`secrets leaked:\n${leaks.slice(0, 20).join('\n')}`);
    },
  };
}

/**
 * What of the API's Entra credential must never be logged or returned: the secret, or each line of the
 * certificate's private key, both as the file holds it (when it is PEM) and as the service holds it
 * (PKCS#8 PEM, also for a .p12 file).
 */
function credentialSecrets(config: Config): string[] {
  // The table store has no Entra credential at all.
  if (config.mappings.store === 'table') return [];
  const { credential } = graphStoreOf(config);
  if (credential.kind === 'secret') return [credential.secret];
  const keyLines = (pem: string): string[] => {
    const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n([\s\S]*?)\r?\n-----END [A-Z ]*PRIVATE KEY-----/.exec(pem);
    // One line at a time: a leaked PEM would show in a JSON log line with its newlines escaped.
    const body = key?.[1];
    return body === undefined ? [] : body.split(/\r?\n/).filter((line) => line.trim() !== '');
  };
  const held = keyLines(loadClientCertificate(credential.path).privateKey);
  if (held.length === 0) throw new Error(`no private key in ${credential.path}`);
  return [...new Set([...keyLines(readFileSync(credential.path, 'latin1')), ...held])];
}

export const ACS_ID = /^8:acs:[0-9a-f-]{36}_[0-9a-f-]{36}$/;

/**
 * One test service for the enclosing `describe` block: started before its first test, closed (and
 * checked for leaked secrets) after its last. The returned object stands for the running service.
 */
export function useTestService(options: TestServiceOptions = {}): TestService {
  let current: TestService | undefined;
  let starting: Promise<TestService> | undefined;
  beforeAll(async () => {
    starting = startTestService(options);
    current = await starting;
  });
  afterAll(async () => {
    // The start itself, not `current`: a start that outlived beforeAll's timeout is still closed when it ends.
    const started = await starting?.catch(() => undefined);
    await started?.close();
  });
  const running = (): TestService => {
    if (current === undefined) throw new Error('the test service is used outside a test of its describe block');
    return current;
  };
  // Every member of TestService is a plain value or a closure (its functions are properties, never
  // methods that need `this`), so forwarding property reads is enough.
  return new Proxy({} as TestService, { get: (_target, property): unknown => Reflect.get(running(), property) as unknown });
}
