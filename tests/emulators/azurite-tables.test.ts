import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenCredential } from '@azure/core-auth';
import {
  AzureNamedKeyCredential,
  odata,
  RestError,
  TableClient,
  TableServiceClient,
  type TableServiceClientOptions,
} from '@azure/data-tables';
import { LOCAL_TABLE_ACCOUNT, startAzuriteTables, type AzuriteTables } from '../../src/local/azurite/azurite-tables';
import { generateLocalCertificates, type LocalCertificates } from '../../src/local/tls/local-certificate-authority';
import { startTableFaultProxy, type TableFaultProxy } from '../helpers/table-fault-proxy';

/**
 * Azurite's Table service as the launcher starts it, driven by the real @azure/data-tables SDK over
 * verified TLS: what the table mapping store may rely on (status codes, error codes, etags,
 * transactions, SharedKey and bearer checks), and the fault proxy the store's failure tests use.
 */

const PROJECT_ROOT = join(__dirname, '..', '..');
// Azurite's public development key: a launched Azurite must not accept it.
const WELL_KNOWN_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

let certificates: LocalCertificates;
let azurite: AzuriteTables;

beforeAll(async () => {
  certificates = await generateLocalCertificates();
  azurite = await startAzuriteTables({ tls: certificates });
});

afterAll(async () => {
  await azurite.close();
});

/** Client options that trust the local CA; TLS verification stays on. */
function trusted(extra: TableServiceClientOptions = {}): TableServiceClientOptions {
  return { tlsOptions: { ca: certificates.caCertPem }, ...extra };
}

const NO_RETRIES = { retryOptions: { maxRetries: 0 } } as const;
const QUICK_RETRIES = { retryOptions: { maxRetries: 3, retryDelayInMs: 10, maxRetryDelayInMs: 50 } } as const;

function uniqueName(): string {
  return `t${randomBytes(6).toString('hex')}`;
}

/** A new table, and a client for it over the connection string. */
async function newTable(options: TableServiceClientOptions = {}): Promise<TableClient> {
  const name = uniqueName();
  await TableServiceClient.fromConnectionString(azurite.connectionString, trusted()).createTable(name);
  return TableClient.fromConnectionString(azurite.connectionString, name, trusted(options));
}

/** The storage error code as the SDK exposes it for single-entity operations (RestError.code stays undefined). */
function storageErrorCode(error: unknown): string | undefined {
  if (!(error instanceof RestError)) return undefined;
  return (error.details as { errorCode?: string } | undefined)?.errorCode;
}

async function rejection(promise: Promise<unknown>): Promise<RestError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(RestError);
  return error as RestError;
}

/** An unsigned but well-formed JWT: Azurite's `--oauth basic` reads the claims and checks no signature. */
function unsignedJwt(claims: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.${randomBytes(32).toString('base64url')}`;
}

function bearer(token: string): TokenCredential {
  return { getToken: () => Promise.resolve({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) };
}

/** True while the process exists and is not a zombie waiting for a parent to reap it. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return true;
  const state = readFileSync(stat, 'utf8').split(') ')[1]?.[0];
  return state !== 'Z';
}

/** Poll until `condition` holds; throws after about ten seconds. */
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the condition did not hold within ten seconds');
}

describe('startAzuriteTables', () => {
  it('serves the account on loopback over https, with a fresh random 64-byte key', () => {
    expect(azurite.url).toMatch(new RegExp(`^https://127\\.0\\.0\\.1:\\d+/${LOCAL_TABLE_ACCOUNT}$`));
    expect(azurite.accountName).toBe(LOCAL_TABLE_ACCOUNT);
    expect(Buffer.from(azurite.accountKey, 'base64')).toHaveLength(64);
    expect(azurite.accountKey).not.toBe(WELL_KNOWN_KEY);
    expect(azurite.connectionString).toBe(
      `DefaultEndpointsProtocol=https;AccountName=${LOCAL_TABLE_ACCOUNT};AccountKey=${azurite.accountKey};TableEndpoint=${azurite.url};`,
    );
  });

  it('gives the key to the child over IPC, not in its command line or environment', () => {
    const proc = `/proc/${azurite.pid}`;
    if (!existsSync(proc)) return;
    expect(readFileSync(`${proc}/cmdline`, 'utf8')).not.toContain(azurite.accountKey);
    expect(readFileSync(`${proc}/environ`, 'utf8')).not.toContain(azurite.accountKey);
    expect(readFileSync(`${proc}/environ`, 'utf8')).not.toContain(certificates.keyPem.split('\n')[1]);
  });

  it('is trusted through the client option tlsOptions.ca, and refused without it (verification stays on)', async () => {
    const name = uniqueName();
    await TableServiceClient.fromConnectionString(azurite.connectionString, trusted()).createTable(name);

    const untrusting = TableClient.fromConnectionString(azurite.connectionString, name, NO_RETRIES);
    const error = await rejection(untrusting.getEntity('p', 'r'));
    expect(error.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });
});

describe('entities through the SDK', () => {
  it('creates a table, inserts, gets and lists entities', async () => {
    const table = await newTable();
    await table.createEntity({ partitionKey: 'users', rowKey: 'alice', acsUserId: '8:acs:one' });
    await table.createEntity({ partitionKey: 'users', rowKey: 'bob', acsUserId: '8:acs:two' });
    await table.createEntity({ partitionKey: 'others', rowKey: 'carol', acsUserId: '8:acs:three' });

    const alice = await table.getEntity<{ acsUserId: string }>('users', 'alice');
    expect(alice).toMatchObject({ partitionKey: 'users', rowKey: 'alice', acsUserId: '8:acs:one' });
    expect(alice.etag).toMatch(/^W\/"datetime'.+'"$/);

    const listed: string[] = [];
    for await (const entity of table.listEntities({ queryOptions: { filter: odata`PartitionKey eq ${'users'}` } })) {
      listed.push(entity.rowKey ?? '');
    }
    expect(listed.sort()).toEqual(['alice', 'bob']);
  });

  it('refuses a duplicate insert with 409 EntityAlreadyExists, in details.errorCode (RestError.code is undefined)', async () => {
    const table = await newTable();
    await table.createEntity({ partitionKey: 'p', rowKey: 'r' });

    const error = await rejection(table.createEntity({ partitionKey: 'p', rowKey: 'r' }));
    expect(error.statusCode).toBe(409);
    expect(error.code).toBeUndefined();
    expect(storageErrorCode(error)).toBe('EntityAlreadyExists');
    expect(error.response?.headers.get('x-ms-error-code')).toBe('EntityAlreadyExists');
    expect(error.details).toMatchObject({ odataError: { code: 'EntityAlreadyExists' } });
  });

  it('refuses an update or a delete with a stale etag: 412 UpdateConditionNotSatisfied', async () => {
    const table = await newTable();
    const created = await table.createEntity({ partitionKey: 'p', rowKey: 'r', version: 1 });
    const updated = await table.updateEntity({ partitionKey: 'p', rowKey: 'r', version: 2 }, 'Replace', { etag: created.etag });
    expect(updated.etag).not.toBe(created.etag);

    const staleUpdate = await rejection(
      table.updateEntity({ partitionKey: 'p', rowKey: 'r', version: 3 }, 'Replace', { etag: created.etag }),
    );
    const staleDelete = await rejection(table.deleteEntity('p', 'r', { etag: created.etag }));
    for (const error of [staleUpdate, staleDelete]) {
      expect(error.statusCode).toBe(412);
      expect(storageErrorCode(error)).toBe('UpdateConditionNotSatisfied');
    }
    await expect(table.getEntity('p', 'r')).resolves.toMatchObject({ version: 2 });
  });

  it('answers a missing entity with 404 ResourceNotFound', async () => {
    const table = await newTable();
    const error = await rejection(table.getEntity('p', 'missing'));
    expect(error.statusCode).toBe(404);
    expect(storageErrorCode(error)).toBe('ResourceNotFound');
  });

  it('applies a transaction atomically: when one operation fails, neither row lands', async () => {
    const table = await newTable();
    await table.createEntity({ partitionKey: 'p', rowKey: 'taken' });

    const error = await rejection(
      table.submitTransaction([
        ['create', { partitionKey: 'p', rowKey: 'new' }],
        ['create', { partitionKey: 'p', rowKey: 'taken' }],
      ]),
    );
    // A failed batch puts the code in RestError.code, unlike single operations.
    expect(error).toMatchObject({ statusCode: 409, code: 'EntityAlreadyExists' });
    expect(storageErrorCode(await rejection(table.getEntity('p', 'new')))).toBe('ResourceNotFound');

    await table.submitTransaction([
      ['create', { partitionKey: 'p', rowKey: 'a' }],
      ['create', { partitionKey: 'p', rowKey: 'b' }],
    ]);
    await expect(table.getEntity('p', 'a')).resolves.toMatchObject({ rowKey: 'a' });
    await expect(table.getEntity('p', 'b')).resolves.toMatchObject({ rowKey: 'b' });
  });
});

describe('SharedKey authentication', () => {
  let tableName: string;

  beforeAll(async () => {
    tableName = (await newTable()).tableName;
  });

  it('refuses a wrong account key with 403 AuthorizationFailure', async () => {
    const wrongKey = randomBytes(64).toString('base64');
    const client = new TableClient(azurite.url, tableName, new AzureNamedKeyCredential(LOCAL_TABLE_ACCOUNT, wrongKey), trusted());
    const error = await rejection(client.getEntity('p', 'r'));
    expect(error.statusCode).toBe(403);
    expect(storageErrorCode(error)).toBe('AuthorizationFailure');
  });

  it("no longer knows Azurite's well-known devstoreaccount1 (404 ResourceNotFound)", async () => {
    const url = azurite.url.replace(LOCAL_TABLE_ACCOUNT, 'devstoreaccount1');
    const client = new TableClient(url, tableName, new AzureNamedKeyCredential('devstoreaccount1', WELL_KNOWN_KEY), trusted());
    const error = await rejection(client.getEntity('p', 'r'));
    expect(error.statusCode).toBe(404);
    expect(storageErrorCode(error)).toBe('ResourceNotFound');
  });

  it('refuses a request without credentials with 403 AuthorizationFailure', async () => {
    const anonymous = new TableClient(azurite.url, tableName, trusted());
    const error = await rejection(anonymous.getEntity('p', 'r'));
    expect(error.statusCode).toBe(403);
    expect(storageErrorCode(error)).toBe('AuthorizationFailure');
  });
});

describe('oauth mode', () => {
  let oauthAzurite: AzuriteTables;
  let tableName: string;
  const now = (): number => Math.floor(Date.now() / 1000);
  const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    aud: 'https://storage.azure.com',
    iss: 'https://sts.windows.net/00000000-0000-0000-0000-000000000001/',
    iat: now() - 60,
    nbf: now() - 60,
    exp: now() + 3600,
    ...overrides,
  });
  const clientWith = (token: string): TableClient => new TableClient(oauthAzurite.url, tableName, bearer(token), trusted(NO_RETRIES));

  beforeAll(async () => {
    oauthAzurite = await startAzuriteTables({ tls: certificates, oauth: true });
    tableName = uniqueName();
    await TableServiceClient.fromConnectionString(oauthAzurite.connectionString, trusted()).createTable(tableName);
  });

  afterAll(async () => {
    await oauthAzurite.close();
  });

  it('refuses a request without credentials with 403 AuthorizationFailure', async () => {
    const anonymous = new TableClient(oauthAzurite.url, tableName, trusted(NO_RETRIES));
    const error = await rejection(anonymous.getEntity('p', 'r'));
    expect(error.statusCode).toBe(403);
    expect(storageErrorCode(error)).toBe('AuthorizationFailure');
  });

  it('accepts a bearer token with a v1 issuer and the storage audience (Azurite checks no signature)', async () => {
    const client = clientWith(unsignedJwt(claims()));
    await client.createEntity({ partitionKey: 'p', rowKey: 'by-token' });
    await expect(client.getEntity('p', 'by-token')).resolves.toMatchObject({ rowKey: 'by-token' });
  });

  it.each([
    ['a v2 issuer', { iss: 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0' }, 'Invalid token issuer.'],
    ['another audience', { aud: 'api://some-other-app' }, 'Invalid token audience.'],
    ['an expired token', { exp: now() - 60 }, 'Lifetime validation failed. The token is expired.'],
  ])('refuses %s with 403 AuthenticationFailed', async (_case, overrides, detail) => {
    const error = await rejection(clientWith(unsignedJwt(claims(overrides))).getEntity('p', 'r'));
    expect(error.statusCode).toBe(403);
    expect(storageErrorCode(error)).toBe('AuthenticationFailed');
    expect(error.details).toMatchObject({ AuthenticationErrorDetail: detail });
  });
});

describe('the table fault proxy', () => {
  let proxy: TableFaultProxy;
  let tableName: string;
  const direct = (): TableClient => TableClient.fromConnectionString(azurite.connectionString, tableName, trusted());
  const viaProxy = (options: TableServiceClientOptions = NO_RETRIES): TableClient =>
    new TableClient(proxy.url, tableName, new AzureNamedKeyCredential(azurite.accountName, azurite.accountKey), trusted(options));
  const entityPath = (): RegExp => new RegExp(`^/${LOCAL_TABLE_ACCOUNT}/${tableName}\\(`);
  const tablePath = (): RegExp => new RegExp(`^/${LOCAL_TABLE_ACCOUNT}/${tableName}$`);
  const actions = (): string[] => proxy.seen.map((request) => request.action);

  beforeAll(async () => {
    proxy = await startTableFaultProxy({ target: azurite.url, tls: certificates, caCertPem: certificates.caCertPem });
  });

  beforeEach(async () => {
    tableName = (await newTable()).tableName;
  });

  afterEach(() => {
    proxy.clear();
  });

  afterAll(async () => {
    await proxy.close();
  });

  it('forwards SharedKey-signed requests: the signature covers the account and path, not the port', async () => {
    const before = proxy.seen.length;
    await viaProxy().createEntity({ partitionKey: 'p', rowKey: 'r', value: 'through the proxy' });
    await expect(direct().getEntity('p', 'r')).resolves.toMatchObject({ value: 'through the proxy' });
    expect(proxy.seen.slice(before)).toEqual([{ method: 'POST', path: `/${LOCAL_TABLE_ACCOUNT}/${tableName}`, action: 'forwarded' }]);
  });

  it('answers 503 ServerBusy with Retry-After, which the SDK reports when it does not retry', async () => {
    proxy.fail({ method: 'GET', path: entityPath() }, { status: 503, retryAfterSeconds: 7 });
    const error = await rejection(viaProxy().getEntity('p', 'r'));
    expect(error.statusCode).toBe(503);
    expect(storageErrorCode(error)).toBe('ServerBusy');
    expect(error.response?.headers.get('retry-after')).toBe('7');
    expect(error.response?.headers.get('x-ms-error-code')).toBe('ServerBusy');
    expect(actions().at(-1)).toBe('failed 503');
  });

  it('fails only `times` times: the SDK retries past one 500', async () => {
    await direct().createEntity({ partitionKey: 'p', rowKey: 'r' });
    proxy.fail({ method: 'GET' }, { status: 500, times: 1 });
    const before = proxy.seen.length;
    await expect(viaProxy(QUICK_RETRIES).getEntity('p', 'r')).resolves.toMatchObject({ rowKey: 'r' });
    expect(actions().slice(before)).toEqual(['failed 500', 'forwarded']);
  });

  it('holds a delayed request, then forwards it', async () => {
    proxy.delay({ method: 'POST', path: tablePath() }, 200, 1);
    const before = proxy.seen.length;
    await viaProxy().createEntity({ partitionKey: 'p', rowKey: 'late' });
    await expect(direct().getEntity('p', 'late')).resolves.toMatchObject({ rowKey: 'late' });
    expect(actions().slice(before)).toEqual(['delayed']);
  });

  it('forwards a held request even after its caller gave up', async () => {
    proxy.delay({ method: 'POST', path: tablePath() }, 500, 1);
    const before = proxy.seen.length;
    const caller = new AbortController();
    const creating = viaProxy().createEntity({ partitionKey: 'p', rowKey: 'given-up' }, { abortSignal: caller.signal });
    // Give up once the proxy holds the request, not after some guessed time.
    await until(() => proxy.seen.length > before);
    caller.abort();
    await expect(creating).rejects.toMatchObject({ name: 'AbortError' });

    await until(() =>
      direct()
        .getEntity('p', 'given-up')
        .then(
          () => true,
          () => false,
        ),
    );
    expect(actions().slice(before)).toEqual(['delayed']);
  });

  it('loses the answer of an applied insert: the SDK retries and meets its own entity as 409', async () => {
    proxy.loseAnswer({ method: 'POST', path: tablePath() }, 1);
    const before = proxy.seen.length;
    const error = await rejection(viaProxy(QUICK_RETRIES).createEntity({ partitionKey: 'p', rowKey: 'once' }));
    expect(error.statusCode).toBe(409);
    expect(storageErrorCode(error)).toBe('EntityAlreadyExists');
    await expect(direct().getEntity('p', 'once')).resolves.toMatchObject({ rowKey: 'once' });
    expect(actions().slice(before)).toEqual(['lost answer', 'forwarded']);
  });

  it('loses the answer of an applied conditional update: the retry meets the new etag as 412', async () => {
    const created = await direct().createEntity({ partitionKey: 'p', rowKey: 'r', version: 1 });
    proxy.loseAnswer({ method: 'PUT', path: entityPath() }, 1);
    const error = await rejection(
      viaProxy(QUICK_RETRIES).updateEntity({ partitionKey: 'p', rowKey: 'r', version: 2 }, 'Replace', { etag: created.etag }),
    );
    expect(error.statusCode).toBe(412);
    expect(storageErrorCode(error)).toBe('UpdateConditionNotSatisfied');
    await expect(direct().getEntity('p', 'r')).resolves.toMatchObject({ version: 2 });
  });

  it('resets connections while unavailable, open keep-alive ones included, until available again', async () => {
    const client = viaProxy();
    await client.createEntity({ partitionKey: 'p', rowKey: 'r' });
    const resetsBefore = proxy.connectionsReset;
    proxy.unavailable();
    // The client's open keep-alive connection was reset just now.
    expect(proxy.connectionsReset).toBeGreaterThan(resetsBefore);
    const reusing = await rejection(client.getEntity('p', 'r'));

    const resetsAfterUnavailable = proxy.connectionsReset;
    const connectingAnew = await rejection(viaProxy().getEntity('p', 'r'));
    expect(proxy.connectionsReset).toBeGreaterThan(resetsAfterUnavailable);
    for (const error of [reusing, connectingAnew]) {
      expect(error.code).toBe('ECONNRESET');
      expect(error.statusCode).toBeUndefined();
    }

    proxy.available();
    await expect(client.getEntity('p', 'r')).resolves.toMatchObject({ rowKey: 'r' });
  });
});

describe('the Azurite child process', () => {
  it('is gone once close() resolves, and close() can be called again', async () => {
    const started = await startAzuriteTables({ tls: certificates });
    expect(isRunning(started.pid)).toBe(true);
    await started.close();
    expect(isRunning(started.pid)).toBe(false);
    await expect(started.close()).resolves.toBeUndefined();
  });

  it('rejects with the tail of its stderr when it dies before it is ready', async () => {
    await expect(startAzuriteTables({ tls: { certPem: 'not a certificate', keyPem: 'not a key' } })).rejects.toThrow(
      /^Azurite \(tables\) did not start: the child exited \(code 1\)\nazurite-tables child failed: Error: .+/,
    );
  });

  it('rejects when the port is taken', async () => {
    const port = Number(new URL(azurite.url).port);
    await expect(startAzuriteTables({ tls: certificates, port })).rejects.toThrow(/did not start[\s\S]*EADDRINUSE/);
  });

  it('exits by itself when its parent is killed', async () => {
    const parent = spawn(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        '-e',
        `require('./src/local/azurite/azurite-tables').startAzuriteTables({ tls: JSON.parse(process.env.TEST_TLS) })
           .then((started) => { process.stdout.write(started.pid + '\\n'); setInterval(() => {}, 60_000); });`,
      ],
      {
        cwd: PROJECT_ROOT,
        env: { ...process.env, TEST_TLS: JSON.stringify({ certPem: certificates.certPem, keyPem: certificates.keyPem }) },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const childPid = await new Promise<number>((resolve, reject) => {
      parent.stdout.setEncoding('utf8').once('data', (line: string) => resolve(Number.parseInt(line, 10)));
      parent.once('exit', (code) => reject(new Error(`the parent exited first (${String(code)})`)));
    });
    expect(isRunning(childPid)).toBe(true);

    parent.kill('SIGKILL');
    await until(() => !isRunning(childPid));
  });
});
