import { ConfidentialClientApplication, InteractionRequiredAuthError, ServerError } from '@azure/msal-node';
import { expect } from '@jest/globals';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { createMsalClient } from '../../src/adapters/entra/msal-client';
import { createMsalNetworkClient, type MsalNetworkClient } from '../../src/adapters/entra/msal-network-client';
import { createEntraEmulator, type EntraEmulator } from '../../src/local/entra/entra-emulator';
import { SigningKeySet } from '../../src/local/entra/signing-keys';
import { startServer } from '../../src/local/kit/start-server';
import {
  ACS_TEAMS_AUDIENCE,
  DEMO_USERS,
  GRAPH_RESOURCE,
  LOCAL_API_CLIENT_ID,
  LOCAL_SPA_CLIENT_ID,
  LOCAL_TENANT_ID,
} from '../../src/local/local-directory';
import { createLocalCertificates, type LocalCertificates } from '../../src/local/tls/local-certificate-authority';
import { accessTokenOf } from './support';

const API_SECRET = 'local-api-secret';
const OTHER_CLIENT_ID = '3b0f5a8e-7f55-4c35-9d0e-5a1d2c6f0b11';
const GRAPH_USER_READWRITE = `${GRAPH_RESOURCE}/User.ReadWrite`;
const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' };

interface AadErrorBody {
  error: string;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
  error_uri?: string;
  suberror?: string;
  claims?: string;
}

let certs: LocalCertificates;
let entra: EntraEmulator;
/** Raw HTTPS client for wire-level checks: the same network module MSAL uses, trusting the local CA. */
let http: MsalNetworkClient;

beforeAll(async () => {
  certs = createLocalCertificates();
  entra = await createEntraEmulator({
    tls: { certPem: certs.certPem, keyPem: certs.keyPem },
    applications: [
      {
        clientId: LOCAL_API_CLIENT_ID,
        clientSecret: API_SECRET,
        displayName: 'acs-auth-server',
        graphDelegatedScopes: ['User.Read', 'User.ReadWrite'],
        graphApplicationRoles: ['User.ReadWrite.All'],
      },
      { clientId: OTHER_CLIENT_ID, clientSecret: 'other-secret' },
    ],
  });
  http = createMsalNetworkClient({ ca: certs.caCertPem });
});

afterAll(async () => {
  http.destroy();
  await entra.close();
});

afterEach(() => {
  entra.faults.clear();
});

function msalClient(overrides: { clientSecret?: string; clientId?: string } = {}): ConfidentialClientApplication {
  return createMsalClient({
    authorityHost: entra.url,
    tenantId: entra.tenantId,
    clientId: overrides.clientId ?? LOCAL_API_CLIENT_ID,
    clientSecret: overrides.clientSecret ?? API_SECRET,
    ca: certs.caCertPem,
  });
}

function postForm(path: string, form: Record<string, string>, headers: Record<string, string> = FORM_HEADERS) {
  return http.sendPostRequestAsync<AadErrorBody & Record<string, unknown>>(`${entra.url}${path}`, {
    headers,
    body: new URLSearchParams(form).toString(),
  });
}

function oboForm(assertion: string, scope = `${GRAPH_USER_READWRITE} openid profile offline_access`): Record<string, string> {
  return {
    client_id: LOCAL_API_CLIENT_ID,
    scope,
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    requested_token_use: 'on_behalf_of',
    assertion,
    client_secret: API_SECRET,
  };
}

describe('Entra emulator: metadata and signing keys', () => {
  it('serves v2 tenant metadata whose issuer and endpoints are on the emulator host', async () => {
    const response = await http.sendGetRequestAsync<Record<string, unknown>>(`${entra.authority}/v2.0/.well-known/openid-configuration`);
    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store, no-cache');
    expect(response.headers['x-ms-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.body).toMatchObject({
      issuer: `${entra.url}/${LOCAL_TENANT_ID}/v2.0`,
      token_endpoint: `${entra.authority}/oauth2/v2.0/token`,
      authorization_endpoint: `${entra.authority}/oauth2/v2.0/authorize`,
      jwks_uri: `${entra.authority}/discovery/v2.0/keys`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      cloud_instance_name: 'microsoftonline.com',
      msgraph_host: 'graph.microsoft.com',
    });
    expect(entra.issuerV2).toBe(response.body['issuer']);
  });

  it('serves v1 tenant metadata with the sts.windows.net issuer', async () => {
    const response = await http.sendGetRequestAsync<Record<string, unknown>>(`${entra.authority}/.well-known/openid-configuration`);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      issuer: `https://sts.windows.net/${LOCAL_TENANT_ID}/`,
      token_endpoint: `${entra.authority}/oauth2/token`,
      jwks_uri: `${entra.url}/common/discovery/keys`,
    });
    expect(entra.issuerV1).toBe(response.body['issuer']);
  });

  it('publishes v2 keys with kid = x5t and the tenant issuer, and no alg (as Entra)', async () => {
    const response = await http.sendGetRequestAsync<JSONWebKeySet>(`${entra.authority}/discovery/v2.0/keys`);
    expect(response.status).toBe(200);
    expect(response.body.keys).toHaveLength(entra.keys.publishedKids.length);
    for (const key of response.body.keys) {
      expect(key).toMatchObject({ kty: 'RSA', use: 'sig', e: 'AQAB', x5t: key.kid, issuer: entra.issuerV2 });
      expect(key).not.toHaveProperty('alg');
      expect(key).not.toHaveProperty('d');
    }
    const common = await http.sendGetRequestAsync<JSONWebKeySet>(`${entra.url}/common/discovery/v2.0/keys`);
    expect(common.body.keys[0]).toMatchObject({ issuer: `${entra.url}/{tenantid}/v2.0` });
  });

  it('verifies a v1 API token with jose against the v1 keys and v1 metadata issuer', async () => {
    const token = await entra.mintAccessToken({ user: 'alice' });
    const jwks = await http.sendGetRequestAsync<JSONWebKeySet>(`${entra.url}/common/discovery/keys`);
    expect(jwks.body.keys[0]).not.toHaveProperty('issuer');
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks.body), {
      issuer: entra.issuerV1,
      audience: `api://${LOCAL_API_CLIENT_ID}`,
      algorithms: ['RS256'],
    });
    expect(protectedHeader).toMatchObject({ typ: 'JWT', alg: 'RS256', kid: entra.keys.currentKid, x5t: entra.keys.currentKid });
    expect(payload).toMatchObject({
      ver: '1.0',
      tid: LOCAL_TENANT_ID,
      oid: DEMO_USERS.alice.oid,
      scp: 'access_as_user',
      appid: LOCAL_SPA_CLIENT_ID,
      appidacr: '0',
      upn: DEMO_USERS.alice.userPrincipalName,
      unique_name: DEMO_USERS.alice.userPrincipalName,
    });
    expect(payload.iat).toEqual(expect.any(Number));
    expect(payload.exp).toBe(Number(payload.iat) + 3600);
  });

  it('verifies a v2 API token against the v2 keys, with the client id as audience and no x5t header', async () => {
    const token = await entra.mintAccessToken({ user: 'bob', version: 2 });
    const jwks = await http.sendGetRequestAsync<JSONWebKeySet>(`${entra.authority}/discovery/v2.0/keys`);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks.body), {
      issuer: entra.issuerV2,
      audience: LOCAL_API_CLIENT_ID,
    });
    expect(protectedHeader).not.toHaveProperty('x5t');
    expect(payload).toMatchObject({
      ver: '2.0',
      oid: DEMO_USERS.bob.oid,
      azp: LOCAL_SPA_CLIENT_ID,
      preferred_username: DEMO_USERS.bob.userPrincipalName,
    });
    expect(payload).not.toHaveProperty('appid');
  });

  it('mints a Teams user token for ACS in the v1 shape', async () => {
    const token = await entra.mintTeamsToken({ user: 'carol', appId: OTHER_CLIENT_ID });
    const payload = await entra.keys.verify(token, { audience: ACS_TEAMS_AUDIENCE, issuer: entra.issuerV1 });
    expect(payload).toMatchObject({
      oid: DEMO_USERS.carol.oid,
      tid: LOCAL_TENANT_ID,
      appid: OTHER_CLIENT_ID,
      scp: 'Teams.ManageCalls Teams.ManageChats',
      ver: '1.0',
    });
  });

  it('answers an unknown tenant with invalid_tenant AADSTS90002', async () => {
    const response = await http.sendGetRequestAsync<AadErrorBody>(
      `${entra.url}/00000000-0000-0000-0000-000000000001/v2.0/.well-known/openid-configuration`,
    );
    expect(response.status).toBe(400);
    expect(response.body.error).toBe('invalid_tenant');
    expect(response.body.error_codes).toEqual([90002]);
    expect(response.body.error_description).toMatch(/^AADSTS90002: Tenant '00000000-0000-0000-0000-000000000001' not found/);
  });

  it('serves instance discovery in the shape MSAL expects', async () => {
    const authorize = encodeURIComponent(`${entra.authority}/oauth2/v2.0/authorize`);
    const response = await http.sendGetRequestAsync<Record<string, unknown>>(
      `${entra.url}/common/discovery/instance?api-version=1.1&authorization_endpoint=${authorize}`,
    );
    expect(response.status).toBe(200);
    const host = new URL(entra.url).host;
    expect(response.body).toEqual({
      tenant_discovery_endpoint: `${entra.authority}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    });
  });

  it('publishes a rolled key at once and keeps the old one until it is retired', async () => {
    const keys = await SigningKeySet.create();
    const rolling = await createEntraEmulator({
      tls: { certPem: certs.certPem, keyPem: certs.keyPem },
      applications: [{ clientId: LOCAL_API_CLIENT_ID }],
      keys,
    });
    try {
      const kidsAt = async (): Promise<(string | undefined)[]> =>
        (await http.sendGetRequestAsync<JSONWebKeySet>(`${rolling.authority}/discovery/v2.0/keys`)).body.keys.map((key) => key.kid);
      const oldKid = keys.currentKid;
      const beforeRoll = await rolling.mintAccessToken({ user: 'alice' });
      expect(await kidsAt()).toEqual([oldKid]);

      const newKid = await keys.roll();
      expect(await kidsAt()).toEqual([newKid, oldKid]);
      expect(decodeProtectedHeader(await rolling.mintAccessToken({ user: 'alice' })).kid).toBe(newKid);
      await expect(keys.verify(beforeRoll)).resolves.toMatchObject({ oid: DEMO_USERS.alice.oid });

      keys.retire();
      expect(await kidsAt()).toEqual([newKid]);
      await expect(keys.verify(beforeRoll)).rejects.toThrow();
    } finally {
      await rolling.close();
    }
  });
});

describe('Entra emulator: On-Behalf-Of through msal-node', () => {
  it('exchanges a user token for a v1 Graph token for the same user, then serves the repeat from the MSAL cache', async () => {
    const cca = msalClient();
    const assertion = await entra.mintAccessToken({ user: 'alice' });
    const before = entra.counters.get('token');

    const result = await cca.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] });
    expect(result).not.toBeNull();
    expect(result?.fromCache).toBe(false);
    expect(entra.counters.get('token')).toBe(before + 1);

    const graphToken = accessTokenOf(result);
    const header = decodeProtectedHeader(graphToken);
    expect(typeof header['nonce']).toBe('string');
    const payload = await entra.keys.verify(graphToken, { audience: GRAPH_RESOURCE, issuer: entra.issuerV1 });
    expect(payload).toMatchObject({
      oid: DEMO_USERS.alice.oid,
      tid: LOCAL_TENANT_ID,
      appid: LOCAL_API_CLIENT_ID,
      idtyp: 'user',
      ver: '1.0',
      upn: DEMO_USERS.alice.userPrincipalName,
    });
    const scp = String(payload['scp']).split(' ');
    expect(scp).toEqual(expect.arrayContaining(['User.Read', 'User.ReadWrite']));
    expect(scp).not.toContain('offline_access');
    expect(result?.scopes.map((scope) => scope.toLowerCase())).toEqual(expect.arrayContaining([GRAPH_USER_READWRITE.toLowerCase()]));

    const again = await cca.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] });
    expect(again?.fromCache).toBe(true);
    expect(again?.accessToken).toBe(graphToken);
    expect(entra.counters.get('token')).toBe(before + 1);
  });

  it('accepts a v2 assertion (aud = client id) and .default', async () => {
    const assertion = await entra.mintAccessToken({ user: 'bob', version: 2 });
    const result = await msalClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [`${GRAPH_RESOURCE}/.default`] });
    const payload = decodeJwt(accessTokenOf(result));
    expect(payload).toMatchObject({ oid: DEMO_USERS.bob.oid, aud: GRAPH_RESOURCE, iss: entra.issuerV1 });
    expect(String(payload['scp']).split(' ')).toEqual(expect.arrayContaining(['User.Read', 'User.ReadWrite']));
  });

  it('refuses a wrong client secret with 401 invalid_client AADSTS7000215', async () => {
    const assertion = await entra.mintAccessToken({ user: 'alice' });
    const error = await msalClient({ clientSecret: 'not-the-secret' })
      .acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ errorCode: 'invalid_client', errorNo: 7000215 });
    expect((error as ServerError).errorMessage).toContain('AADSTS7000215: Invalid client secret provided');
  });

  it('refuses an unknown client with unauthorized_client AADSTS700016', async () => {
    const assertion = await entra.mintAccessToken({ user: 'alice' });
    await expect(
      msalClient({ clientId: '5d2b7c3e-0a6f-4f8b-9c1d-2e3f4a5b6c7d' }).acquireTokenOnBehalfOf({
        oboAssertion: assertion,
        scopes: [GRAPH_USER_READWRITE],
      }),
    ).rejects.toMatchObject({ name: 'ServerError', errorCode: 'unauthorized_client', errorNo: 700016 });
  });

  it('refuses an assertion issued for another audience (AADSTS500131)', async () => {
    const assertion = await entra.mintAccessToken({ user: 'alice', audience: `api://${OTHER_CLIENT_ID}` });
    await expect(msalClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] })).rejects.toMatchObject({
      name: 'ServerError',
      errorCode: 'invalid_grant',
      errorNo: 500131,
    });
  });

  it('refuses a Graph token used as an assertion (confused deputy)', async () => {
    const graph = await msalClient().acquireTokenOnBehalfOf({
      oboAssertion: await entra.mintAccessToken({ user: 'carol' }),
      scopes: [GRAPH_USER_READWRITE],
    });
    await expect(
      msalClient().acquireTokenOnBehalfOf({ oboAssertion: accessTokenOf(graph), scopes: [GRAPH_USER_READWRITE] }),
    ).rejects.toMatchObject({ errorCode: 'invalid_grant', errorNo: 500131 });
  });

  it('refuses an expired assertion (AADSTS500133)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const assertion = await entra.mintAccessToken({ user: 'alice', issuedAt: now - 7200, lifetimeSeconds: 3600 });
    const error = await msalClient()
      .acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ errorCode: 'invalid_grant', errorNo: 500133 });
    expect((error as ServerError).errorMessage).toMatch(
      /Error\(s\): 500133 - Timestamp: .* - Description: AADSTS500133: Assertion is not within its valid time range/,
    );
  });

  it('refuses an assertion that is not yet valid (AADSTS500133)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const assertion = await entra.mintAccessToken({ user: 'alice', issuedAt: now, notBefore: now + 3000 });
    await expect(msalClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] })).rejects.toMatchObject({
      errorCode: 'invalid_grant',
      errorNo: 500133,
    });
  });

  it('refuses an assertion signed by a key the tenant does not publish (AADSTS50013)', async () => {
    const rogue = await SigningKeySet.create();
    const genuine = decodeJwt(await entra.mintAccessToken({ user: 'alice' }));
    const unknownKid = await rogue.sign(genuine, { x5t: true });
    await expect(msalClient().acquireTokenOnBehalfOf({ oboAssertion: unknownKid, scopes: [GRAPH_USER_READWRITE] })).rejects.toMatchObject({
      errorCode: 'invalid_grant',
      errorNo: 50013,
      errorMessage: expect.stringContaining('The key was not found'),
    });
    // Same claims, the tenant's kid in the header, but a forged signature.
    const forged = await rogue.sign(genuine, { header: { kid: entra.keys.currentKid } });
    await expect(msalClient().acquireTokenOnBehalfOf({ oboAssertion: forged, scopes: [GRAPH_USER_READWRITE] })).rejects.toMatchObject({
      errorCode: 'invalid_grant',
      errorNo: 50013,
      errorMessage: expect.stringContaining('did not match the expected signature'),
    });
  });

  it('refuses an assertion with a foreign issuer', async () => {
    const assertion = await entra.mintAccessToken({
      user: 'alice',
      issuer: 'https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/',
    });
    await expect(msalClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] })).rejects.toMatchObject({
      errorCode: 'invalid_grant',
      errorNo: 50013,
    });
  });

  it('refuses an app-only assertion: On-Behalf-Of needs a user token', async () => {
    const assertion = await entra.mintAccessToken({ scp: null, roles: ['Tokens.Issue'], clientAppId: OTHER_CLIENT_ID });
    expect(decodeJwt(assertion)).not.toHaveProperty('scp');
    await expect(msalClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] })).rejects.toMatchObject({
      name: 'ServerError',
      errorCode: 'invalid_grant',
      errorMessage: expect.stringContaining('not a user token'),
    });
  });

  it('refuses a Graph permission that does not exist with invalid_scope AADSTS70011', async () => {
    const assertion = await entra.mintAccessToken({ user: 'alice' });
    await expect(
      msalClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [`${GRAPH_RESOURCE}/Not.A.Permission`] }),
    ).rejects.toMatchObject({ name: 'ServerError', errorCode: 'invalid_scope', errorNo: 70011 });
  });

  it('asks for consent when the app has no consent for a Graph permission', async () => {
    const assertion = await entra.mintAccessToken({ user: 'alice' });
    const error = await msalClient()
      .acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [`${GRAPH_RESOURCE}/Mail.Read`] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InteractionRequiredAuthError);
    expect(error).toMatchObject({ errorCode: 'invalid_grant', subError: 'consent_required', errorNo: 65001, claims: '' });
  });

  it('surfaces conditional access (MFA) as InteractionRequiredAuthError with a claims challenge', async () => {
    entra.requireInteraction(DEMO_USERS.bob.oid, 'mfa');
    try {
      const assertion = await entra.mintAccessToken({ user: 'bob' });
      const error = await msalClient()
        .acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InteractionRequiredAuthError);
      expect(error).toMatchObject({ errorCode: 'interaction_required', errorNo: 50079 });
      const claims = JSON.parse((error as InteractionRequiredAuthError).claims) as {
        access_token: { capolids: { essential: boolean; values: string[] } };
      };
      expect(claims.access_token.capolids.essential).toBe(true);
      expect(claims.access_token.capolids.values).toHaveLength(1);
    } finally {
      entra.clearInteraction(DEMO_USERS.bob.oid);
    }
    const after = await msalClient().acquireTokenOnBehalfOf({
      oboAssertion: await entra.mintAccessToken({ user: 'bob' }),
      scopes: [GRAPH_USER_READWRITE],
    });
    expect(decodeJwt(accessTokenOf(after))['oid']).toBe(DEMO_USERS.bob.oid);
  });

  it('surfaces a missing user consent as InteractionRequiredAuthError (consent_required)', async () => {
    entra.requireInteraction(DEMO_USERS.carol.oid, 'consent');
    try {
      const assertion = await entra.mintAccessToken({ user: 'carol' });
      await expect(msalClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] })).rejects.toMatchObject({
        name: 'InteractionRequiredAuthError',
        errorCode: 'invalid_grant',
        subError: 'consent_required',
        errorNo: 65001,
      });
    } finally {
      entra.clearInteraction(DEMO_USERS.carol.oid);
    }
  });

  it('refuses a user the tenant does not have', async () => {
    const assertion = await entra.mintAccessToken({ oid: '0b7c4a3e-9d1f-4e2a-8b6c-5d4e3f2a1b0c' });
    await expect(msalClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] })).rejects.toMatchObject({
      errorCode: 'invalid_grant',
      errorNo: 50034,
    });
  });

  it('surfaces an injected 503 (Retry-After 1) as a ServerError', async () => {
    entra.faults.inject({ route: 'token', status: 503, retryAfterSeconds: 1 });
    const assertion = await entra.mintAccessToken({ user: 'alice' });
    const error = await msalClient()
      .acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [GRAPH_USER_READWRITE] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ errorCode: 'temporarily_unavailable', errorNo: 90033 });
    // msal-node 7 does not copy the HTTP status onto ServerError for token responses.
    expect((error as ServerError).status).toBeUndefined();
  });

  it('after a 429 without Retry-After, MSAL throttles the same scopes for every user without calling', async () => {
    entra.faults.inject({ route: 'token', status: 429 });
    const cca = msalClient();
    await expect(
      cca.acquireTokenOnBehalfOf({ oboAssertion: await entra.mintAccessToken({ user: 'alice' }), scopes: [GRAPH_USER_READWRITE] }),
    ).rejects.toMatchObject({ name: 'ServerError', errorCode: 'temporarily_unavailable', errorNo: 90055 });
    const before = entra.counters.get('token');
    const throttled = await cca
      .acquireTokenOnBehalfOf({ oboAssertion: await entra.mintAccessToken({ user: 'bob' }), scopes: [GRAPH_USER_READWRITE] })
      .catch((caught: unknown) => caught);
    expect(throttled).toBeInstanceOf(ServerError);
    expect(throttled).toMatchObject({ errorCode: '90055' });
    expect(entra.counters.get('token')).toBe(before);
  });
});

describe('Entra emulator: client credentials', () => {
  it('issues an app-only Graph token with the granted application permissions', async () => {
    const cca = msalClient();
    const result = await cca.acquireTokenByClientCredential({ scopes: [`${GRAPH_RESOURCE}/.default`] });
    const payload = await entra.keys.verify(accessTokenOf(result), { audience: GRAPH_RESOURCE, issuer: entra.issuerV1 });
    expect(payload).toMatchObject({
      appid: LOCAL_API_CLIENT_ID,
      idtyp: 'app',
      roles: ['User.ReadWrite.All'],
      oid: entra.servicePrincipalId(LOCAL_API_CLIENT_ID),
      sub: entra.servicePrincipalId(LOCAL_API_CLIENT_ID),
    });
    expect(payload).not.toHaveProperty('scp');
    const before = entra.counters.get('token');
    const again = await cca.acquireTokenByClientCredential({ scopes: [`${GRAPH_RESOURCE}/.default`] });
    expect(again?.fromCache).toBe(true);
    expect(entra.counters.get('token')).toBe(before);
  });

  it('requires /.default for client credentials (AADSTS1002012)', async () => {
    const response = await postForm(`/${LOCAL_TENANT_ID}/oauth2/v2.0/token`, {
      client_id: LOCAL_API_CLIENT_ID,
      client_secret: API_SECRET,
      grant_type: 'client_credentials',
      scope: GRAPH_USER_READWRITE,
    });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_scope', error_codes: [1002012] });
  });

  it('accepts HTTP Basic client authentication', async () => {
    const basic = Buffer.from(`${encodeURIComponent(LOCAL_API_CLIENT_ID)}:${encodeURIComponent(API_SECRET)}`).toString('base64');
    const response = await postForm(
      `/${LOCAL_TENANT_ID}/oauth2/v2.0/token`,
      { grant_type: 'client_credentials', scope: `${GRAPH_RESOURCE}/.default` },
      { ...FORM_HEADERS, authorization: `Basic ${basic}` },
    );
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ token_type: 'Bearer', ext_expires_in: expect.any(Number) });
    expect(response.body).not.toHaveProperty('refresh_token');
  });

  it('refuses HTTP Basic credentials with a bad percent-escape as a client error (401 invalid_client)', async () => {
    const basic = Buffer.from(`${LOCAL_API_CLIENT_ID}:%E0%A4%A`).toString('base64');
    const response = await postForm(
      `/${LOCAL_TENANT_ID}/oauth2/v2.0/token`,
      { grant_type: 'client_credentials', scope: `${GRAPH_RESOURCE}/.default` },
      { ...FORM_HEADERS, authorization: `Basic ${basic}` },
    );
    expect(response.status).toBe(401);
    expect(response.body).toMatchObject({ error: 'invalid_client', error_codes: [7000216] });
  });
});

describe('Entra emulator: token endpoint wire rules', () => {
  const tokenPath = `/${LOCAL_TENANT_ID}/oauth2/v2.0/token`;

  it('writes errors in the AAD envelope and echoes client-request-id as the correlation id', async () => {
    const correlationId = 'a3c0e0f4-8f0e-4b52-9e55-0d7c3cfe2a10';
    const response = await postForm(`${tokenPath}?client-request-id=${correlationId}`, {
      ...oboForm(await entra.mintAccessToken({ user: 'alice' })),
      client_secret: 'wrong',
    });
    expect(response.status).toBe(401);
    expect(response.headers['cache-control']).toBe('no-store, no-cache');
    expect(response.headers['x-ms-request-id']).toBe(response.body.trace_id);
    expect(response.body).toMatchObject({
      error: 'invalid_client',
      error_codes: [7000215],
      correlation_id: correlationId,
      error_uri: `${entra.url}/error?code=7000215`,
    });
    expect(response.body.timestamp).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$/);
    expect(response.body.error_description).toMatch(
      new RegExp(
        `^AADSTS7000215: .*\\r\\nTrace ID: ${response.body.trace_id}\\r\\nCorrelation ID: ${correlationId}\\r\\nTimestamp: ${response.body.timestamp}$`,
      ),
    );
  });

  it('reads form-encoded bodies only', async () => {
    const response = await http.sendPostRequestAsync<AadErrorBody>(`${entra.url}${tokenPath}`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: LOCAL_API_CLIENT_ID, client_secret: API_SECRET }),
    });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_request', error_codes: [900144] });
    expect(response.body.error_description).toContain("'grant_type'");
  });

  it('refuses unsupported grant types (AADSTS70003)', async () => {
    const response = await postForm(tokenPath, {
      grant_type: 'password',
      client_id: LOCAL_API_CLIENT_ID,
      username: 'alice',
      password: 'x',
    });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'unsupported_grant_type', error_codes: [70003] });
  });

  it('requires the OBO parameters', async () => {
    const form = oboForm(await entra.mintAccessToken({ user: 'alice' }));
    const { assertion: _assertion, ...withoutAssertion } = form;
    const response = await postForm(tokenPath, withoutAssertion);
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_request', error_codes: [900144] });
    expect(response.body.error_description).toContain("'assertion'");
  });

  it('refuses a malformed assertion', async () => {
    const response = await postForm(tokenPath, oboForm('not-a-jwt'));
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_grant', error_codes: [50027] });
  });

  it('refuses a resource other than Graph', async () => {
    const response = await postForm(
      tokenPath,
      oboForm(await entra.mintAccessToken({ user: 'alice' }), `api://${OTHER_CLIENT_ID}/read openid`),
    );
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_resource', error_codes: [500011] });
  });

  it('answers GET on the token endpoint with AADSTS900561', async () => {
    const response = await http.sendGetRequestAsync<AadErrorBody>(`${entra.url}${tokenPath}`);
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_request', error_codes: [900561] });
  });
});

describe('Entra emulator: local CLI token endpoint', () => {
  it('mints a v1 API token for a demo user', async () => {
    const response = await http.sendPostRequestAsync<{ token_type: string; access_token: string; expires_in: number }>(
      `${entra.url}/_local/users/alice/token`,
      {
        headers: { 'content-type': 'application/json' },
        body: '{}',
      },
    );
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    const payload = await entra.keys.verify(response.body.access_token, {
      audience: `api://${LOCAL_API_CLIENT_ID}`,
      issuer: entra.issuerV1,
    });
    expect(payload).toMatchObject({ oid: DEMO_USERS.alice.oid, scp: 'access_as_user', ver: '1.0' });
  });

  it('mints a v2 token with custom scp and lifetime when asked', async () => {
    const response = await http.sendPostRequestAsync<{ access_token: string; expires_in: number }>(`${entra.url}/_local/users/bob/token`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ version: 2, scp: 'access_as_user Tokens.Read', lifetimeSeconds: 600 }),
    });
    expect(response.status).toBe(200);
    expect(response.body.expires_in).toBe(600);
    const payload = await entra.keys.verify(response.body.access_token, { audience: LOCAL_API_CLIENT_ID, issuer: entra.issuerV2 });
    expect(payload).toMatchObject({ oid: DEMO_USERS.bob.oid, scp: 'access_as_user Tokens.Read', ver: '2.0' });
  });

  it("assigns app roles to the user when asked (the CLI's --role), and refuses malformed ones", async () => {
    const response = await http.sendPostRequestAsync<{ access_token: string }>(`${entra.url}/_local/users/alice/token`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ roles: ['AcsAuth.Admin'] }),
    });
    expect(response.status).toBe(200);
    const payload = await entra.keys.verify(response.body.access_token, {
      audience: `api://${LOCAL_API_CLIENT_ID}`,
      issuer: entra.issuerV1,
    });
    expect(payload).toMatchObject({ oid: DEMO_USERS.alice.oid, scp: 'access_as_user', roles: ['AcsAuth.Admin'] });
    const malformed = await http.sendPostRequestAsync<AadErrorBody>(`${entra.url}/_local/users/alice/token`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ roles: 'AcsAuth.Admin' }),
    });
    expect(malformed.status).toBe(400);
  });

  it('answers 404 for an unknown user and 400 for a bad version', async () => {
    const unknown = await http.sendPostRequestAsync<AadErrorBody>(`${entra.url}/_local/users/mallory/token`, { headers: {}, body: '' });
    expect(unknown.status).toBe(404);
    const badVersion = await http.sendPostRequestAsync<AadErrorBody>(`${entra.url}/_local/users/alice/token`, {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ version: 3 }),
    });
    expect(badVersion.status).toBe(400);
  });
});

describe('MSAL client factory', () => {
  it('refuses bad options with a TypeError', () => {
    const base = {
      authorityHost: 'https://login.microsoftonline.com',
      tenantId: LOCAL_TENANT_ID,
      clientId: LOCAL_API_CLIENT_ID,
      clientSecret: 's',
    };
    expect(() => createMsalClient({ ...base, authorityHost: 'http://127.0.0.1:1234' })).toThrow(TypeError);
    expect(() => createMsalClient({ ...base, authorityHost: 'https://login.microsoftonline.com/tenant' })).toThrow(/scheme and host only/);
    expect(() => createMsalClient({ ...base, clientId: 'api' })).toThrow(/clientId/);
    expect(() => createMsalClient({ ...base, clientSecret: '' })).toThrow(/clientSecret/);
    expect(() => createMsalClient({ ...base, tenantId: 'common' })).toThrow(/tenant-specific/);
    expect(() => createMsalClient({ ...base, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(createMsalClient(base)).toBeInstanceOf(ConfidentialClientApplication);
  });

  it('does not trust the emulator without its CA (TLS verification stays on)', async () => {
    const untrusting = createMsalClient({
      authorityHost: entra.url,
      tenantId: entra.tenantId,
      clientId: LOCAL_API_CLIENT_ID,
      clientSecret: API_SECRET,
    });
    const before = entra.counters.get('token');
    await expect(
      untrusting.acquireTokenOnBehalfOf({ oboAssertion: await entra.mintAccessToken({ user: 'alice' }), scopes: [GRAPH_USER_READWRITE] }),
    ).rejects.toMatchObject({ errorCode: 'endpoints_resolution_error' });
    expect(entra.counters.get('token')).toBe(before);
  });

  it('turns a response that is not JSON into token_parsing_error and a stalled one into network_error', async () => {
    const client = createMsalNetworkClient({ ca: certs.caCertPem, timeoutMs: 300 });
    const html = await startServer(
      (_req, res) => {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html><body>Bad gateway</body></html>');
      },
      { tls: { certPem: certs.certPem, keyPem: certs.keyPem } },
    );
    try {
      await expect(client.sendGetRequestAsync(`${html.url}/anything`)).rejects.toMatchObject({
        name: 'ClientAuthError',
        errorCode: 'token_parsing_error',
      });

      entra.faults.inject({ route: 'metadata.v2', status: 200, delayMs: 3000 });
      await expect(client.sendGetRequestAsync(`${entra.authority}/v2.0/.well-known/openid-configuration`)).rejects.toMatchObject({
        name: 'ClientAuthError',
        errorCode: 'network_error',
        errorMessage: 'Request timeout',
      });
    } finally {
      client.destroy();
      await html.close();
    }
  });
});
