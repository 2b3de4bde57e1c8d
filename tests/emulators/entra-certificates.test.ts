import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';

import { ConfidentialClientApplication, LogLevel, ServerError } from '@azure/msal-node';
import { expect } from '@jest/globals';
import { decodeJwt, SignJWT, type JWTHeaderParameters } from 'jose';

import { createMsalClient, type MsalClientCertificate } from '../../src/adapters/entra/msal-client';
import { createMsalNetworkClient, type MsalNetworkClient } from '../../src/adapters/entra/msal-network-client';
import { createEntraEmulator, type EntraEmulator } from '../../src/local/entra/entra-emulator';
import { DEMO_USERS, GRAPH_RESOURCE, LOCAL_API_CLIENT_ID, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import {
  createClientCertificate,
  createLocalCertificates,
  type ClientCertificateMaterial,
  type LocalCertificates,
} from '../../src/local/tls/local-certificate-authority';
import { accessTokenOf } from './support';

/**
 * Certificate credentials (private_key_jwt) on the Entra emulator: real msal-node signing client
 * assertions with a certificate, and hand-made assertions for what msal never sends (expired, wrong
 * audience, foreign key...), each refused the way Entra refuses it.
 */
const API_SECRET = 'local-api-secret';
const OTHER_CLIENT_ID = '3b0f5a8e-7f55-4c35-9d0e-5a1d2c6f0b11';
const GRAPH_USER_READWRITE = `${GRAPH_RESOURCE}/User.ReadWrite`;
const GRAPH_DEFAULT = `${GRAPH_RESOURCE}/.default`;
const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' };
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface TokenAnswer {
  error?: string;
  error_description?: string;
  error_codes?: number[];
  access_token?: string;
}

let certs: LocalCertificates;
let entra: EntraEmulator;
let http: MsalNetworkClient;
let tokenPath: string;
let tokenEndpoint: string;
/** Uploaded to the API's app registration. */
const registered: ClientCertificateMaterial = createClientCertificate({ commonName: 'api registered' });
/** Also uploaded, but past its end date. */
const expired: ClientCertificateMaterial = createClientCertificate({
  commonName: 'api expired',
  notBefore: new Date(Date.now() - 10 * 86_400_000),
  validityDays: 2,
});
/** Never uploaded anywhere. */
const stranger: ClientCertificateMaterial = createClientCertificate({ commonName: 'stranger' });

beforeAll(async () => {
  certs = createLocalCertificates();
  entra = await createEntraEmulator({
    tls: { certPem: certs.certPem, keyPem: certs.keyPem },
    applications: [
      {
        clientId: LOCAL_API_CLIENT_ID,
        clientSecret: API_SECRET,
        certificates: [{ certPem: registered.certPem }, { certPem: expired.certPem }],
        displayName: 'acs-auth-server',
        graphDelegatedScopes: ['User.Read', 'User.ReadWrite'],
        graphApplicationRoles: ['User.ReadWrite.All'],
      },
      { clientId: OTHER_CLIENT_ID, clientSecret: 'other-secret' },
    ],
  });
  http = createMsalNetworkClient({ ca: certs.caCertPem });
  tokenPath = `/${LOCAL_TENANT_ID}/oauth2/v2.0/token`;
  tokenEndpoint = `${entra.url}${tokenPath}`;
});

afterAll(async () => {
  http.destroy();
  await entra.close();
});

function msalWithCertificate(
  material: ClientCertificateMaterial,
  extra: Partial<MsalClientCertificate> = {},
): ConfidentialClientApplication {
  return createMsalClient({
    authorityHost: entra.url,
    tenantId: entra.tenantId,
    clientId: LOCAL_API_CLIENT_ID,
    clientCertificate: { thumbprintSha256: material.thumbprintSha256, privateKey: material.keyPem, ...extra },
    ca: certs.caCertPem,
  });
}

function postToken(form: Record<string, string>, headers: Record<string, string> = FORM_HEADERS) {
  return http.sendPostRequestAsync<TokenAnswer>(tokenEndpoint, { headers, body: new URLSearchParams(form).toString() });
}

interface AssertionOptions {
  readonly alg?: string;
  /** Which thumbprint header names the certificate (default the SHA-256 one, as msal 7 sends). */
  readonly thumbprint?: 'sha256' | 'sha1' | 'none';
  /** The certificate the header names (default the registered one). */
  readonly names?: ClientCertificateMaterial;
  /** The key that signs (default the named certificate's). */
  readonly signingKey?: KeyObject | Uint8Array;
  readonly header?: Record<string, unknown>;
  /** Claims over msal's defaults; a claim set to undefined is removed. */
  readonly claims?: Record<string, unknown>;
}

/** A client assertion built like msal-node's (aud = token endpoint, iss = sub = client id, 10 minutes, jti). */
async function clientAssertion(options: AssertionOptions = {}): Promise<string> {
  const names = options.names ?? registered;
  const now = Math.floor(Date.now() / 1000);
  const thumbprint = options.thumbprint ?? 'sha256';
  const header: JWTHeaderParameters = { alg: options.alg ?? (thumbprint === 'sha1' ? 'RS256' : 'PS256'), typ: 'JWT' };
  if (thumbprint === 'sha256') header['x5t#S256'] = Buffer.from(names.thumbprintSha256, 'hex').toString('base64url');
  if (thumbprint === 'sha1') header.x5t = Buffer.from(names.thumbprintSha1, 'hex').toString('base64url');
  Object.assign(header, options.header);
  const claims: Record<string, unknown> = {
    aud: tokenEndpoint,
    exp: now + 600,
    iss: LOCAL_API_CLIENT_ID,
    sub: LOCAL_API_CLIENT_ID,
    nbf: now,
    jti: randomUUID(),
    ...options.claims,
  };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  const key = options.signingKey ?? createPrivateKey(names.keyPem);
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

function clientCredentialsForm(assertion: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    client_id: LOCAL_API_CLIENT_ID,
    scope: GRAPH_DEFAULT,
    grant_type: 'client_credentials',
    client_assertion_type: CLIENT_ASSERTION_TYPE,
    client_assertion: assertion,
    ...extra,
  };
}

async function refusal(assertionOrForm: string | Record<string, string>): Promise<{ status: number; body: TokenAnswer }> {
  const form = typeof assertionOrForm === 'string' ? clientCredentialsForm(assertionOrForm) : assertionOrForm;
  const response = await postToken(form);
  return { status: response.status, body: response.body };
}

describe('Entra emulator: certificate credentials through msal-node', () => {
  it('exchanges a user token On-Behalf-Of with a certificate (PS256, x5t#S256), and marks the token appidacr 2', async () => {
    const result = await msalWithCertificate(registered).acquireTokenOnBehalfOf({
      oboAssertion: await entra.mintAccessToken({ user: 'alice' }),
      scopes: [GRAPH_USER_READWRITE],
    });
    const payload = await entra.keys.verify(accessTokenOf(result), { audience: GRAPH_RESOURCE, issuer: entra.issuerV1 });
    expect(payload).toMatchObject({ oid: DEMO_USERS.alice.oid, appid: LOCAL_API_CLIENT_ID, appidacr: '2' });
  });

  it('issues an app-only Graph token by client credentials with a certificate', async () => {
    const result = await msalWithCertificate(registered).acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] });
    const payload = await entra.keys.verify(accessTokenOf(result), { audience: GRAPH_RESOURCE, issuer: entra.issuerV1 });
    expect(payload).toMatchObject({ appid: LOCAL_API_CLIENT_ID, appidacr: '2', roles: ['User.ReadWrite.All'], idtyp: 'app' });
  });

  it('still marks tokens for the secret appidacr 1', async () => {
    const cca = createMsalClient({
      authorityHost: entra.url,
      tenantId: entra.tenantId,
      clientId: LOCAL_API_CLIENT_ID,
      clientSecret: API_SECRET,
      ca: certs.caCertPem,
    });
    const result = await cca.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] });
    expect(decodeJwt(accessTokenOf(result))).toMatchObject({ appidacr: '1' });
  });

  it('reuses one assertion for several requests, which Entra must accept (msal keeps it up to 10 minutes)', async () => {
    const cca = msalWithCertificate(registered);
    const before = entra.counters.get('token');
    for (const user of ['alice', 'bob', 'carol'] as const) {
      const result = await cca.acquireTokenOnBehalfOf({
        oboAssertion: await entra.mintAccessToken({ user }),
        scopes: [GRAPH_USER_READWRITE],
      });
      expect(decodeJwt(accessTokenOf(result))['oid']).toBe(DEMO_USERS[user].oid);
    }
    expect(entra.counters.get('token')).toBe(before + 3);
  });

  it('accepts the certificate chain in x5c when it holds the named certificate', async () => {
    const result = await msalWithCertificate(registered, { x5c: registered.certPem }).acquireTokenByClientCredential({
      scopes: [GRAPH_DEFAULT],
    });
    expect(result?.accessToken).toEqual(expect.any(String));
  });

  it('accepts the legacy SHA-1 thumbprint (msal signs RS256 with an x5t header)', async () => {
    const cca = new ConfidentialClientApplication({
      auth: {
        clientId: LOCAL_API_CLIENT_ID,
        authority: entra.authority,
        knownAuthorities: [new URL(entra.url).host],
        clientCertificate: { thumbprint: registered.thumbprintSha1, privateKey: registered.keyPem },
      },
      system: { networkClient: http, loggerOptions: { logLevel: LogLevel.Error, loggerCallback: () => undefined } },
    });
    const result = await cca.acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] });
    expect(decodeJwt(accessTokenOf(result))).toMatchObject({ appidacr: '2' });
  });

  it('refuses a certificate the app registration does not have: ServerError invalid_client AADSTS700027', async () => {
    const error = await msalWithCertificate(stranger)
      .acquireTokenOnBehalfOf({ oboAssertion: await entra.mintAccessToken({ user: 'alice' }), scopes: [GRAPH_USER_READWRITE] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ errorCode: 'invalid_client', errorNo: 700027 });
    expect((error as ServerError).errorMessage).toContain(
      'AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application.',
    );
    expect((error as ServerError).errorMessage).toContain(`Thumbprint of key used by client: '${stranger.thumbprintSha256.toUpperCase()}'`);
  });

  it('refuses a registered certificate past its end date (AADSTS700027, the key used is expired)', async () => {
    await expect(msalWithCertificate(expired).acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] })).rejects.toMatchObject({
      name: 'ServerError',
      errorCode: 'invalid_client',
      errorNo: 700027,
      errorMessage: expect.stringContaining('The key used is expired.'),
    });
  });

  it('refuses x5c that does not hold the named certificate', async () => {
    await expect(
      msalWithCertificate(registered, { x5c: stranger.certPem }).acquireTokenByClientCredential({ scopes: [GRAPH_DEFAULT] }),
    ).rejects.toMatchObject({
      errorCode: 'invalid_client',
      errorNo: 700027,
      errorMessage: expect.stringContaining('x5c header does not hold'),
    });
  });
});

describe('Entra emulator: client assertions on the wire', () => {
  it('accepts a well-formed assertion, also without client_id (the assertion names the client) and twice', async () => {
    const assertion = await clientAssertion();
    const first = await postToken(clientCredentialsForm(assertion));
    expect(first.status).toBe(200);
    const { client_id: _unused, ...withoutClientId } = clientCredentialsForm(assertion);
    const second = await postToken(withoutClientId);
    expect(second.status).toBe(200);
    const accessToken = second.body.access_token;
    if (accessToken === undefined) throw new Error('a 200 answer without access_token');
    expect(decodeJwt(accessToken)).toMatchObject({ appid: LOCAL_API_CLIENT_ID, appidacr: '2' });
  });

  it('accepts RS256 with the SHA-1 x5t header', async () => {
    expect((await postToken(clientCredentialsForm(await clientAssertion({ thumbprint: 'sha1' })))).status).toBe(200);
  });

  it('refuses an expired assertion with 401 invalid_client AADSTS700024', async () => {
    const now = Math.floor(Date.now() / 1000);
    const { status, body } = await refusal(await clientAssertion({ claims: { nbf: now - 1800, exp: now - 900 } }));
    expect(status).toBe(401);
    expect(body).toMatchObject({ error: 'invalid_client', error_codes: [700024] });
    expect(body.error_description).toMatch(
      /^AADSTS700024: Client assertion is not within its valid time range\. Current time: .*, assertion valid from .*, expiry time of assertion /,
    );
  });

  it('refuses an assertion that is not valid yet, or valid for far longer than msal makes them (AADSTS700024)', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await refusal(await clientAssertion({ claims: { nbf: now + 900, exp: now + 1200 } }))).body.error_codes).toEqual([700024]);
    expect((await refusal(await clientAssertion({ claims: { exp: now + 3600 } }))).body.error_codes).toEqual([700024]);
  });

  it('tolerates five minutes of clock skew', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect((await postToken(clientCredentialsForm(await clientAssertion({ claims: { nbf: now + 120, exp: now + 700 } })))).status).toBe(
      200,
    );
    expect((await postToken(clientCredentialsForm(await clientAssertion({ claims: { nbf: now - 800, exp: now - 120 } })))).status).toBe(
      200,
    );
  });

  it('refuses an assertion for another audience (AADSTS50027)', async () => {
    for (const aud of [`${entra.authority}/oauth2/token`, entra.issuerV2, LOCAL_API_CLIENT_ID]) {
      const { status, body } = await refusal(await clientAssertion({ claims: { aud } }));
      expect({ aud, status, error: body.error, codes: body.error_codes }).toEqual({
        aud,
        status: 401,
        error: 'invalid_client',
        codes: [50027],
      });
      expect(body.error_description).toContain(`is not the token endpoint '${tokenEndpoint}'`);
    }
  });

  it('refuses an assertion whose iss or sub is not the client (AADSTS700021)', async () => {
    for (const claims of [{ iss: OTHER_CLIENT_ID }, { sub: OTHER_CLIENT_ID }]) {
      const { status, body } = await refusal(await clientAssertion({ claims }));
      expect(status).toBe(401);
      expect(body).toMatchObject({ error: 'invalid_client', error_codes: [700021] });
    }
  });

  it('refuses an assertion signed by another key than the named certificate (invalid signature, AADSTS700027)', async () => {
    const { status, body } = await refusal(await clientAssertion({ signingKey: createPrivateKey(stranger.keyPem) }));
    expect(status).toBe(401);
    expect(body).toMatchObject({ error: 'invalid_client', error_codes: [700027] });
    expect(body.error_description).toMatch(
      /^AADSTS700027: Client assertion contains an invalid signature\. \[Reason - The provided signature value did not match the expected signature value\./,
    );
  });

  it('refuses an assertion naming no certificate, or one of an app that has none (AADSTS700027)', async () => {
    expect((await refusal(await clientAssertion({ thumbprint: 'none' }))).body.error_codes).toEqual([700027]);
    const otherApp = await clientAssertion({ claims: { iss: OTHER_CLIENT_ID, sub: OTHER_CLIENT_ID } });
    const { status, body } = await refusal(clientCredentialsForm(otherApp, { client_id: OTHER_CLIENT_ID }));
    expect(status).toBe(401);
    expect(body.error_description).toContain(`configured keys for app Id '${OTHER_CLIENT_ID}'`);
  });

  it('refuses an HMAC-signed assertion (AADSTS700027)', async () => {
    const { status, body } = await refusal(await clientAssertion({ alg: 'HS256', signingKey: new TextEncoder().encode('x'.repeat(32)) }));
    expect(status).toBe(401);
    expect(body.error_codes).toEqual([700027]);
  });

  it('refuses an assertion without exp or jti, and a malformed one (AADSTS50027)', async () => {
    expect((await refusal(await clientAssertion({ claims: { jti: undefined } }))).body.error_codes).toEqual([50027]);
    expect((await refusal(await clientAssertion({ claims: { exp: undefined } }))).body.error_codes).toEqual([50027]);
    const malformed = await refusal('not-a-jwt');
    expect(malformed).toMatchObject({ status: 401, body: { error: 'invalid_client', error_codes: [50027] } });
  });

  it('refuses an assertion together with a client secret, in the body or as HTTP Basic (401 invalid_client)', async () => {
    const assertion = await clientAssertion();
    const withSecret = await refusal(clientCredentialsForm(assertion, { client_secret: API_SECRET }));
    expect(withSecret).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    const basic = Buffer.from(`${LOCAL_API_CLIENT_ID}:${API_SECRET}`).toString('base64');
    const withBasic = await postToken(clientCredentialsForm(assertion), { ...FORM_HEADERS, authorization: `Basic ${basic}` });
    expect(withBasic.status).toBe(401);
    expect(withBasic.body.error).toBe('invalid_client');
  });

  it('requires client_assertion_type and client_assertion together, and only the jwt-bearer type', async () => {
    const assertion = await clientAssertion();
    const { client_assertion_type: _type, ...withoutType } = clientCredentialsForm(assertion);
    expect((await refusal(withoutType)).body).toMatchObject({ error: 'invalid_request', error_codes: [900144] });
    const { client_assertion: _assertion, ...withoutAssertion } = clientCredentialsForm(assertion);
    expect((await refusal(withoutAssertion)).body).toMatchObject({ error: 'invalid_request', error_codes: [900144] });
    const wrongType = await refusal(
      clientCredentialsForm(assertion, { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' }),
    );
    expect(wrongType).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });

  it('refuses an unknown client named only by the assertion (AADSTS700016)', async () => {
    const unknown = '5d2b7c3e-0a6f-4f8b-9c1d-2e3f4a5b6c7d';
    const { client_id: _unused, ...form } = clientCredentialsForm(await clientAssertion({ claims: { iss: unknown, sub: unknown } }));
    expect((await refusal(form)).body).toMatchObject({ error: 'unauthorized_client', error_codes: [700016] });
  });
});

describe('MSAL client factory: credentials', () => {
  const base = { authorityHost: 'https://login.microsoftonline.com', tenantId: LOCAL_TENANT_ID, clientId: LOCAL_API_CLIENT_ID };

  it('takes a certificate instead of a secret', () => {
    expect(
      createMsalClient({ ...base, clientCertificate: { thumbprintSha256: registered.thumbprintSha256, privateKey: registered.keyPem } }),
    ).toBeInstanceOf(ConfidentialClientApplication);
  });

  it('refuses both, neither, and malformed certificate fields with a TypeError', () => {
    const certificate = { thumbprintSha256: registered.thumbprintSha256, privateKey: registered.keyPem };
    // Casts: these options are what the type forbids, as a JavaScript caller or bad config could pass them.
    expect(() =>
      createMsalClient({ ...base, clientSecret: 's', clientCertificate: certificate } as unknown as Parameters<typeof createMsalClient>[0]),
    ).toThrow(/not both/);
    expect(() => createMsalClient(base as unknown as Parameters<typeof createMsalClient>[0])).toThrow(/clientSecret/);
    expect(() => createMsalClient({ ...base, clientCertificate: { ...certificate, thumbprintSha256: registered.thumbprintSha1 } })).toThrow(
      /thumbprintSha256/,
    );
    expect(() => createMsalClient({ ...base, clientCertificate: { ...certificate, privateKey: registered.certPem } })).toThrow(
      /privateKey/,
    );
    expect(() => createMsalClient({ ...base, clientCertificate: { ...certificate, x5c: 'abc' } })).toThrow(/x5c/);
  });
});
