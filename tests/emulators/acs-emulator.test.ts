import { randomBytes, randomUUID } from 'node:crypto';
import type { CommunicationIdentityClient, TokenScope } from '@azure/communication-identity';
import type { TokenCredential } from '@azure/identity';
import { expect } from '@jest/globals';
import { decodeJwt } from 'jose';
import { createIdentityClient } from '../../src/adapters/acs/identity-client';
import { createAcsEmulator, type AcsEmulator } from '../../src/local/acs/acs-emulator';
import { SigningKeySet } from '../../src/local/entra/signing-keys';
import { DEMO_USERS, LOCAL_API_CLIENT_ID } from '../../src/local/local-directory';
import { mintTeamsUserToken, sendSignedAcsRequest } from '../helpers/acs-signed-request';

interface RestErrorLike {
  readonly name: string;
  readonly statusCode?: number;
  readonly code?: string;
  readonly message: string;
  readonly response?: { readonly headers: { get(name: string): string | undefined } };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MINUTE_MS = 60_000;

describe('ACS Identity emulator with the real CommunicationIdentityClient', () => {
  let entraKeys: SigningKeySet;
  let acs: AcsEmulator;
  let client: CommunicationIdentityClient;
  let noRetryClient: CommunicationIdentityClient;

  beforeAll(async () => {
    entraKeys = await SigningKeySet.create();
    acs = await createAcsEmulator({ entraKeys });
    client = createIdentityClient({ connectionString: acs.connectionString });
    noRetryClient = createIdentityClient({ connectionString: acs.connectionString, maxRetries: 0 });
  });

  afterAll(async () => {
    await acs.close();
  });

  afterEach(() => {
    acs.faults.clear();
  });

  describe('createUser', () => {
    it('creates an identity of this resource from an empty body', async () => {
      const user = await client.createUser();
      const [prefix, suffix] = user.communicationUserId.split('_');
      expect(prefix).toBe(`8:acs:${acs.resourceId}`);
      expect(suffix).toMatch(GUID);
      expect(acs.isAlive(user.communicationUserId)).toBe(true);
      expect(acs.aliveIdentityIds()).toContain(user.communicationUserId);
    });
  });

  describe('createUserAndToken', () => {
    it('issues a 24-hour token by default whose expiresOn matches its exp claim', async () => {
      const before = Date.now();
      const result = await client.createUserAndToken(['chat', 'voip']);
      expect(result.expiresOn).toBeInstanceOf(Date);
      expect(result.expiresOn.getTime()).toBeGreaterThanOrEqual(before + 1440 * MINUTE_MS);
      expect(result.expiresOn.getTime()).toBeLessThanOrEqual(Date.now() + 1440 * MINUTE_MS);

      const verification = await acs.verifyAccessToken(result.token);
      expect(verification.valid).toBe(true);
      expect(verification.claims).toMatchObject({
        skypeid: result.user.communicationUserId.slice('8:'.length),
        scp: 1792,
        acsScope: 'chat,voip',
        resourceId: acs.resourceId,
        exp: Math.floor(result.expiresOn.getTime() / 1000),
      });
      expect(verification.claims?.csi).toBe(String(verification.claims?.iat));
    });

    it('honours tokenExpiresInMinutes', async () => {
      const before = Date.now();
      const result = await client.createUserAndToken(['chat'], { tokenExpiresInMinutes: 60 });
      expect(result.expiresOn.getTime()).toBeGreaterThanOrEqual(before + 60 * MINUTE_MS);
      expect(result.expiresOn.getTime()).toBeLessThanOrEqual(Date.now() + 60 * MINUTE_MS);
      expect(acs.isAlive(result.user.communicationUserId)).toBe(true);
    });

    it('creates no identity when the token request is invalid', async () => {
      const alive = acs.aliveIdentityIds().length;
      await expect(client.createUserAndToken(['chat'], { tokenExpiresInMinutes: 1441 })).rejects.toMatchObject({
        name: 'RestError',
        statusCode: 400,
        code: 'ValidationError',
      });
      expect(acs.aliveIdentityIds()).toHaveLength(alive);
    });
  });

  describe('getToken', () => {
    it('issues a token with the requested scopes and lifetime', async () => {
      const user = await client.createUser();
      const before = Date.now();
      const token = await client.getToken(user, ['voip', 'chat.join'], { tokenExpiresInMinutes: 120 });
      expect(token.expiresOn).toBeInstanceOf(Date);
      expect(token.expiresOn.getTime()).toBeGreaterThanOrEqual(before + 120 * MINUTE_MS);
      expect(token.expiresOn.getTime()).toBeLessThanOrEqual(Date.now() + 120 * MINUTE_MS);
      const verification = await acs.verifyAccessToken(token.token);
      expect(verification).toMatchObject({ valid: true, claims: { acsScope: 'voip,chat.join' } });
      expect(verification.claims?.exp).toBe(Math.floor(token.expiresOn.getTime() / 1000));
      expect(acs.counters.get('identities.issueToken')).toBeGreaterThanOrEqual(1);
    });

    it.each([59, 1441])('refuses expiresInMinutes %i with 400 ValidationError', async (minutes) => {
      const user = await client.createUser();
      await expect(client.getToken(user, ['chat'], { tokenExpiresInMinutes: minutes })).rejects.toMatchObject({
        name: 'RestError',
        statusCode: 400,
        code: 'ValidationError',
      });
    });

    it('refuses an empty scope list with the live error', async () => {
      const user = await client.createUser();
      await expect(client.getToken(user, [])).rejects.toMatchObject({
        statusCode: 400,
        code: 'ValidationError',
        message: 'Invalid scopes - Scopes field is required.',
      });
    });

    it('refuses an unknown scope', async () => {
      const user = await client.createUser();
      await expect(client.getToken(user, ['admin' as TokenScope])).rejects.toMatchObject({ statusCode: 400, code: 'ValidationError' });
    });

    it('answers 404 IdentityNotFound for an identity of this resource that never existed', async () => {
      const ghost = { communicationUserId: `8:acs:${acs.resourceId}_${randomUUID()}` };
      await expect(client.getToken(ghost, ['chat'])).rejects.toMatchObject({
        statusCode: 404,
        code: 'IdentityNotFound',
        message: "Provided identity doesn't exist.",
      });
    });

    it("answers 401 IdentityNotOwned for another resource's identity on issue, revoke and delete", async () => {
      const foreign = { communicationUserId: `8:acs:${randomUUID()}_${randomUUID()}` };
      const expected = { statusCode: 401, code: 'IdentityNotOwned', message: "Provided identity doesn't belong to the resource." };
      await expect(client.getToken(foreign, ['chat'])).rejects.toMatchObject(expected);
      await expect(client.revokeTokens(foreign)).rejects.toMatchObject(expected);
      await expect(client.deleteUser(foreign)).rejects.toMatchObject(expected);
    });

    it('answers 400 for a malformed identity id', async () => {
      await expect(client.getToken({ communicationUserId: '8:orgid:not-an-acs-user' }, ['chat'])).rejects.toMatchObject({
        statusCode: 400,
      });
    });
  });

  describe('revokeTokens', () => {
    it('invalidates tokens issued before the revocation and not those issued after', async () => {
      const user = await client.createUser();
      const earlier = await client.getToken(user, ['chat']);
      await client.revokeTokens(user);
      const later = await client.getToken(user, ['chat']);

      await expect(acs.verifyAccessToken(earlier.token)).resolves.toMatchObject({ valid: false, reason: 'revoked' });
      await expect(acs.verifyAccessToken(later.token)).resolves.toMatchObject({ valid: true });
      expect(acs.identities().find((identity) => identity.id === user.communicationUserId)?.tokensRevokedAt).toBeInstanceOf(Date);
      expect(acs.isAlive(user.communicationUserId)).toBe(true);
    });
  });

  describe('verifyAccessToken', () => {
    it('reports a tampered token and a token of another emulator as bad-signature', async () => {
      const { token } = await client.createUserAndToken(['chat']);
      const [header, payload, signature] = token.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
      const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, acsScope: 'chat,voip' })).toString('base64url')}.${signature}`;
      await expect(acs.verifyAccessToken(forged)).resolves.toMatchObject({ valid: false, reason: 'bad-signature' });

      const other = await createAcsEmulator({ entraKeys, resourceId: acs.resourceId });
      try {
        const otherClient = createIdentityClient({ connectionString: other.connectionString });
        const foreign = await otherClient.createUserAndToken(['chat']);
        await expect(acs.verifyAccessToken(foreign.token)).resolves.toMatchObject({ valid: false, reason: 'bad-signature' });
      } finally {
        await other.close();
      }
    });
  });

  describe('deleteUser', () => {
    it('deletes the identity and invalidates its tokens', async () => {
      const { user, token } = await client.createUserAndToken(['chat']);
      await client.deleteUser(user);

      expect(acs.isAlive(user.communicationUserId)).toBe(false);
      expect(acs.identities().find((identity) => identity.id === user.communicationUserId)?.deletedAt).toBeInstanceOf(Date);
      await expect(acs.verifyAccessToken(token)).resolves.toMatchObject({ valid: false, reason: 'deleted' });
      await expect(client.getToken(user, ['chat'])).rejects.toMatchObject({ name: 'RestError', statusCode: 404, code: 'IdentityNotFound' });
      await expect(client.deleteUser(user)).rejects.toMatchObject({ statusCode: 404 });
    });

    it('sees identities deleted from outside the service as gone', async () => {
      const id = acs.seedIdentity();
      expect(acs.isAlive(id)).toBe(true);
      expect(acs.deleteIdentityDirectly(id)).toBe(true);
      await expect(client.getToken({ communicationUserId: id }, ['voip'])).rejects.toMatchObject({ statusCode: 404 });
    });
  });

  describe('getTokenForTeamsUser', () => {
    const alice = DEMO_USERS.alice;

    it('exchanges a Teams user token for an ACS token that expires with it', async () => {
      const teamsUserAadToken = await mintTeamsUserToken(entraKeys, { oid: alice.oid, appId: LOCAL_API_CLIENT_ID });
      const { exp } = decodeJwt(teamsUserAadToken);
      const result = await client.getTokenForTeamsUser({ teamsUserAadToken, clientId: LOCAL_API_CLIENT_ID, userObjectId: alice.oid });
      expect(result.expiresOn).toBeInstanceOf(Date);
      expect(exp).toEqual(expect.any(Number));
      expect(result.expiresOn.getTime()).toBe(Number(exp) * 1000);
      await expect(acs.verifyAccessToken(result.token)).resolves.toMatchObject({ valid: true, claims: { skypeid: `orgid:${alice.oid}` } });
    });

    it('accepts a v2 token (azp and the v2 issuer)', async () => {
      const teamsUserAadToken = await mintTeamsUserToken(entraKeys, { oid: alice.oid, appId: LOCAL_API_CLIENT_ID, version: 'v2' });
      await expect(
        client.getTokenForTeamsUser({ teamsUserAadToken, clientId: LOCAL_API_CLIENT_ID, userObjectId: alice.oid }),
      ).resolves.toMatchObject({ expiresOn: expect.any(Date) });
    });

    it("answers 400 when userObjectId is not the token's oid", async () => {
      const teamsUserAadToken = await mintTeamsUserToken(entraKeys, { oid: alice.oid, appId: LOCAL_API_CLIENT_ID });
      await expect(
        client.getTokenForTeamsUser({ teamsUserAadToken, clientId: LOCAL_API_CLIENT_ID, userObjectId: DEMO_USERS.bob.oid }),
      ).rejects.toMatchObject({ statusCode: 400, code: 'ValidationError' });
    });

    it("answers 400 when clientId is not the token's appid", async () => {
      const teamsUserAadToken = await mintTeamsUserToken(entraKeys, { oid: alice.oid, appId: LOCAL_API_CLIENT_ID });
      await expect(
        client.getTokenForTeamsUser({ teamsUserAadToken, clientId: randomUUID(), userObjectId: alice.oid }),
      ).rejects.toMatchObject({ statusCode: 400, code: 'ValidationError' });
    });

    it.each([
      ['expired', { expiresInSeconds: -3600 }],
      ['issued for another audience', { aud: 'https://graph.microsoft.com' }],
      ['missing Teams.ManageChats', { scp: 'Teams.ManageCalls' }],
      ['from another tenant', { tenantId: randomUUID() }],
    ])('answers 401 InvalidAccessToken for a token %s', async (_case, overrides) => {
      const teamsUserAadToken = await mintTeamsUserToken(entraKeys, { oid: alice.oid, appId: LOCAL_API_CLIENT_ID, ...overrides });
      await expect(
        client.getTokenForTeamsUser({ teamsUserAadToken, clientId: LOCAL_API_CLIENT_ID, userObjectId: alice.oid }),
      ).rejects.toMatchObject({ statusCode: 401, code: 'InvalidAccessToken', message: 'Provided access token is not valid.' });
    });

    it('answers 401 InvalidAccessToken for an empty token', async () => {
      await expect(
        client.getTokenForTeamsUser({ teamsUserAadToken: '', clientId: LOCAL_API_CLIENT_ID, userObjectId: alice.oid }),
      ).rejects.toMatchObject({ statusCode: 401, code: 'InvalidAccessToken' });
    });

    it('answers 401 for a token signed by a key Entra does not publish', async () => {
      const strangerKeys = await SigningKeySet.create();
      const teamsUserAadToken = await mintTeamsUserToken(strangerKeys, { oid: alice.oid, appId: LOCAL_API_CLIENT_ID });
      await expect(
        client.getTokenForTeamsUser({ teamsUserAadToken, clientId: LOCAL_API_CLIENT_ID, userObjectId: alice.oid }),
      ).rejects.toMatchObject({ statusCode: 401, code: 'InvalidAccessToken' });
    });
  });

  describe('HMAC authentication', () => {
    it('refuses a client holding the wrong access key with 401 Denied', async () => {
      const wrongKey = randomBytes(64).toString('base64');
      const intruder = createIdentityClient({ connectionString: `endpoint=${acs.endpoint};accesskey=${wrongKey}` });
      await expect(intruder.createUser()).rejects.toMatchObject({
        name: 'RestError',
        statusCode: 401,
        code: 'Denied',
        message: 'Denied by the resource provider.',
      });
    });

    it('accepts a request signed by hand the documented way', async () => {
      const response = await sendSignedAcsRequest({
        method: 'POST',
        baseUrl: acs.url,
        pathAndQuery: '/identities?api-version=2023-10-01',
        accessKey: acs.accessKey,
        body: '{"createTokenWithScopes":["chat"]}',
        headers: { 'x-ms-client-request-id': 'c0ffee00-0000-4000-8000-000000000001' },
      });
      expect(response.status).toBe(201);
      expect(response.body).toMatchObject({ identity: { id: expect.any(String) }, accessToken: { token: expect.any(String) } });
      const { accessToken } = response.body as { accessToken: { expiresOn: string } };
      expect(accessToken.expiresOn).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}\+00:00$/);
      expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(response.headers.get('x-ms-client-request-id')).toBe('c0ffee00-0000-4000-8000-000000000001');
      expect(response.headers.get('ms-cv')).toMatch(/\.0$/);
      expect(response.headers.get('x-processing-time')).toMatch(/^\d+ms$/);
      expect(response.headers.get('api-supported-versions')).toContain('2023-10-01');
    });

    it('refuses a date more than 5 minutes off', async () => {
      const response = await sendSignedAcsRequest({
        method: 'POST',
        baseUrl: acs.url,
        pathAndQuery: '/identities?api-version=2023-10-01',
        accessKey: acs.accessKey,
        date: new Date(Date.now() - 6 * MINUTE_MS),
      });
      expect(response.status).toBe(401);
      expect(response.body).toMatchObject({ error: { code: 'Denied', message: expect.stringContaining('5 minutes') } });
    });

    it('refuses a body changed after signing', async () => {
      const user = await client.createUser();
      const path = `/identities/${encodeURIComponent(user.communicationUserId)}/:issueAccessToken?api-version=2023-10-01`;
      const response = await sendSignedAcsRequest({
        method: 'POST',
        baseUrl: acs.url,
        pathAndQuery: path,
        accessKey: acs.accessKey,
        body: '{"scopes":["chat"]}',
        sentBody: '{"scopes":["chat","voip"]}',
      });
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ error: { code: 'Denied', message: 'Denied by the resource provider.' } });
      expect(response.headers.get('content-type')).toBe('application/json');
    });

    it('refuses a request without an Authorization header', async () => {
      const response = await fetch(`${acs.url}/identities?api-version=2023-10-01`, { method: 'POST' });
      expect(response.status).toBe(401);
      await expect(response.json()).resolves.toMatchObject({ error: { code: 'Denied' } });
    });
  });

  describe('request validation', () => {
    it.each([
      ['an unsupported api-version', '/identities?api-version=2020-01-01'],
      ['no api-version', '/identities'],
    ])('answers 400 for %s', async (_case, pathAndQuery) => {
      const response = await sendSignedAcsRequest({ method: 'POST', baseUrl: acs.url, pathAndQuery, accessKey: acs.accessKey });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({
        error: { code: 'UnsupportedApiVersion', message: expect.stringContaining('does not support the API version') },
      });
    });

    it('accepts the api-versions earlier SDK releases sent', async () => {
      for (const version of ['2021-03-07', '2022-06-01', '2022-10-01']) {
        const response = await sendSignedAcsRequest({
          method: 'POST',
          baseUrl: acs.url,
          pathAndQuery: `/identities?api-version=${version}`,
          accessKey: acs.accessKey,
        });
        expect(response.status).toBe(201);
      }
    });

    it('answers 400 for a body that is not JSON', async () => {
      const response = await sendSignedAcsRequest({
        method: 'POST',
        baseUrl: acs.url,
        pathAndQuery: '/identities?api-version=2023-10-01',
        accessKey: acs.accessKey,
        body: '{"createTokenWithScopes":',
      });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: { code: 'ValidationError' } });
    });

    it('answers 400 ValidationError when a Teams exchange field is missing', async () => {
      const response = await sendSignedAcsRequest({
        method: 'POST',
        baseUrl: acs.url,
        pathAndQuery: '/teamsUser/:exchangeAccessToken?api-version=2023-10-01',
        accessKey: acs.accessKey,
        body: JSON.stringify({ token: 'x', appId: LOCAL_API_CLIENT_ID }),
      });
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ error: { code: 'ValidationError', target: 'userId' } });
    });
  });

  describe('faults', () => {
    it('surfaces an injected 503 (no retries)', async () => {
      const user = await client.createUser();
      acs.faults.inject({ route: 'identities.issueToken', status: 503 });
      const before = acs.counters.get('identities.issueToken');
      await expect(noRetryClient.getToken(user, ['chat'])).rejects.toMatchObject({
        name: 'RestError',
        statusCode: 503,
        code: 'ServiceUnavailable',
      });
      expect(acs.counters.get('identities.issueToken')).toBe(before + 1);
      await expect(noRetryClient.getToken(user, ['chat'])).resolves.toMatchObject({ token: expect.any(String) });
    });

    it('can lose the answer after the identity was created (afterHandler)', async () => {
      const alive = acs.aliveIdentityIds().length;
      acs.faults.inject({ route: 'identities.create', status: 500, afterHandler: true });
      await expect(noRetryClient.createUser()).rejects.toMatchObject({ statusCode: 500 });
      expect(acs.aliveIdentityIds()).toHaveLength(alive + 1);
    });
  });
});

describe('ACS Identity emulator request limits', () => {
  let acs: AcsEmulator;

  beforeAll(async () => {
    acs = await createAcsEmulator({
      entraKeys: await SigningKeySet.create(),
      limits: { 'identities.create': { limit: 2, windowMs: 60_000 } },
    });
  });

  afterAll(async () => {
    await acs.close();
  });

  it('answers 429 with Retry-After once an operation exceeds its limit', async () => {
    const client = createIdentityClient({ connectionString: acs.connectionString, maxRetries: 0 });
    await client.createUser();
    await client.createUser();
    const refused = client.createUser();
    await expect(refused).rejects.toMatchObject({ name: 'RestError', statusCode: 429, code: 'TooManyRequests' });
    const error = (await refused.catch((reason: unknown) => reason)) as RestErrorLike;
    expect(Number(error.response?.headers.get('retry-after'))).toBeGreaterThan(0);
    // createUserAndToken has its own limit, so it still goes through.
    await expect(client.createUserAndToken(['chat'])).resolves.toMatchObject({ token: expect.any(String) });
    acs.resetRateLimits();
    await expect(client.createUser()).resolves.toMatchObject({ communicationUserId: expect.any(String) });
  });
});

describe('createIdentityClient', () => {
  const key = randomBytes(32).toString('base64');
  const credential: TokenCredential = { getToken: () => Promise.resolve(null) };

  it.each([
    'http://127.0.0.1:8080/',
    'http://127.8.9.10/',
    'http://localhost:1/',
    'http://[::1]:8080/',
    'https://contoso.communication.azure.com/',
  ])('accepts %s in a connection string', (endpoint) => {
    expect(() => createIdentityClient({ connectionString: `endpoint=${endpoint};accesskey=${key}` })).not.toThrow();
  });

  it('refuses plain http to a host that is not loopback', () => {
    expect(() => createIdentityClient({ connectionString: `endpoint=http://contoso.communication.azure.com/;accesskey=${key}` })).toThrow(
      TypeError,
    );
    expect(() => createIdentityClient({ connectionString: `endpoint=http://10.0.0.5/;accesskey=${key}` })).toThrow(TypeError);
  });

  it('refuses a TokenCredential over http and accepts it over https', () => {
    expect(() => createIdentityClient({ endpoint: 'http://127.0.0.1:8080/', credential })).toThrow(TypeError);
    expect(() => createIdentityClient({ endpoint: 'https://contoso.communication.azure.com/', credential })).not.toThrow();
  });

  it('refuses a malformed connection string without echoing the access key', () => {
    expect(() => createIdentityClient({ connectionString: `accesskey=${key}` })).toThrow(TypeError);
    let message = '';
    try {
      createIdentityClient({ connectionString: `endpoint=ftp://x/;accesskey=${key}` });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toBe('');
    expect(message).not.toContain(key);
  });

  it('refuses a negative maxRetries', () => {
    expect(() =>
      createIdentityClient({ connectionString: `endpoint=https://x.communication.azure.com/;accesskey=${key}`, maxRetries: -1 }),
    ).toThrow(TypeError);
  });
});
