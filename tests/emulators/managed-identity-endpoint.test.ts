import { ManagedIdentityCredential } from '@azure/identity';
import { expect } from '@jest/globals';
import { decodeProtectedHeader } from 'jose';

import {
  APP_SERVICE_MSI_API_VERSION,
  startManagedIdentityEndpoint,
  type ManagedIdentityEndpoint,
} from '../../src/local/app-service/managed-identity-endpoint';
import { createEntraEmulator, type EntraEmulator } from '../../src/local/entra/entra-emulator';
import { LOCAL_API_CLIENT_ID, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { createLocalCertificates } from '../../src/local/tls/local-certificate-authority';

/**
 * The App Service managed-identity endpoint emulator, driven by the real client (@azure/identity's
 * ManagedIdentityCredential, which hands the call to msal-node's AppService source) and on the wire.
 */

const STORAGE = 'https://storage.azure.com';
const IDENTITY_SETTINGS = ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER'] as const;

let entra: EntraEmulator;
let endpoint: ManagedIdentityEndpoint;
const savedEnv: Partial<Record<string, string>> = {};

beforeAll(async () => {
  const certificates = createLocalCertificates();
  entra = await createEntraEmulator({
    tls: { certPem: certificates.certPem, keyPem: certificates.keyPem },
    tenantId: LOCAL_TENANT_ID,
    applications: [{ clientId: LOCAL_API_CLIENT_ID }],
  });
  endpoint = await startManagedIdentityEndpoint({ entra });
  // msal-node finds the App Service source through these two variables, as it does on App Service.
  for (const name of IDENTITY_SETTINGS) {
    savedEnv[name] = process.env[name];
    process.env[name] = endpoint.settings[name];
  }
});

afterAll(async () => {
  for (const name of IDENTITY_SETTINGS) {
    const saved = savedEnv[name];
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
  await endpoint.close();
  await entra.close();
});

/** A raw request to the endpoint; the defaults are what msal-node sends. */
async function call(
  change: { query?: Record<string, string | null>; header?: string | null; method?: string; path?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = new URL(change.path === undefined ? endpoint.url : new URL(change.path, endpoint.url).href);
  const query = { 'api-version': APP_SERVICE_MSI_API_VERSION, resource: STORAGE, ...change.query };
  for (const [name, value] of Object.entries(query)) if (value !== null) url.searchParams.set(name, value);
  const header = change.header === undefined ? endpoint.identityHeader : change.header;
  const response = await fetch(url, { method: change.method ?? 'GET', headers: header === null ? {} : { 'x-identity-header': header } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('the managed-identity endpoint, through ManagedIdentityCredential', () => {
  it('gives a v1 Entra token for Azure Storage, signed by the tenant, for the identity’s service principal; and msal caches it', async () => {
    const before = endpoint.requests.length;
    const credential = new ManagedIdentityCredential();
    const first = await credential.getToken(`${STORAGE}/.default`);
    const again = await credential.getToken(`${STORAGE}/.default`);

    expect(again.token).toBe(first.token);
    expect(endpoint.requests.slice(before)).toEqual([{ method: 'GET', resource: STORAGE, status: 200 }]);
    const claims = await entra.keys.verify(first.token, { issuer: `https://sts.windows.net/${LOCAL_TENANT_ID}/`, audience: STORAGE });
    expect(claims).toMatchObject({
      tid: LOCAL_TENANT_ID,
      appid: endpoint.clientId,
      appidacr: '2',
      oid: endpoint.principalId,
      sub: endpoint.principalId,
      idtyp: 'app',
      ver: '1.0',
    });
    expect(endpoint.principalId).toBe(entra.servicePrincipalId(endpoint.clientId));
    expect(claims).not.toHaveProperty('scp');
    expect(typeof claims.nbf).toBe('number');
    // msal-node turns `expires_on` into `expires_in` against the clock when the answer arrives, then adds that to the
    // second it sent the request (BaseManagedIdentitySource): across a second's boundary the expiry reads 1 s early.
    const exp = claims.exp ?? Number.NaN;
    expect([exp - 1, exp]).toContain(Math.floor(first.expiresOnTimestamp / 1000));
    expect(decodeProtectedHeader(first.token)).toMatchObject({ alg: 'RS256', kid: entra.keys.currentKid, x5t: entra.keys.currentKid });
  });
});

describe('the managed-identity endpoint, on the wire', () => {
  it('answers App Service’s token shape: expires_on in epoch seconds as a string, the resource as asked', async () => {
    const { status, body } = await call({ query: { resource: `${STORAGE}/` } });
    expect(status).toBe(200);
    expect(body).toEqual({
      access_token: expect.any(String),
      expires_on: expect.stringMatching(/^\d{10}$/),
      resource: `${STORAGE}/`,
      token_type: 'Bearer',
      client_id: endpoint.clientId,
    });
    const claims = await entra.keys.verify(String(body['access_token']), { audience: `${STORAGE}/` });
    expect(String(claims.exp)).toBe(body['expires_on']);
  });

  it.each([
    ['no X-IDENTITY-HEADER', 401, { header: null }],
    ['a wrong X-IDENTITY-HEADER', 401, { header: 'not-the-header' }],
    ['another api-version', 400, { query: { 'api-version': '2017-09-01' } }],
    ['no api-version', 400, { query: { 'api-version': null } }],
    ['no resource', 400, { query: { resource: null } }],
    ['a user-assigned identity (client_id)', 400, { query: { client_id: '00000000-0000-0000-0000-000000000001' } }],
    ['a user-assigned identity (object_id)', 400, { query: { object_id: '00000000-0000-0000-0000-000000000001' } }],
    ['a resource the tenant does not know', 400, { query: { resource: 'api://unknown' } }],
    ['POST', 405, { method: 'POST' }],
    ['another path', 404, { path: '/msi/other' }],
  ] as const)('refuses %s with %s and App Service’s error shape', async (_case, status, change) => {
    const { status: answered, body } = await call(change);
    expect(answered).toBe(status);
    expect(body).toEqual({ statusCode: status, message: expect.any(String), correlationId: expect.any(String) });
    expect(body).not.toHaveProperty('access_token');
  });

  it('checks the header before anything else: a wrong header with a wrong api-version is 401', async () => {
    await expect(call({ header: 'wrong', query: { 'api-version': '2017-09-01' } })).resolves.toMatchObject({ status: 401 });
  });

  it('listens on loopback over plain http, as App Service’s local endpoint does', () => {
    expect(endpoint.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/msi\/token$/);
  });
});
