import { spawn, type ChildProcess } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';

import { TableServiceClient } from '@azure/data-tables';

import { SECRET_SETTING_NAMES } from '../../src/config/config';
import { startManagedIdentityEndpoint, type ManagedIdentityEndpoint } from '../../src/local/app-service/managed-identity-endpoint';
import { startAzuriteTables, type AzuriteTables } from '../../src/local/azurite/azurite-tables';
import { startLocalAzure, type LocalAzure } from '../../src/local/local-azure';
import { LOCAL_API_CLIENT_ID, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { createLocalCertificates, type LocalCertificates } from '../../src/local/tls/local-certificate-authority';
import { useTempFolder } from '../helpers/temp-files';

/**
 * The secretless deployment, end to end: the service with MAPPING_STORE=table and MAPPING_TABLE_ENDPOINT
 * (no table connection string, no Entra secret, no seal key) reaches the table as it does on App
 * Service: DefaultAzureCredential finds no EnvironmentCredential or WorkloadIdentityCredential settings,
 * and its ManagedIdentityCredential (msal-node's AppService source, picked by IDENTITY_ENDPOINT and
 * IDENTITY_HEADER) gets a v1 Entra token for https://storage.azure.com from the App Service endpoint
 * emulator, which it presents as a bearer token to Azurite running with OAuth on.
 *
 * The service runs in a child process started with only the settings App Service would give it, so
 * nothing of this process (its environment, a credential already made) helps it; the CA of the
 * emulators is trusted with NODE_EXTRA_CA_CERTS, as a deployment trusts its CAs. A recording proxy in
 * front of Azurite shows what authorisation reached the table.
 */

const ROOT = resolve(__dirname, '../..');
const STORAGE = 'https://storage.azure.com';

/** The child: the service through `startService`, as `main.ts` starts it; its port over IPC; stops when told. */
const CHILD_SCRIPT = `
require('ts-node').register({ transpileOnly: true, compilerOptions: { module: 'commonjs', moduleResolution: 'node' } });
const { startService } = require(${JSON.stringify(join(ROOT, 'src/server.ts'))});
(async () => {
  const service = await startService(process.env);
  process.on('message', () => service.stop().then(() => process.exit(0), () => process.exit(1)));
  process.send({ port: service.server.address().port });
})().catch((error) => { process.stderr.write(String((error && error.stack) || error)); process.exit(1); });
`;

const START_DEADLINE_MS = 60_000;
const OUTPUT_TAIL_CHARS = 8_000;

interface RunningChild {
  /** `http://127.0.0.1:<port>` (the child binds loopback only: HOST=127.0.0.1). */
  readonly url: string;
  /** The last few thousand characters the child wrote (its log), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

function startChild(env: Readonly<Record<string, string>>): Promise<RunningChild> {
  const child = spawn(process.execPath, ['-e', CHILD_SCRIPT], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => fail('no answer in time'), START_DEADLINE_MS);
    const fail = (reason: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`the service did not start: ${reason}\n${tail}`));
    };
    child.once('exit', (code, signal) => fail(`it exited (${signal ?? `code ${String(code)}`})`));
    child.once('message', (message: { port?: unknown }) => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolvePromise({ url: `http://127.0.0.1:${String(message.port)}`, output: () => tail, stop: () => stopChild(child) });
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolvePromise();
    });
    child.send('stop');
  });
}

/** What reached the table: the scheme of the Authorization header (`Bearer`, `SharedKey`, or none) and a bearer token. */
interface TableRequest {
  readonly method: string;
  readonly path: string;
  readonly scheme: string;
  readonly token: string | undefined;
}

interface RecordingProxy {
  /** Azurite's path layout (`https://127.0.0.1:PORT/<account>`), so only the endpoint changes. */
  readonly url: string;
  readonly seen: readonly TableRequest[];
  close(): Promise<void>;
}

/** An https reverse proxy in front of Azurite that records each request's authorisation, then forwards it unchanged. */
async function startRecordingProxy(target: string, certificates: LocalCertificates): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const seen: TableRequest[] = [];
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const [scheme = '', token] = (req.headers.authorization ?? '').split(' ');
    seen.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0] ?? '', scheme, token });
    const outgoing = httpsRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
        ca: certificates.caCertPem,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    outgoing.on('error', () => res.destroy());
    req.pipe(outgoing);
  };
  const server: Server = createServer({ cert: certificates.certPem, key: certificates.keyPem }, forward);
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}${upstream.pathname}`,
    seen,
    close: () =>
      new Promise<void>((closed) => {
        server.close(() => closed());
        server.closeAllConnections();
      }),
  };
}

let certificates: LocalCertificates;
let local: LocalAzure;
let azurite: AzuriteTables;
let proxy: RecordingProxy;
let identity: ManagedIdentityEndpoint;
const temp = useTempFolder('secretless-');

/**
 * Exactly what App Service gives the app in the secretless deployment, plus where the emulators are.
 * ACS_CONNECTION_STRING is the one secret: the ACS emulator speaks plain http and checks HMAC access
 * keys only, and a TokenCredential is sent over https only. In Azure the template sets ACS_ENDPOINT
 * instead and the same managed identity reaches ACS (tests/deploy checks that template).
 * HOST=127.0.0.1 keeps the child on loopback, and HOME an empty folder, so that DefaultAzureCredential's
 * developer credentials (Azure CLI, azd, PowerShell, VS Code) find no sign-in on this machine if the
 * managed identity fails: neither is a secret, and App Service sets HOME too.
 */
function appServiceSettings(identityHeader: string): Record<string, string> {
  return {
    NODE_ENV: 'production',
    PORT: '0',
    HOST: '127.0.0.1',
    HOME: temp.folder(),
    ENTRA_TENANT_ID: LOCAL_TENANT_ID,
    ENTRA_CLIENT_ID: LOCAL_API_CLIENT_ID,
    ENTRA_AUTHORITY_HOST: local.entra.url,
    ACS_CONNECTION_STRING: local.acs.connectionString,
    MAPPING_STORE: 'table',
    MAPPING_TABLE_ENDPOINT: proxy.url,
    IDENTITY_ENDPOINT: identity.url,
    IDENTITY_HEADER: identityHeader,
    // As the ARM template sets it: DefaultAzureCredential uses the managed identity and nothing else.
    AZURE_TOKEN_CREDENTIALS: 'ManagedIdentityCredential',
    NODE_EXTRA_CA_CERTS: temp.path('ca.pem'),
  };
}

beforeAll(async () => {
  certificates = createLocalCertificates();
  // The Entra ID emulator issues the callers' tokens and signs the managed identity's; ACS makes the identities.
  [local, azurite] = await Promise.all([
    startLocalAzure({ certificates, mappingStore: 'graph' }),
    startAzuriteTables({ tls: { certPem: certificates.certPem, keyPem: certificates.keyPem }, oauth: true }),
  ]);
  temp.file('ca.pem', certificates.caCertPem);
  proxy = await startRecordingProxy(azurite.url, certificates);
  identity = await startManagedIdentityEndpoint({ entra: local.entra });
}, 60_000);

afterAll(async () => {
  await identity?.close();
  await proxy?.close();
  await azurite?.close();
  await local?.close();
});

async function call(service: RunningChild, method: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = await local.entra.mintAccessToken({ user: 'alice' });
  const response = await fetch(`${service.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

describe('the service on a managed identity only (MAPPING_STORE=table, MAPPING_TABLE_ENDPOINT)', () => {
  let service: RunningChild;
  let settings: Record<string, string>;
  const answers: Record<string, { status: number; body: Record<string, unknown> }> = {};

  beforeAll(async () => {
    settings = appServiceSettings(identity.identityHeader);
    service = await startChild(settings);
    // The README flow, one step after another.
    answers['create'] = await call(service, 'POST', '/api/user');
    answers['read'] = await call(service, 'GET', '/api/user');
    answers['token'] = await call(service, 'GET', '/api/token');
    answers['delete'] = await call(service, 'DELETE', '/api/user');
    answers['readAfterDelete'] = await call(service, 'GET', '/api/user');
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
  });

  it('serves the flow: create 201, read 200 (the same identity), token 201, delete 204, then read 404', () => {
    const id = answers['create']?.body['acsUserIdentity'];
    expect(typeof id).toBe('string');
    expect(answers['create']?.status).toBe(201);
    expect(answers['read']).toEqual({ status: 200, body: { acsUserIdentity: id } });
    expect(answers['token']).toMatchObject({ status: 201, body: { user: { communicationUserId: id } } });
    expect(answers['delete']?.status).toBe(204);
    expect(answers['readAfterDelete']).toMatchObject({ status: 404, body: { code: 'identity_not_found' } });
  });

  it('asked the managed-identity endpoint for https://storage.azure.com only, and only once or twice (the token is cached)', () => {
    const asked = identity.requests.filter((request) => request.status === 200);
    expect(asked.length).toBeGreaterThanOrEqual(1);
    expect(asked.length).toBeLessThanOrEqual(2);
    expect(new Set(identity.requests.map((request) => request.resource))).toEqual(new Set([STORAGE]));
  });

  it("reached the table with bearer tokens only, the managed identity's v1 token for Azure Storage (no SharedKey)", async () => {
    expect(proxy.seen.length).toBeGreaterThan(0);
    expect(new Set(proxy.seen.map((request) => request.scheme))).toEqual(new Set(['Bearer']));
    for (const token of new Set(proxy.seen.map((request) => request.token ?? ''))) {
      const claims = await local.entra.keys.verify(token, { issuer: local.entra.issuerV1, audience: STORAGE });
      expect(claims).toMatchObject({ appid: identity.clientId, oid: identity.principalId, sub: identity.principalId, idtyp: 'app' });
    }
    // What the service wrote is in Azurite: the table it made with that token, seen with the account key.
    const tables = TableServiceClient.fromConnectionString(azurite.connectionString, { tlsOptions: { ca: certificates.caCertPem } });
    const names: string[] = [];
    for await (const table of tables.listTables()) names.push(table.name ?? '');
    expect(names).toContain('AcsIdentityMappings');
  });

  it('ran with no secret setting but ACS_CONNECTION_STRING, and never asked Entra ID for a token (no On-Behalf-Of, no Graph)', () => {
    // ACS stays on its connection string here only because the ACS emulator is http and speaks HMAC (see appServiceSettings).
    expect(Object.keys(settings).filter((name) => SECRET_SETTING_NAMES.includes(name))).toEqual(['ACS_CONNECTION_STRING']);
    const values = Object.values(settings).join('\n');
    expect(values).not.toContain(azurite.accountKey);
    expect(values).not.toContain(local.settings['ENTRA_CLIENT_SECRET']);
    expect(local.entra.counters.get('token')).toBe(0);
  });
});

describe('the service when the managed identity is refused (a wrong IDENTITY_HEADER)', () => {
  let service: RunningChild;
  let answer: { status: number; body: Record<string, unknown> };
  let identityRequestsBefore: number;
  let tableRequestsBefore: number;

  beforeAll(async () => {
    identityRequestsBefore = identity.requests.length;
    tableRequestsBefore = proxy.seen.length;
    service = await startChild(appServiceSettings(`${identity.identityHeader}-wrong`));
    answer = await call(service, 'GET', '/api/user');
  }, 120_000);

  afterAll(async () => {
    await service?.stop();
  });

  it('was refused by the endpoint (401), got no token, and so never sent the table a request', () => {
    const requests = identity.requests.slice(identityRequestsBefore);
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.every((request) => request.status === 401 && request.resource === STORAGE)).toBe(true);
    expect(proxy.seen.slice(tableRequestsBefore)).toEqual([]);
  });

  it("answers 502 upstream_error, the deployment's fault: not a 401 or 403 that would blame the caller, nor a 503 that invites retries", () => {
    // DefaultAzureCredential throws AggregateAuthenticationError (not a RestError): the store was never
    // contacted (above), and retrying cannot help until the identity is fixed, as with the store's own 401/403.
    expect(answer).toMatchObject({ status: 502, body: { code: 'upstream_error' } });
  });
});
