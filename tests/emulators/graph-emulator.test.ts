import { randomUUID } from 'node:crypto';
import { expect } from '@jest/globals';
import { Client, GraphClientError, GraphError, PageIterator, ResponseType, type PageCollection } from '@microsoft/microsoft-graph-client';
import { Agent } from 'undici';
import { createGraphClient, withAccessToken, type GraphClient } from '../../src/adapters/graph/graph-client';
import { SigningKeySet } from '../../src/local/entra/signing-keys';
import { createGraphEmulator, type GraphEmulator } from '../../src/local/graph/graph-emulator';
import { DEMO_USERS, LOCAL_API_CLIENT_ID } from '../../src/local/local-directory';
import { createLocalCertificates, type LocalCertificates } from '../../src/local/tls/local-certificate-authority';
import { appGraphToken, delegatedGraphToken, mintGraphToken } from '../helpers/graph-tokens';

const MAPPING = 'com.contoso.identityMapping';
const OPEN_TYPE = 'microsoft.graph.openTypeExtension';
const alice = DEMO_USERS.alice;
const bob = DEMO_USERS.bob;
const DAEMON_APP_ID = '5d2b6a4e-0c59-4a43-9c39-7d0f2b1c9e11';
const OTHER_APP_ID = '0a7e3c1d-6b2f-4e59-8d1a-3c4b5e6f7a80';

let certificates: LocalCertificates;
let keys: SigningKeySet;
let emulator: GraphEmulator;
let graph: GraphClient;
let aliceToken: string;

/** An open extension as Graph answers it: its id and name, and its custom properties. */
interface OpenExtension {
  readonly id: string;
  readonly extensionName: string;
  readonly [property: string]: unknown;
}

/** A user read with `$select=id&$expand=extensions`. */
interface UserWithExtensions {
  readonly id: string;
  readonly extensions: readonly OpenExtension[];
}

interface ExtensionList {
  readonly '@odata.context': string;
  readonly value: readonly OpenExtension[];
}

/** The GraphError a request fails with; anything else (success included) fails the test. */
async function graphErrorOf(request: Promise<unknown>): Promise<GraphError> {
  try {
    await request;
  } catch (error) {
    if (error instanceof GraphError) return error;
    throw error;
  }
  throw new Error('the Graph request succeeded');
}

function mappingBody(acsUserIdentity: string, extensionName = MAPPING): Record<string, unknown> {
  return { '@odata.type': OPEN_TYPE, extensionName, acsUserIdentity };
}

beforeAll(async () => {
  certificates = createLocalCertificates();
  keys = await SigningKeySet.create();
  emulator = await createGraphEmulator({ tls: { certPem: certificates.certPem, keyPem: certificates.keyPem }, keys });
  graph = createGraphClient({ baseUrl: emulator.url, ca: certificates.caCertPem, maxRetries: 0 });
  aliceToken = await delegatedGraphToken(keys, alice.oid, 'User.Read User.ReadWrite');
});

beforeEach(() => emulator.reset());

afterAll(async () => {
  await graph.close();
  await emulator.close();
});

describe('GET /me?$expand=extensions&$select=id', () => {
  it('answers the user id with an empty extensions array when there are none', async () => {
    const me: unknown = await graph.api('/me', aliceToken).select('id').expand('extensions').get();
    expect(me).toEqual({
      '@odata.context': `${emulator.url}/v1.0/$metadata#users(id,extensions())/$entity`,
      id: alice.oid,
      extensions: [],
    });
  });

  it('lists an extension once created', async () => {
    await graph.api('/me/extensions', aliceToken).post(mappingBody('8:acs:one'));
    const me = (await graph.api('/me', aliceToken).select('id').expand('extensions').get()) as UserWithExtensions;
    expect(me.extensions).toEqual([{ '@odata.type': `#${OPEN_TYPE}`, extensionName: MAPPING, id: MAPPING, acsUserIdentity: '8:acs:one' }]);
  });

  it('filters expanded extensions by id', async () => {
    await graph.api('/me/extensions', aliceToken).post(mappingBody('8:acs:one'));
    await graph.api('/me/extensions', aliceToken).post(mappingBody('x', 'com.contoso.other'));
    const me = (await graph
      .api('/me', aliceToken)
      .select('id')
      .expand(`extensions($filter=id eq '${MAPPING}')`)
      .get()) as UserWithExtensions;
    expect(me.extensions.map((extension) => extension.id)).toEqual([MAPPING]);
  });

  it('refuses $expand=extensions when $select leaves out id', async () => {
    await expect(graph.api('/me', aliceToken).select('displayName').expand('extensions').get()).rejects.toMatchObject({
      statusCode: 400,
      code: 'Request_BadRequest',
    });
  });

  it('refuses an unknown $select property', async () => {
    await expect(graph.api('/me', aliceToken).select('shoeSize').get()).rejects.toMatchObject({ statusCode: 400, code: 'BadRequest' });
  });

  it('answers a plausible user without $select', async () => {
    const me: unknown = await graph.api('/me', aliceToken).get();
    expect(me).toMatchObject({ id: alice.oid, displayName: alice.displayName, userPrincipalName: alice.userPrincipalName });
    expect(me).not.toHaveProperty('extensions');
  });
});

describe('POST /me/extensions', () => {
  it('creates the extension: 201, echoed body and a Location header', async () => {
    const response = (await graph
      .api('/me/extensions', aliceToken)
      .responseType(ResponseType.RAW)
      .post(mappingBody('8:acs:one'))) as Response;
    expect(response.status).toBe(201);
    expect(response.headers.get('location')).toBe(`${emulator.url}/v1.0/users/${alice.oid}/extensions/${MAPPING}`);
    expect(await response.json()).toEqual({
      '@odata.context': `${emulator.url}/v1.0/$metadata#users('${alice.oid}')/extensions/$entity`,
      '@odata.type': `#${OPEN_TYPE}`,
      extensionName: MAPPING,
      id: MAPPING,
      acsUserIdentity: '8:acs:one',
    });
    expect(emulator.extensionsOf(alice.oid)).toEqual([
      { id: MAPPING, extensionName: MAPPING, appId: LOCAL_API_CLIENT_ID, properties: { acsUserIdentity: '8:acs:one' } },
    ]);
  });

  it('accepts @odata.type with a leading #', async () => {
    const created = (await graph
      .api('/me/extensions', aliceToken)
      .post({ ...mappingBody('8:acs:one'), '@odata.type': `#${OPEN_TYPE}` })) as OpenExtension;
    expect(created.id).toBe(MAPPING);
  });

  it('refuses a duplicate name with 400 Request_BadRequest', async () => {
    await graph.api('/me/extensions', aliceToken).post(mappingBody('8:acs:one'));
    const duplicate = graph.api('/me/extensions', aliceToken).post(mappingBody('8:acs:two'));
    await expect(duplicate).rejects.toBeInstanceOf(GraphError);
    await expect(graph.api('/me/extensions', aliceToken).post(mappingBody('8:acs:two'))).rejects.toMatchObject({
      statusCode: 400,
      code: 'Request_BadRequest',
      message: 'An extension already exists with given id.',
    });
    expect(emulator.extensionsOf(alice.oid)[0]?.properties).toEqual({ acsUserIdentity: '8:acs:one' });
  });

  it('refuses a third extension from the same app, but not from another app', async () => {
    await graph.api('/me/extensions', aliceToken).post(mappingBody('a', 'com.contoso.one'));
    await graph.api('/me/extensions', aliceToken).post(mappingBody('b', 'com.contoso.two'));
    await expect(graph.api('/me/extensions', aliceToken).post(mappingBody('c', 'com.contoso.three'))).rejects.toMatchObject({
      statusCode: 400,
      message: 'Maximum number of extensions values supported per application is 2.',
    });
    const otherAppToken = await delegatedGraphToken(keys, alice.oid, 'User.ReadWrite', { appId: OTHER_APP_ID });
    await graph.api('/me/extensions', otherAppToken).post(mappingBody('c', 'com.contoso.three'));
    expect(emulator.extensionsOf(alice.oid).map((extension) => extension.appId)).toEqual([
      LOCAL_API_CLIENT_ID,
      LOCAL_API_CLIENT_ID,
      OTHER_APP_ID,
    ]);
  });

  it('counts seeded extensions of the app against its limit', async () => {
    emulator.putExtension(alice.oid, LOCAL_API_CLIENT_ID, { extensionName: 'com.contoso.legacy1', v: 1 });
    emulator.putExtension(alice.oid, LOCAL_API_CLIENT_ID, { extensionName: 'com.contoso.legacy2', v: 2 });
    await expect(graph.api('/me/extensions', aliceToken).post(mappingBody('x'))).rejects.toMatchObject({ statusCode: 400 });
  });

  it.each([
    ['a wrong @odata.type', { '@odata.type': 'microsoft.graph.user', extensionName: MAPPING }],
    ['no @odata.type', { extensionName: MAPPING }],
    ['no extensionName', { '@odata.type': OPEN_TYPE, acsUserIdentity: 'x' }],
    ['an object value', { ...mappingBody('x'), nested: { a: 1 } }],
    ['an array of objects', { ...mappingBody('x'), list: [{ a: 1 }] }],
    ['more than 2 KB', { ...mappingBody('x'), blob: 'x'.repeat(2100) }],
  ])('refuses a body with %s (400)', async (_case, body) => {
    await expect(graph.api('/me/extensions', aliceToken).post(body)).rejects.toMatchObject({ statusCode: 400 });
    expect(emulator.extensionsOf(alice.oid)).toEqual([]);
  });

  it('accepts arrays of primitives', async () => {
    const created = (await graph.api('/me/extensions', aliceToken).post({ ...mappingBody('x'), tags: ['a', 'b'] })) as OpenExtension;
    expect(created['tags']).toEqual(['a', 'b']);
  });
});

describe('GET, PATCH and DELETE /me/extensions/{id}', () => {
  it('answers 404 ResourceNotFound for a missing extension', async () => {
    await expect(graph.api(`/me/extensions/${MAPPING}`, aliceToken).get()).rejects.toMatchObject({
      statusCode: 404,
      code: 'ResourceNotFound',
      message: 'Extension with given id not found.',
    });
  });

  it('reads one extension, matching its id case-insensitively', async () => {
    await graph.api('/me/extensions', aliceToken).post(mappingBody('8:acs:one'));
    const extension: unknown = await graph.api(`/me/extensions/${MAPPING.toUpperCase()}`, aliceToken).get();
    expect(extension).toMatchObject({ id: MAPPING, acsUserIdentity: '8:acs:one' });
  });

  it('PATCH answers 204 and replaces the custom-property set', async () => {
    await graph.api('/me/extensions', aliceToken).post({ ...mappingBody('8:acs:one'), extra: 'gone after patch' });
    const response = (await graph
      .api(`/me/extensions/${MAPPING}`, aliceToken)
      .responseType(ResponseType.RAW)
      .patch({ '@odata.type': OPEN_TYPE, acsUserIdentity: '8:acs:two' })) as Response;
    expect(response.status).toBe(204);
    const extension = (await graph.api(`/me/extensions/${MAPPING}`, aliceToken).get()) as OpenExtension;
    expect(extension).not.toHaveProperty('extra');
    expect(extension['acsUserIdentity']).toBe('8:acs:two');
  });

  it('PATCH of a missing extension answers 404', async () => {
    await expect(graph.api(`/me/extensions/${MAPPING}`, aliceToken).patch({ acsUserIdentity: 'x' })).rejects.toMatchObject({
      statusCode: 404,
    });
  });

  it('DELETE answers 204 with an empty body, then the extension is gone', async () => {
    await graph.api('/me/extensions', aliceToken).post(mappingBody('8:acs:one'));
    const response = (await graph.api(`/me/extensions/${MAPPING}`, aliceToken).responseType(ResponseType.RAW).delete()) as Response;
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');
    expect(emulator.extensionsOf(alice.oid)).toEqual([]);
    await expect(graph.api(`/me/extensions/${MAPPING}`, aliceToken).delete()).rejects.toMatchObject({
      statusCode: 404,
      code: 'ResourceNotFound',
    });
  });

  it('lists extensions as an OData collection', async () => {
    await graph.api('/me/extensions', aliceToken).post(mappingBody('8:acs:one'));
    const list = (await graph.api('/me/extensions', aliceToken).get()) as ExtensionList;
    expect(list.value).toHaveLength(1);
    expect(list['@odata.context']).toBe(`${emulator.url}/v1.0/$metadata#users('${alice.oid}')/extensions`);
  });
});

describe('app-only tokens on /users/{id}/extensions', () => {
  it('runs the whole CRUD cycle with User.ReadWrite.All', async () => {
    const token = await appGraphToken(keys, DAEMON_APP_ID, ['User.ReadWrite.All']);
    const base = `/users/${bob.oid}/extensions`;
    const created = (await graph.api(base, token).post(mappingBody('8:acs:bob'))) as OpenExtension;
    expect(created.id).toBe(MAPPING);
    expect(emulator.extensionsOf(bob.oid)[0]?.appId).toBe(DAEMON_APP_ID);
    expect(await graph.api(`${base}/${MAPPING}`, token).get()).toMatchObject({ acsUserIdentity: '8:acs:bob' });
    await graph.api(`${base}/${MAPPING}`, token).patch({ acsUserIdentity: '8:acs:bob2' });
    const user = (await graph.api(`/users/${bob.userPrincipalName}`, token).select('id').expand('extensions').get()) as UserWithExtensions;
    expect(user.extensions[0]?.['acsUserIdentity']).toBe('8:acs:bob2');
    await graph.api(`${base}/${MAPPING}`, token).delete();
    expect(emulator.extensionsOf(bob.oid)).toEqual([]);
  });

  it('reads with User.Read.All but may not write', async () => {
    const token = await appGraphToken(keys, DAEMON_APP_ID, ['User.Read.All']);
    await expect(graph.api(`/users/${bob.oid}/extensions`, token).get()).resolves.toMatchObject({ value: [] });
    await expect(graph.api(`/users/${bob.oid}/extensions`, token).post(mappingBody('x'))).rejects.toMatchObject({
      statusCode: 403,
      code: 'Authorization_RequestDenied',
      message: 'Insufficient privileges to complete the operation.',
    });
  });

  it('refuses an app without any role', async () => {
    const token = await appGraphToken(keys, DAEMON_APP_ID, []);
    await expect(graph.api(`/users/${bob.oid}/extensions`, token).get()).rejects.toMatchObject({
      statusCode: 403,
      code: 'Authorization_RequestDenied',
    });
  });

  it('refuses /me with 400', async () => {
    const token = await appGraphToken(keys, DAEMON_APP_ID, ['User.ReadWrite.All']);
    await expect(graph.api('/me/extensions', token).get()).rejects.toMatchObject({
      statusCode: 400,
      code: 'BadRequest',
      message: '/me request is only valid with delegated authentication flow.',
    });
  });

  it('answers 404 Request_ResourceNotFound for an unknown user', async () => {
    const token = await appGraphToken(keys, DAEMON_APP_ID, ['User.ReadWrite.All']);
    await expect(graph.api('/users/00000000-0000-0000-0000-000000000001/extensions', token).get()).rejects.toMatchObject({
      statusCode: 404,
      code: 'Request_ResourceNotFound',
    });
  });
});

describe('delegated permissions', () => {
  it('lets User.Read read but not write (403)', async () => {
    const readOnly = await delegatedGraphToken(keys, alice.oid, 'User.Read');
    await expect(graph.api('/me', readOnly).select('id').expand('extensions').get()).resolves.toMatchObject({ id: alice.oid });
    await expect(graph.api('/me/extensions', readOnly).post(mappingBody('x'))).rejects.toMatchObject({
      statusCode: 403,
      code: 'Authorization_RequestDenied',
    });
    await expect(graph.api(`/me/extensions/${MAPPING}`, readOnly).delete()).rejects.toMatchObject({ statusCode: 403 });
  });

  it('refuses a token without any user permission', async () => {
    const token = await delegatedGraphToken(keys, alice.oid, 'Mail.Read');
    await expect(graph.api('/me', token).get()).rejects.toMatchObject({ statusCode: 403 });
  });

  it('allows /users/{own id} but not another user', async () => {
    await expect(graph.api(`/users/${alice.oid}/extensions`, aliceToken).get()).resolves.toMatchObject({ value: [] });
    await expect(graph.api(`/users/${bob.oid}/extensions`, aliceToken).get()).rejects.toMatchObject({ statusCode: 403 });
  });

  it('creates unknown users on first sight from the token', async () => {
    const oid = '7c1f0a52-9d8e-4b3a-a6f5-1e2d3c4b5a69';
    const token = await delegatedGraphToken(keys, oid, 'User.ReadWrite', {
      extraClaims: { name: 'Dana Local', upn: 'dana@contoso.local' },
    });
    await expect(graph.api('/me', token).get()).resolves.toMatchObject({
      id: oid,
      displayName: 'Dana Local',
      userPrincipalName: 'dana@contoso.local',
    });
  });
});

describe('token validation (401 InvalidAuthenticationToken)', () => {
  it('refuses a token for another audience', async () => {
    const token = await mintGraphToken(keys, { oid: alice.oid, scp: 'User.ReadWrite', audience: LOCAL_API_CLIENT_ID });
    await expect(graph.api('/me', token).get()).rejects.toMatchObject({
      statusCode: 401,
      code: 'InvalidAuthenticationToken',
      message: 'Access token validation failure. Invalid audience.',
    });
  });

  it('accepts the Graph app id as audience', async () => {
    const token = await mintGraphToken(keys, { oid: alice.oid, scp: 'User.Read', audience: '00000003-0000-0000-c000-000000000000' });
    await expect(graph.api('/me', token).select('id').get()).resolves.toMatchObject({ id: alice.oid });
  });

  it('refuses an expired token', async () => {
    const token = await mintGraphToken(keys, { oid: alice.oid, scp: 'User.ReadWrite', expiresInSeconds: -60 });
    await expect(graph.api('/me', token).get()).rejects.toMatchObject({
      statusCode: 401,
      code: 'InvalidAuthenticationToken',
      message: 'Access token has expired or is not yet valid.',
    });
  });

  it('refuses a token signed by a key that is not published', async () => {
    const strangerKeys = await SigningKeySet.create();
    const token = await mintGraphToken(strangerKeys, { oid: alice.oid, scp: 'User.ReadWrite' });
    await expect(graph.api('/me', token).get()).rejects.toMatchObject({ statusCode: 401, code: 'InvalidAuthenticationToken' });
  });

  it('refuses a token from another tenant (v1 issuer)', async () => {
    const token = await mintGraphToken(keys, { oid: alice.oid, scp: 'User.ReadWrite', issuer: 'https://login.microsoftonline.com/x/v2.0' });
    await expect(graph.api('/me', token).get()).rejects.toMatchObject({ statusCode: 401 });
  });

  it('refuses a request without a token and puts the ids in the envelope', async () => {
    const error = await graphErrorOf(graph.api('/me', 'not-a-jwt').get());
    expect(error).toMatchObject({ statusCode: 401, code: 'InvalidAuthenticationToken' });
    expect(error.requestId).toBe(error.headers?.get('request-id'));
    expect(error.headers?.get('client-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps accepting tokens signed by a key after a roll, until it is retired', async () => {
    const beforeRoll = await delegatedGraphToken(keys, alice.oid, 'User.Read');
    await keys.roll();
    await expect(graph.api('/me', beforeRoll).select('id').get()).resolves.toMatchObject({ id: alice.oid });
    keys.retire();
    await expect(graph.api('/me', beforeRoll).get()).rejects.toMatchObject({ statusCode: 401 });
    aliceToken = await delegatedGraphToken(keys, alice.oid, 'User.Read User.ReadWrite');
  });
});

/**
 * A second emulator whose per-app budget is 3 requests a minute, and a Graph client on it, for the
 * enclosing describe block. Read through the getters: they exist only once beforeAll ran.
 */
function useThrottledEmulator(): { readonly emulator: GraphEmulator; readonly graph: GraphClient } {
  let emulator: GraphEmulator | undefined;
  let client: GraphClient | undefined;
  beforeAll(async () => {
    emulator = await createGraphEmulator({
      tls: { certPem: certificates.certPem, keyPem: certificates.keyPem },
      keys,
      throttle: { limit: 3, windowMs: 60_000 },
    });
    client = createGraphClient({ baseUrl: emulator.url, ca: certificates.caCertPem, maxRetries: 0 });
  });
  afterAll(async () => {
    await client?.close();
    await emulator?.close();
  });
  return {
    get emulator() {
      if (emulator === undefined) throw new Error('used outside its describe block');
      return emulator;
    },
    get graph() {
      if (client === undefined) throw new Error('used outside its describe block');
      return client;
    },
  };
}

describe('throttling', () => {
  const slow = useThrottledEmulator();

  it('answers 429 TooManyRequests with Retry-After once an app exceeds its budget; other apps are unaffected', async () => {
    const token = await delegatedGraphToken(keys, alice.oid, 'User.Read');
    for (let i = 0; i < 3; i += 1) await slow.graph.api('/me', token).select('id').get();
    const error = await graphErrorOf(slow.graph.api('/me', token).select('id').get());
    expect(error).toBeInstanceOf(GraphError);
    expect(error).toMatchObject({ statusCode: 429, code: 'TooManyRequests', message: 'Please retry again later.' });
    expect(Number(error.headers?.get('retry-after'))).toBeGreaterThan(0);
    expect(typeof error.body).toBe('string');
    expect(JSON.parse(String(error.body))).toMatchObject({ innerError: { code: '429', status: '429' } });

    const otherApp = await delegatedGraphToken(keys, alice.oid, 'User.Read', { appId: OTHER_APP_ID });
    await expect(slow.graph.api('/me', otherApp).select('id').get()).resolves.toMatchObject({ id: alice.oid });
  });
});

describe('fault injection and client behaviour', () => {
  it('surfaces an injected fault as a GraphError with its status', async () => {
    emulator.faults.inject({ route: 'extensions.create', status: 503, retryAfterSeconds: 0.01 });
    await expect(graph.api('/me/extensions', aliceToken).post(mappingBody('x'))).rejects.toMatchObject({
      statusCode: 503,
      code: 'ServiceUnavailable',
    });
    expect(emulator.counters.get('extensions.create')).toBe(1);
    expect(emulator.extensionsOf(alice.oid)).toEqual([]);
  });

  it('retries 429 honouring Retry-After when maxRetries allows it', async () => {
    const retrying = createGraphClient({ baseUrl: emulator.url, ca: certificates.caCertPem, maxRetries: 1 });
    try {
      emulator.faults.inject({ route: 'user.get', status: 429, retryAfterSeconds: 0.01 });
      await expect(retrying.api('/me', aliceToken).select('id').get()).resolves.toMatchObject({ id: alice.oid });
      expect(emulator.counters.get('user.get')).toBe(2);
    } finally {
      await retrying.close();
    }
  });

  it('aborts a request that outlives timeoutMs', async () => {
    const impatient = createGraphClient({ baseUrl: emulator.url, ca: certificates.caCertPem, maxRetries: 0, timeoutMs: 100 });
    try {
      emulator.faults.inject({ route: 'user.get', status: 500, delayMs: 5_000 });
      await expect(impatient.api('/me', aliceToken).get()).rejects.toMatchObject({ statusCode: -1, code: 'TimeoutError' });
    } finally {
      await impatient.close();
    }
  });

  it('surfaces a dropped connection as statusCode -1', async () => {
    emulator.faults.inject({ route: 'user.get', status: 500, dropConnection: true });
    await expect(graph.api('/me', aliceToken).get()).rejects.toMatchObject({ statusCode: -1, code: 'TypeError', message: 'fetch failed' });
  });

  it('never sends a request without a per-request token', async () => {
    await expect(graph.sdk.api('/me').get()).rejects.toBeInstanceOf(GraphClientError);
    expect(emulator.counters.total()).toBe(0);
    expect(() => graph.api('/me', '')).toThrow(TypeError);
  });

  it('does not attach the token when the host is missing from customHosts', async () => {
    const agent = new Agent({ connect: { ca: certificates.caCertPem } });
    try {
      const bare = Client.init({
        baseUrl: emulator.url,
        authProvider: (done) => done(null, aliceToken),
        fetchOptions: { dispatcher: agent } as unknown as RequestInit,
      });
      await expect(bare.api('/me').get()).rejects.toMatchObject({ statusCode: 401, message: 'Access token is empty.' });
    } finally {
      await agent.close();
    }
  });

  it('refuses insecure or malformed base URLs', () => {
    expect(() => createGraphClient({ baseUrl: emulator.url.replace('https:', 'http:') })).toThrow(TypeError);
    expect(() => createGraphClient({ baseUrl: `${emulator.url}/v1.0` })).toThrow(TypeError);
    expect(() => createGraphClient({ maxRetries: 11 })).toThrow(TypeError);
  });
});

describe('GET /users (app-only listing with paging)', () => {
  const SEEDED = 250;
  const DEMO_IDS = Object.values(DEMO_USERS).map((user) => user.oid);
  let reader: string;

  interface ListedUser {
    readonly id: string;
    readonly extensions?: readonly Record<string, unknown>[];
    readonly [property: string]: unknown;
  }

  /** A page of `GET /users`: PageCollection (which types its items `any`) with the users typed. */
  interface UserPage extends PageCollection {
    value: ListedUser[];
  }

  /** The page's @odata.nextLink, which must be there. */
  function nextLinkOf(page: UserPage): string {
    const nextLink = page['@odata.nextLink'];
    if (nextLink === undefined) throw new Error('the page has no @odata.nextLink');
    return nextLink;
  }

  /** Seed `count` users, each with the mapping extension, as the original sample would have left them. */
  function seedUsers(count: number, idOf: (index: number) => string = () => randomUUID()): Map<string, string> {
    const seeded = new Map<string, string>();
    for (let index = 0; index < count; index += 1) {
      const oid = idOf(index);
      emulator.putExtension(oid, DAEMON_APP_ID, { extensionName: MAPPING, acsUserIdentity: `8:acs:${index}` });
      seeded.set(oid, `8:acs:${index}`);
    }
    return seeded;
  }

  /** Follow every @odata.nextLink with the SDK's own PageIterator, as an admin tool would. */
  async function iterateAll(firstPage: UserPage, token: string): Promise<ListedUser[]> {
    const users: ListedUser[] = [];
    const iterator = new PageIterator(graph.sdk, firstPage, (user: ListedUser) => users.push(user) > 0, {
      middlewareOptions: withAccessToken(token),
    });
    await iterator.iterate();
    expect(iterator.isComplete()).toBe(true);
    return users;
  }

  /** Replace the last hex digit of the link's skip token, keeping it well-formed. */
  function tamper(nextLink: string): string {
    const match = /(\$skiptoken=X%27[0-9A-F]*)([0-9A-F])(%27)/.exec(nextLink);
    if (match === null) throw new Error(`no skip token in ${nextLink}`);
    const flipped = match[2] === '0' ? '1' : '0';
    return nextLink.replace(match[0], `${match[1]}${flipped}${match[3]}`);
  }

  beforeAll(async () => {
    reader = await appGraphToken(keys, DAEMON_APP_ID, ['User.Read.All']);
  });

  it('pages 250 seeded users by 100, each exactly once with its extensions expanded, through PageIterator', async () => {
    const seeded = seedUsers(SEEDED);
    const first = (await graph.api('/users', reader).select('id').expand('extensions').top(100).get()) as UserPage;
    expect(first['@odata.context']).toBe(`${emulator.url}/v1.0/$metadata#users(id,extensions())`);
    expect(first.value).toHaveLength(100);
    const nextLink = nextLinkOf(first);
    expect(nextLink.startsWith(`${emulator.url}/v1.0/users?`)).toBe(true);
    expect(new URL(nextLink).searchParams.get('$skiptoken')).toMatch(/^X'[0-9A-F]+'$/);
    expect(Object.fromEntries(new URL(nextLink).searchParams)).toMatchObject({ $select: 'id', $expand: 'extensions', $top: '100' });

    const users = await iterateAll(first, reader);
    const ids = users.map((user) => user.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual([...seeded.keys(), ...DEMO_IDS].sort());
    expect(emulator.counters.get('users.list')).toBe(3);
    for (const user of users) {
      expect(Object.keys(user).sort()).toEqual(['extensions', 'id']);
      const acsUserIdentity = seeded.get(user.id);
      const expected =
        acsUserIdentity === undefined ? [] : [{ '@odata.type': `#${OPEN_TYPE}`, extensionName: MAPPING, id: MAPPING, acsUserIdentity }];
      expect(user.extensions).toEqual(expected);
    }
  });

  it('neither skips nor repeats users when users and extensions change between pages', async () => {
    const seeded = seedUsers(SEEDED);
    const first = (await graph.api('/users', reader).select('id').expand('extensions').top(100).get()) as UserPage;
    // Users that sort before the cursor: an offset-based page would now repeat five users.
    seedUsers(5, (index) => `00000000-0000-4000-8000-00000000000${index}`);
    const alreadyListed = first.value[0]?.id;
    if (alreadyListed === undefined) throw new Error('the first page is empty');
    emulator.putExtension(alreadyListed, OTHER_APP_ID, { extensionName: 'com.contoso.other', v: 1 });

    const users = await iterateAll(first, reader);
    const ids = users.map((user) => user.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of [...seeded.keys(), ...DEMO_IDS]) expect(ids).toContain(id);
  });

  it('answers the default projection and page size without options, and lists users seen from tokens', async () => {
    seedUsers(120);
    const dana = '7c1f0a52-9d8e-4b3a-a6f5-1e2d3c4b5a69';
    const danaToken = await delegatedGraphToken(keys, dana, 'User.Read', {
      extraClaims: { name: 'Dana Local', upn: 'dana@contoso.local' },
    });
    await graph.api('/me', danaToken).get();
    const first = (await graph.api('/users', reader).get()) as UserPage;
    expect(first['@odata.context']).toBe(`${emulator.url}/v1.0/$metadata#users`);
    expect(first.value).toHaveLength(100);
    expect(first.value[0]).not.toHaveProperty('extensions');
    expect(Object.keys(first.value[0] ?? {}).sort()).toEqual([
      'businessPhones',
      'displayName',
      'givenName',
      'id',
      'jobTitle',
      'mail',
      'mobilePhone',
      'officeLocation',
      'preferredLanguage',
      'surname',
      'userPrincipalName',
    ]);
    const users = await iterateAll(first, reader);
    expect(users).toHaveLength(124);
    expect(users.find((user) => user.id === dana)).toMatchObject({ displayName: 'Dana Local', userPrincipalName: 'dana@contoso.local' });
  });

  it('caps pages at 100 with $expand even for $top=999, but not without $expand', async () => {
    seedUsers(SEEDED);
    const expanded = (await graph.api('/users', reader).select('id').expand('extensions').top(999).get()) as UserPage;
    expect(expanded.value).toHaveLength(100);
    expect(expanded['@odata.nextLink']).toContain('$top=999');
    const plain = (await graph.api('/users', reader).select('id').top(999).get()) as UserPage;
    expect(plain.value).toHaveLength(SEEDED + DEMO_IDS.length);
    expect(plain).not.toHaveProperty('@odata.nextLink');
  });

  it('keeps $expand=extensions($filter=…) and the other options in every nextLink, followed by hand', async () => {
    seedUsers(5);
    emulator.putExtension(bob.oid, DAEMON_APP_ID, { extensionName: MAPPING, acsUserIdentity: '8:acs:bob' });
    emulator.putExtension(bob.oid, DAEMON_APP_ID, { extensionName: 'com.contoso.other', v: 1 });
    let page = (await graph
      .api('/users', reader)
      .select('id,displayName')
      .expand(`extensions($filter=id eq '${MAPPING}')`)
      .top(2)
      .get()) as UserPage;
    const users = [...page.value];
    while (page['@odata.nextLink'] !== undefined) {
      expect(new URL(page['@odata.nextLink']).searchParams.get('$expand')).toBe(`extensions($filter=id eq '${MAPPING}')`);
      page = (await graph.api(page['@odata.nextLink'], reader).get()) as UserPage;
      expect(page['@odata.context']).toBe(`${emulator.url}/v1.0/$metadata#users(id,displayName,extensions())`);
      users.push(...page.value);
    }
    expect(users).toHaveLength(5 + DEMO_IDS.length);
    expect(users.find((user) => user.id === bob.oid)?.extensions?.map((extension) => extension['id'])).toEqual([MAPPING]);
    expect(emulator.counters.get('users.list')).toBe(4);
  });

  it('registers users seeded through putExtension, so /users/{id} finds them', async () => {
    const [oid] = [...seedUsers(1).keys()] as [string];
    await expect(graph.api(`/users/${oid}`, reader).get()).resolves.toMatchObject({
      id: oid,
      displayName: oid,
      userPrincipalName: `${oid}@contoso.local`,
    });
  });

  it('refuses $expand=extensions when $select leaves out id (400)', async () => {
    await expect(graph.api('/users', reader).select('displayName').expand('extensions').get()).rejects.toMatchObject({
      statusCode: 400,
      code: 'Request_BadRequest',
    });
  });

  it.each(['0', '1000', '-1', 'ten'])('refuses $top=%s with 400 Request_UnsupportedQuery', async (top) => {
    await expect(graph.api(`/users?$top=${top}`, reader).get()).rejects.toMatchObject({
      statusCode: 400,
      code: 'Request_UnsupportedQuery',
      message: `Invalid page size specified: '${top}'. Must be between 1 and 999 inclusive.`,
    });
  });

  it('accepts $top at both ends of 1..999', async () => {
    await expect(graph.api('/users', reader).top(1).get()).resolves.toMatchObject({
      value: [expect.objectContaining({ id: expect.any(String) })],
    });
    await expect(graph.api('/users', reader).top(999).get()).resolves.toMatchObject({ value: expect.any(Array) });
  });

  it('refuses an unknown, tampered or reused skip token with 400 Invalid Skip Token', async () => {
    seedUsers(10);
    const first = (await graph.api('/users', reader).select('id').top(5).get()) as UserPage;
    const nextLink = nextLinkOf(first);
    await expect(graph.api(nextLink, reader).get()).resolves.toMatchObject({ value: expect.any(Array) });
    const invalid = { statusCode: 400, message: 'Invalid Skip Token' };
    await expect(graph.api(tamper(nextLink), reader).get()).rejects.toMatchObject(invalid);
    await expect(graph.api("/users?$skiptoken=X'4453707402'", reader).get()).rejects.toMatchObject(invalid);
    await expect(graph.api('/users?$skiptoken=garbage', reader).get()).rejects.toMatchObject(invalid);
    await expect(graph.api(nextLink.replace('$top=5', '$top=6'), reader).get()).rejects.toMatchObject(invalid);
  });

  it('refuses a skip token minted by another emulator', async () => {
    seedUsers(10);
    const other = await createGraphEmulator({ tls: { certPem: certificates.certPem, keyPem: certificates.keyPem }, keys });
    const otherGraph = createGraphClient({ baseUrl: other.url, ca: certificates.caCertPem, maxRetries: 0 });
    try {
      const foreign = (await otherGraph.api('/users', reader).select('id').top(1).get()) as UserPage;
      const token = new URL(nextLinkOf(foreign)).searchParams.get('$skiptoken');
      if (token === null) throw new Error('the nextLink has no $skiptoken');
      await expect(graph.api(`/users?$select=id&$top=1&$skiptoken=${encodeURIComponent(token)}`, reader).get()).rejects.toMatchObject({
        statusCode: 400,
        message: 'Invalid Skip Token',
      });
    } finally {
      await otherGraph.close();
      await other.close();
    }
  });

  it.each(["$filter=id eq 'x'", '$orderby=displayName', '$count=true', '$skipToken=X%27AB%27'])(
    'refuses the unsupported option %s rather than ignoring it',
    async (option) => {
      await expect(graph.api(`/users?${option}`, reader).get()).rejects.toMatchObject({
        statusCode: 400,
        code: 'Request_UnsupportedQuery',
      });
    },
  );

  it('refuses delegated callers, even with User.ReadWrite, with 403 Authorization_RequestDenied', async () => {
    for (const scopes of ['User.ReadWrite', 'User.Read User.ReadWrite']) {
      const delegated = await delegatedGraphToken(keys, alice.oid, scopes);
      await expect(graph.api('/users', delegated).select('id').expand('extensions').get()).rejects.toMatchObject({
        statusCode: 403,
        code: 'Authorization_RequestDenied',
        message: 'Insufficient privileges to complete the operation.',
      });
    }
  });

  it('lets apps list with User.ReadWrite.All or Directory.Read.All, but not without a role', async () => {
    for (const roles of [['User.ReadWrite.All'], ['Directory.Read.All'], ['Directory.ReadWrite.All']]) {
      const token = await appGraphToken(keys, DAEMON_APP_ID, roles);
      await expect(graph.api('/users', token).select('id').get()).resolves.toMatchObject({
        value: expect.arrayContaining([{ id: alice.oid }]),
      });
    }
    const roleless = await appGraphToken(keys, DAEMON_APP_ID, ['Mail.Read']);
    await expect(graph.api('/users', roleless).get()).rejects.toMatchObject({ statusCode: 403, code: 'Authorization_RequestDenied' });
  });

  it('answers an injected fault on users.list and counts it', async () => {
    emulator.faults.inject({ route: 'users.list', status: 503, retryAfterSeconds: 0.01 });
    await expect(graph.api('/users', reader).get()).rejects.toMatchObject({ statusCode: 503, code: 'ServiceUnavailable' });
    expect(emulator.counters.get('users.list')).toBe(1);
  });

  describe('throttling', () => {
    const slow = useThrottledEmulator();

    it('counts list pages against the app budget shared with the other routes, answering 429 with Retry-After', async () => {
      await slow.graph.api(`/users/${bob.oid}`, reader).select('id').get();
      for (let i = 0; i < 2; i += 1) await slow.graph.api('/users', reader).select('id').top(1).get();
      const error = await graphErrorOf(slow.graph.api('/users', reader).select('id').get());
      expect(error).toMatchObject({ statusCode: 429, code: 'TooManyRequests' });
      expect(Number(error.headers?.get('retry-after'))).toBeGreaterThan(0);
      expect(slow.emulator.counters.get('users.list')).toBe(3);
    });
  });
});
