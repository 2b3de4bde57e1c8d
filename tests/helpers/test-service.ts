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
import { findLeaks, tapResponses, type CapturedResponse } from './secrecy';
import { graphStoreOf } from './store-config';

/** One throwaway CA per test file (each jest worker module registry): every service in it reuses it. */
let certificates: LocalCertificates | undefined;

/**
 * The service under test: the three emulators, and the service composed on them exactly as
 * `npm start` composes it in local mode (same composition root, real SDKs, TLS verification on).
 * Tests drive it over HTTP with supertest and inspect the emulators' state and counters.
 */
export interface TestService {
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
  readonly upstreamCalls: () => { readonly entra: number; readonly graph: number; readonly acs: number; readonly total: number };
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
}

export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
  certificates ??= createLocalCertificates();
  const local = await startLocalAzure({ certificates, ...options.localAzure });
  try {
    return serviceOn(local, options);
  } catch (error) {
    // Settings that do not load or a composition that throws must not leave the emulators listening:
    // their servers would keep the Jest worker alive after its last test.
    await local.close();
    throw error;
  }
}

/** The service composed on running emulators, as `npm start` composes it in local mode. */
function serviceOn(local: LocalAzure, options: TestServiceOptions): TestService {
  const usesCertificate = options.env?.['ENTRA_CLIENT_CERTIFICATE_PATH'] !== undefined;
  const { ENTRA_CLIENT_SECRET: _secret, ...withoutSecret } = local.settings;
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
    ...(usesCertificate ? withoutSecret : local.settings),
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

  return {
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
      return { entra, graph, acs, total: entra + graph + acs };
    },
    async close() {
      try {
        await runtime.close();
      } finally {
        await local.close();
      }
      const leaks = findLeaks({
        logLines: rawLogs,
        responses,
        secrets: [...credentialSecrets(config), local.acs.accessKey, local.acs.connectionString],
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
