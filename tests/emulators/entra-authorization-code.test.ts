import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';

import type { CommunicationIdentityClient } from '@azure/communication-identity';
import { Authority, Logger, ProtocolMode, StubPerformanceClient } from '@azure/msal-common/browser';
import { CryptoProvider, PublicClientApplication, ServerError, type INetworkModule } from '@azure/msal-node';
import { expect } from '@jest/globals';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { Agent, request } from 'undici';

import { createEntraTokenValidator } from '../../src/auth/entra-token-validator';
import { createIdentityClient } from '../../src/adapters/acs/identity-client';
import { createMsalNetworkClient, type MsalNetworkClient } from '../../src/adapters/entra/msal-network-client';
import { createAcsEmulator, type AcsEmulator } from '../../src/local/acs/acs-emulator';
import { ACS_APP_ID } from '../../src/local/entra/acs-permission-catalog';
import { createEntraEmulator, type EntraEmulator } from '../../src/local/entra/entra-emulator';
import {
  ACS_TEAMS_AUDIENCE,
  DEMO_USERS,
  GRAPH_RESOURCE,
  LOCAL_API_CLIENT_ID,
  LOCAL_SPA_CLIENT_ID,
  LOCAL_TENANT_ID,
} from '../../src/local/local-directory';
import { createLocalCertificates, type LocalCertificates } from '../../src/local/tls/local-certificate-authority';
import { present } from '../helpers/present';
import { useTestService } from '../helpers/test-service';

/**
 * The Entra emulator's sign-in for browsers: the authorization code flow with PKCE, driven step by step over
 * real HTTP as msal-browser drives it (authorize → account picker → redirect with the code → token request from
 * the page's origin → refresh), every refusal Entra makes on the way, and msal-node's public client as a
 * conformance check of the answers. A Teams user's token for ACS is obtained the same way (the ACS resource's
 * Teams scopes) and exchanged at the ACS emulator by the real CommunicationIdentityClient, as the service does.
 */

const SPA_ORIGIN = 'http://localhost:5000';
const SPA_REDIRECT = `${SPA_ORIGIN}/`;
const SPA_CALLBACK = `${SPA_ORIGIN}/callback`;
const API_SCOPE = `api://${LOCAL_API_CLIENT_ID}/access_as_user`;
const TEAMS_CALLS = `${ACS_TEAMS_AUDIENCE}/Teams.ManageCalls`;
const TEAMS_CHATS = `${ACS_TEAMS_AUDIENCE}/Teams.ManageChats`;
/** The scopes of msal-browser's `acquireTokenSilent` / `acquireTokenRedirect` for a Teams user's token for ACS. */
const TEAMS_SCOPES = `${TEAMS_CALLS} ${TEAMS_CHATS}`;
const V2_API_ID = '6a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d';
const WEB_APP_ID = '3b0f5a8e-7f55-4c35-9d0e-5a1d2c6f0b11';
const WEB_SECRET = 'web-app-secret';
const WEB_REDIRECT = 'https://app.contoso.test/signin-oidc';
const API_SECRET = 'local-api-secret';
const FORM = 'application/x-www-form-urlencoded';

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

interface AadError {
  error: string;
  error_codes: number[];
  error_description: string;
  error_uri?: string;
  suberror?: string;
}

interface TokenAnswer {
  token_type: string;
  scope: string;
  expires_in: number;
  ext_expires_in: number;
  access_token: string;
  refresh_token?: string;
  refresh_token_expires_in?: number;
  id_token?: string;
  client_info?: string;
}

interface Pkce {
  verifier: string;
  challenge: string;
}

let certs: LocalCertificates;
let entra: EntraEmulator;
let acs: AcsEmulator;
let identity: CommunicationIdentityClient;
let agent: Agent;
/** Milliseconds added to the emulator's clock: codes and refresh tokens expire without waiting. */
let clockOffsetMs = 0;

beforeAll(async () => {
  certs = createLocalCertificates();
  entra = await createEntraEmulator({
    tls: { certPem: certs.certPem, keyPem: certs.keyPem },
    clock: () => Date.now() + clockOffsetMs,
    browserHttp: {},
    applications: [
      {
        clientId: LOCAL_API_CLIENT_ID,
        clientSecret: API_SECRET,
        displayName: 'acs-auth-server',
        graphDelegatedScopes: ['User.Read', 'User.ReadWrite'],
        exposedScopes: ['access_as_user'],
      },
      {
        clientId: LOCAL_SPA_CLIENT_ID,
        displayName: 'Sample SPA',
        graphDelegatedScopes: ['User.Read'],
        acsDelegatedScopes: ['Teams.ManageCalls', 'Teams.ManageChats'],
        spa: { redirectUris: [SPA_REDIRECT, SPA_CALLBACK] },
      },
      { clientId: V2_API_ID, displayName: 'v2 API', exposedScopes: ['Read'], accessTokenVersion: 2 },
      {
        clientId: WEB_APP_ID,
        clientSecret: WEB_SECRET,
        displayName: 'Web app',
        // An admin consented to this one for the app: its users get it though none of them may grant it.
        graphDelegatedScopes: ['User.Read.All'],
        web: { redirectUris: [WEB_REDIRECT] },
      },
    ],
  });
  agent = new Agent({ connect: { ca: certs.caCertPem } });
  acs = await createAcsEmulator({ entraKeys: entra.keys, entraIssuers: [entra.issuerV2] });
  identity = createIdentityClient({ connectionString: acs.connectionString, maxRetries: 0 });
});

afterAll(async () => {
  await agent.close();
  await acs.close();
  await entra.close();
});

afterEach(() => {
  clockOffsetMs = 0;
});

function pkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

async function send(
  url: string,
  options: { method?: 'GET' | 'POST' | 'OPTIONS'; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpAnswer> {
  const answer = await request(url, { dispatcher: agent, method: options.method ?? 'GET', headers: options.headers, body: options.body });
  return { status: answer.statusCode, headers: answer.headers, text: await answer.body.text() };
}

function header(answer: HttpAnswer, name: string): string | undefined {
  const value = answer.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function authorizeUrl(params: Record<string, string | undefined>, base = entra.url): string {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) query.set(name, value);
  return `${base}/${LOCAL_TENANT_ID}/oauth2/v2.0/authorize?${query.toString()}`;
}

/** What msal-browser sends to /authorize for `loginRedirect({ scopes: [API_SCOPE] })`. */
function spaAuthorizeParams(codes: Pkce, overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    client_id: LOCAL_SPA_CLIENT_ID,
    scope: `${API_SCOPE} openid profile offline_access`,
    redirect_uri: SPA_REDIRECT,
    'client-request-id': '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0',
    response_mode: 'fragment',
    response_type: 'code',
    'x-client-SKU': 'msal.js.browser',
    'x-client-VER': '5.30.0',
    client_info: '1',
    clidata: '1',
    code_challenge: codes.challenge,
    code_challenge_method: 'S256',
    nonce: 'nonce-123',
    state: 'state-abc',
    ...overrides,
  };
}

/** The account picker's flow token (the page must carry one form with it). */
function flowTokenOf(page: HttpAnswer): string {
  const token = /name="flowToken" value="([^"]+)"/.exec(page.text)?.[1];
  if (token === undefined) throw new Error(`no account picker in: ${page.text.slice(0, 300)}`);
  return token;
}

async function pick(page: HttpAnswer, user: string, base = entra.url): Promise<HttpAnswer> {
  return send(`${base}/${LOCAL_TENANT_ID}/login`, {
    method: 'POST',
    headers: { 'content-type': FORM, origin: base },
    body: new URLSearchParams({ flowToken: flowTokenOf(page), user }).toString(),
  });
}

/** The parameters of the redirect to the app (fragment or query). */
function redirectParams(answer: HttpAnswer): URLSearchParams {
  const location = header(answer, 'location');
  if (answer.status !== 302 || location === undefined)
    throw new Error(`expected a redirect, got ${answer.status}: ${answer.text.slice(0, 300)}`);
  const url = new URL(location);
  return new URLSearchParams(url.hash === '' ? url.search : url.hash.slice(1));
}

function sessionCookieOf(answer: HttpAnswer): string {
  const setCookie = header(answer, 'set-cookie') ?? '';
  const cookie = /ESTSAUTH=[^;]+/.exec(setCookie)?.[0];
  if (cookie === undefined) throw new Error('no session cookie');
  return cookie;
}

interface SignedIn {
  code: string;
  params: URLSearchParams;
  cookie: string;
}

/** Authorize, pick the user on the page, and return what the app's redirect URI receives. */
async function signIn(codes: Pkce, user = 'alice', overrides: Record<string, string | undefined> = {}): Promise<SignedIn> {
  const page = await send(authorizeUrl(spaAuthorizeParams(codes, overrides)));
  expect(page.status).toBe(200);
  const picked = await pick(page, user);
  const params = redirectParams(picked);
  const code = params.get('code');
  if (code === null) throw new Error(`no code: ${params.toString()}`);
  return { code, params, cookie: sessionCookieOf(picked) };
}

async function postToken(
  form: Record<string, string | undefined>,
  headers: Record<string, string> = { origin: SPA_ORIGIN },
  base = entra.url,
): Promise<HttpAnswer> {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(form)) if (value !== undefined) body.set(name, value);
  return send(`${base}/${LOCAL_TENANT_ID}/oauth2/v2.0/token?client-request-id=0f1e2d3c`, {
    method: 'POST',
    headers: { 'content-type': `${FORM};charset=utf-8`, ...headers },
    body: body.toString(),
  });
}

/** What msal-browser posts to redeem the code. */
function codeForm(code: string, codes: Pkce, overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    client_id: LOCAL_SPA_CLIENT_ID,
    redirect_uri: SPA_REDIRECT,
    scope: `${API_SCOPE} openid profile offline_access`,
    code,
    'x-client-SKU': 'msal.js.browser',
    'x-client-VER': '5.30.0',
    'x-ms-lib-capability': 'retry-after, h429',
    code_verifier: codes.verifier,
    grant_type: 'authorization_code',
    client_info: '1',
    'X-AnchorMailbox': `Oid:${DEMO_USERS.alice.oid}@${LOCAL_TENANT_ID}`,
    ...overrides,
  };
}

/** Sends raw bytes to a plain-http listener and returns all it answers before closing (HTTP/1.0 closes after one answer). */
async function rawHttp(url: string, text: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(text));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
  });
}

function json<T>(answer: HttpAnswer): T {
  return JSON.parse(answer.text) as T;
}

function expectRefusal(answer: HttpAnswer, status: number, error: string, code: number): AadError {
  expect(answer.status).toBe(status);
  const body = json<AadError>(answer);
  expect(body).toMatchObject({ error, error_codes: [code] });
  expect(body.error_description).toMatch(new RegExp(`^AADSTS${code}: `));
  return body;
}

async function verifyWithEmulatorKeys(token: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(token, createLocalJWKSet(entra.keys.publicJwks()), { algorithms: ['RS256'] });
  return payload;
}

/** What the service does with a Teams user's token: the real SDK's exchange at the ACS emulator, as the sample SPA's. */
async function exchangeForTeamsUser(teamsUserAadToken: string, oid = DEMO_USERS.alice.oid): Promise<void> {
  const issued = await identity.getTokenForTeamsUser({ teamsUserAadToken, clientId: LOCAL_SPA_CLIENT_ID, userObjectId: oid });
  await expect(acs.verifyAccessToken(issued.token)).resolves.toMatchObject({ valid: true, claims: { skypeid: `orgid:${oid}` } });
}

/** A sign-in of the Web app (bob, answered by form post), and the code its redirect URI receives. */
async function webCode(scope = 'openid profile User.Read'): Promise<string> {
  const page = await send(
    authorizeUrl({
      client_id: WEB_APP_ID,
      response_type: 'code',
      redirect_uri: WEB_REDIRECT,
      scope,
      response_mode: 'form_post',
      state: 's',
    }),
  );
  const posted = await pick(page, 'bob');
  expect(posted.status).toBe(200);
  expect(header(posted, 'content-security-policy')).toContain('form-action https://app.contoso.test');
  const code = /name="code" value="([^"]+)"/.exec(posted.text)?.[1];
  if (code === undefined) throw new Error('no form_post answer');
  expect(posted.text).toContain(`action="${WEB_REDIRECT}"`);
  return code;
}

/** The SPA's refresh token after alice signs in (consenting to `scope`) and the code is redeemed for the API. */
async function spaRefreshToken(scope = `${API_SCOPE} User.Read openid profile offline_access`): Promise<string> {
  const codes = pkce();
  const { code } = await signIn(codes, 'alice', { scope });
  const body = json<TokenAnswer>(await postToken(codeForm(code, codes, { scope: `${API_SCOPE} openid profile offline_access` })));
  if (body.refresh_token === undefined) throw new Error('no refresh token');
  return body.refresh_token;
}

/** What msal-browser posts to redeem a refresh token (acquireTokenSilent). */
function refreshForm(token: string, overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    client_id: LOCAL_SPA_CLIENT_ID,
    scope: `${API_SCOPE} openid profile offline_access`,
    grant_type: 'refresh_token',
    client_info: '1',
    refresh_token: token,
    ...overrides,
  };
}

describe('Entra emulator: sign-in with the authorization code flow (PKCE)', () => {
  describe('the account picker', () => {
    it('is a server-rendered page with a strict CSP, no script, and one button per demo user', async () => {
      const page = await send(authorizeUrl(spaAuthorizeParams(pkce())));
      expect(page.status).toBe(200);
      expect(header(page, 'content-type')).toMatch(/^text\/html/);
      const csp = header(page, 'content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toMatch(/style-src 'sha256-[A-Za-z0-9+/=]+'/);
      expect(csp).not.toContain('script-src');
      expect(csp).toContain(`form-action 'self' ${SPA_ORIGIN}`);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(header(page, 'x-frame-options')).toBe('DENY');
      expect(header(page, 'cache-control')).toBe('no-store, no-cache');
      expect(page.text).not.toMatch(/<script|on[a-z]+=/i);
      for (const user of Object.values(DEMO_USERS)) expect(page.text).toContain(`value="${user.name}"`);
      expect(page.text).toContain(`action="/${LOCAL_TENANT_ID}/login"`);
    });

    it('escapes what the request controls and marks the user login_hint names', async () => {
      const page = await send(
        authorizeUrl(spaAuthorizeParams(pkce(), { login_hint: DEMO_USERS.bob.userPrincipalName, state: '<b>"x"</b>' })),
      );
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('<b>');
      expect(page.text).toMatch(/<button type="submit" name="user" value="bob" class="hint">/);
    });

    it('takes a flow token once: a second post of the same page is refused with an error page (AADSTS50089)', async () => {
      const page = await send(authorizeUrl(spaAuthorizeParams(pkce())));
      expect((await pick(page, 'alice')).status).toBe(302);
      const again = await pick(page, 'alice');
      expect(again.status).toBe(400);
      expect(header(again, 'location')).toBeUndefined();
      expect(again.text).toContain('AADSTS50089');
    });

    it('refuses a post of the page from another origin and a user the tenant lacks', async () => {
      const page = await send(authorizeUrl(spaAuthorizeParams(pkce())));
      const crossSite = await send(`${entra.url}/${LOCAL_TENANT_ID}/login`, {
        method: 'POST',
        headers: { 'content-type': FORM, origin: 'https://evil.example' },
        body: new URLSearchParams({ flowToken: flowTokenOf(page), user: 'alice' }).toString(),
      });
      expect(crossSite.status).toBe(400);
      expect(header(crossSite, 'location')).toBeUndefined();
      const unknownUser = await pick(await send(authorizeUrl(spaAuthorizeParams(pkce()))), 'mallory');
      expect(unknownUser.status).toBe(400);
      expect(unknownUser.text).toContain('AADSTS50034');
    });
  });

  describe('a successful sign-in', () => {
    it('redirects to the SPA with code, state, session_state and client_info in the fragment, and sets a session cookie', async () => {
      const { params, cookie } = await signIn(pkce(), 'bob');
      expect(params.get('state')).toBe('state-abc');
      expect(params.get('session_state')).toMatch(/^[0-9a-f-]{36}$/);
      expect(JSON.parse(Buffer.from(params.get('client_info') ?? '', 'base64url').toString('utf8'))).toEqual({
        uid: DEMO_USERS.bob.oid,
        utid: LOCAL_TENANT_ID,
      });
      expect(cookie).toMatch(/^ESTSAUTH=/);
    });

    it('answers in the query with response_mode=query', async () => {
      const codes = pkce();
      const page = await send(authorizeUrl(spaAuthorizeParams(codes, { response_mode: 'query' })));
      const location = new URL(header(await pick(page, 'alice'), 'location') ?? '');
      expect(location.origin + location.pathname).toBe(SPA_REDIRECT);
      expect(location.hash).toBe('');
      expect(location.searchParams.get('code')).toBeTruthy();
    });

    it('redeems the code from the SPA origin for an access token the service accepts, an ID token, a refresh token and client_info', async () => {
      const codes = pkce();
      const { code, params } = await signIn(codes, 'alice');
      const answer = await postToken(codeForm(code, codes));
      expect(answer.status).toBe(200);
      expect(header(answer, 'access-control-allow-origin')).toBe(SPA_ORIGIN);
      expect(header(answer, 'vary')).toMatch(/Origin/);
      const body = json<TokenAnswer>(answer);
      expect(body).toMatchObject({ token_type: 'Bearer', scope: API_SCOPE });
      expect(body.expires_in).toBeGreaterThanOrEqual(3600);
      expect(body.expires_in).toBeLessThanOrEqual(5400);
      expect(body.ext_expires_in).toBe(body.expires_in);
      expect(body.refresh_token_expires_in).toBeGreaterThan(86_300);
      expect(body.refresh_token_expires_in).toBeLessThanOrEqual(86_400);
      expect(body.client_info).toBe(params.get('client_info'));

      const access = await verifyWithEmulatorKeys(body.access_token);
      expect(access).toMatchObject({
        aud: `api://${LOCAL_API_CLIENT_ID}`,
        iss: `https://sts.windows.net/${LOCAL_TENANT_ID}/`,
        ver: '1.0',
        appid: LOCAL_SPA_CLIENT_ID,
        appidacr: '0',
        scp: 'access_as_user',
        oid: DEMO_USERS.alice.oid,
        tid: LOCAL_TENANT_ID,
        upn: DEMO_USERS.alice.userPrincipalName,
      });
      expect(decodeProtectedHeader(body.access_token)).toMatchObject({ alg: 'RS256', x5t: expect.any(String) });

      const validate = createEntraTokenValidator({
        tenantId: LOCAL_TENANT_ID,
        audiences: [LOCAL_API_CLIENT_ID, `api://${LOCAL_API_CLIENT_ID}`],
        issuers: { v1: `https://sts.windows.net/${LOCAL_TENANT_ID}/`, v2: entra.issuerV2 },
        jwksUris: { v1: `${entra.authority}/discovery/keys`, v2: `${entra.authority}/discovery/v2.0/keys` },
        refreshCooldownMs: 0,
        fetch: (url, init) => fetch(url, { ...init, dispatcher: agent } as unknown as RequestInit),
      });
      expect(await validate(body.access_token)).toMatchObject({
        oid: DEMO_USERS.alice.oid,
        tid: LOCAL_TENANT_ID,
        scopes: ['access_as_user'],
        clientAppId: LOCAL_SPA_CLIENT_ID,
      });
    });

    it('issues a v2 ID token for the SPA that echoes the nonce and names the user', async () => {
      const codes = pkce();
      const { code, params } = await signIn(codes, 'carol');
      const body = json<TokenAnswer>(await postToken(codeForm(code, codes)));
      const idToken = await verifyWithEmulatorKeys(body.id_token ?? '');
      expect(idToken).toMatchObject({
        aud: LOCAL_SPA_CLIENT_ID,
        iss: entra.issuerV2,
        ver: '2.0',
        nonce: 'nonce-123',
        oid: DEMO_USERS.carol.oid,
        tid: LOCAL_TENANT_ID,
        preferred_username: DEMO_USERS.carol.userPrincipalName,
        name: DEMO_USERS.carol.displayName,
        sid: params.get('session_state'),
        sub: expect.any(String),
      });
      expect(idToken.exp).toBe((idToken.iat ?? 0) + 3600);
      expect(decodeProtectedHeader(body.id_token ?? '')).not.toHaveProperty('x5t');
    });

    it('issues v2 access tokens for an API whose registration asks for them', async () => {
      const codes = pkce();
      const scope = `api://${V2_API_ID}/Read openid`;
      const { code } = await signIn(codes, 'alice', { scope });
      const body = json<TokenAnswer>(await postToken(codeForm(code, codes, { scope })));
      expect(body).not.toHaveProperty('refresh_token');
      expect(await verifyWithEmulatorKeys(body.access_token)).toMatchObject({
        aud: V2_API_ID,
        iss: entra.issuerV2,
        ver: '2.0',
        azp: LOCAL_SPA_CLIENT_ID,
        azpacr: '0',
        scp: 'Read',
      });
    });

    it('signs the same browser in again without the page: prompt=none and no prompt use the session, prompt=login asks', async () => {
      const { cookie } = await signIn(pkce(), 'bob');
      for (const prompt of ['none', undefined]) {
        const silent = await send(authorizeUrl(spaAuthorizeParams(pkce(), { prompt })), { headers: { cookie } });
        expect(silent.status).toBe(302);
        expect(redirectParams(silent).get('code')).toBeTruthy();
      }
      const forced = await send(authorizeUrl(spaAuthorizeParams(pkce(), { prompt: 'login' })), { headers: { cookie } });
      expect(forced.status).toBe(200);
      const otherUser = await send(
        authorizeUrl(spaAuthorizeParams(pkce(), { prompt: 'none', login_hint: DEMO_USERS.alice.userPrincipalName })),
        {
          headers: { cookie },
        },
      );
      expect(redirectParams(otherUser).get('error')).toBe('login_required');
    });
  });

  describe('authorize refusals shown as error pages, never redirected', () => {
    it.each([
      ['an unknown client', { client_id: '11111111-2222-4333-8444-555555555555' }, 700016],
      ['a redirect URI the app did not register', { redirect_uri: 'https://evil.example/' }, 50011],
      ['a redirect URI differing in case', { redirect_uri: 'http://localhost:5000/Callback' }, 50011],
      ["another app's redirect URI", { redirect_uri: WEB_REDIRECT }, 50011],
      ['no redirect URI', { redirect_uri: undefined }, 900971],
    ])('%s', async (_name, overrides, code) => {
      const page = await send(authorizeUrl(spaAuthorizeParams(pkce(), overrides)));
      expect(page.status).toBe(400);
      expect(header(page, 'location')).toBeUndefined();
      expect(header(page, 'content-type')).toMatch(/^text\/html/);
      expect(page.text).toContain(`AADSTS${code}:`);
    });

    it('an unknown tenant', async () => {
      const page = await send(authorizeUrl(spaAuthorizeParams(pkce())).replace(LOCAL_TENANT_ID, '00000000-0000-4000-8000-000000000000'));
      expect(page.status).toBe(400);
      expect(page.text).toContain('AADSTS90002');
    });

    it('an app with no redirect URI at all (AADSTS500113)', async () => {
      const page = await send(authorizeUrl(spaAuthorizeParams(pkce(), { client_id: LOCAL_API_CLIENT_ID })));
      expect(page.status).toBe(400);
      expect(page.text).toContain('AADSTS500113');
    });

    it('matches a loopback redirect URI on any port, as Entra does', async () => {
      const page = await send(authorizeUrl(spaAuthorizeParams(pkce(), { redirect_uri: 'http://localhost:3000/' })));
      expect(page.status).toBe(200);
      expect(redirectParams(await pick(page, 'alice')).get('code')).toBeTruthy();
    });

    it.each([
      ['user info before the registered host', 'http://evil.com@localhost:5077/'],
      ['empty user info', 'http://@localhost:5077/'],
      ['no // after the scheme', 'http:localhost:5077/'],
      ['a leading tab', '\thttp://localhost:5077/'],
      ['a trailing space', 'http://localhost:5077/ '],
      ['percent-encoded dot segments', 'http://localhost:5077/%2e%2e/'],
      ['dot segments', 'http://localhost:5077/callback/../'],
      ['a backslash for a slash', 'http://localhost:5077\\'],
      ['a percent-encoded host', 'http://local%68ost:5077/'],
      ['an empty fragment', 'http://localhost:5077/#'],
    ])('a redirect URI a URL parser would rewrite into a registered one: %s (AADSTS50011)', async (_name, redirectUri) => {
      const page = await send(authorizeUrl(spaAuthorizeParams(pkce(), { redirect_uri: redirectUri })));
      expect(page.status).toBe(400);
      expect(header(page, 'location')).toBeUndefined();
      expect(page.text).toContain('AADSTS50011:');
    });

    it('matches scheme and host in any letter case, and an origin without its trailing slash (answered with it)', async () => {
      for (const redirectUri of ['HTTP://LocalHost:5077/', 'http://localhost:5077']) {
        const page = await send(authorizeUrl(spaAuthorizeParams(pkce(), { redirect_uri: redirectUri, response_mode: 'query' })));
        expect(page.status).toBe(200);
        const location = new URL(header(await pick(page, 'alice'), 'location') ?? '');
        expect(`${location.origin}${location.pathname}`).toBe('http://localhost:5077/');
      }
    });
  });

  describe('authorize refusals sent to the redirect URI', () => {
    it.each([
      ['no response_type', { response_type: undefined }, 'invalid_request', 900144],
      ['response_type token (implicit grant not enabled)', { response_type: 'token' }, 'unsupported_response_type', 700051],
      ['response_type id_token (hybrid flow not enabled)', { response_type: 'code id_token' }, 'unsupported_response_type', 700054],
      ['no scope', { scope: undefined }, 'invalid_request', 900144],
      ['a scope the API does not expose', { scope: `api://${LOCAL_API_CLIENT_ID}/admin openid` }, 'invalid_scope', 70011],
      ['a resource the tenant lacks', { scope: 'api://unknown-api/read openid' }, 'invalid_resource', 500011],
      ['a code_challenge of the wrong size', { code_challenge: 'short' }, 'invalid_request', 501491],
      ['an unknown code_challenge_method', { code_challenge_method: 'S512' }, 'invalid_request', 9002313],
      ['an unknown prompt', { prompt: 'maybe' }, 'invalid_request', 9002313],
      ['prompt=none with no session', { prompt: 'none' }, 'login_required', 50058],
    ])('%s', async (_name, overrides, error, code) => {
      const answer = await send(authorizeUrl(spaAuthorizeParams(pkce(), overrides)));
      const params = redirectParams(answer);
      expect(new URL(header(answer, 'location') ?? '').origin).toBe(SPA_ORIGIN);
      expect(params.get('error')).toBe(error);
      expect(params.get('error_description')).toMatch(
        new RegExp(`^AADSTS${code}: .*\r\nTrace ID: .*\r\nCorrelation ID: .*\r\nTimestamp: `, 's'),
      );
      expect(params.get('error_uri')).toMatch(new RegExp(`code=${code}$`));
      expect(params.get('state')).toBe('state-abc');
      expect(params.get('code')).toBeNull();
    });

    it('refuses a repeated parameter on an error page', async () => {
      const url = `${authorizeUrl(spaAuthorizeParams(pkce()))}&client_id=${LOCAL_SPA_CLIENT_ID}`;
      const page = await send(url);
      expect(page.status).toBe(400);
      expect(page.text).toContain('AADSTS9002313');
    });
  });

  describe('Graph permissions only an admin may grant', () => {
    /** What the sign-in asks in the review's report: the sample SPA, which holds no such permission. */
    const ADMIN_ONLY_SCOPE = 'openid offline_access User.ReadWrite.All Directory.AccessAsUser.All';

    it('ends the sign-in on an error page, no account picker and nothing sent to the app (AADSTS90094)', async () => {
      const page = await send(authorizeUrl(spaAuthorizeParams(pkce(), { scope: ADMIN_ONLY_SCOPE })));
      expect(page.status).toBe(400);
      expect(header(page, 'location')).toBeUndefined();
      expect(page.text).toContain('AADSTS90094:');
      expect(page.text).not.toContain('flowToken');
    });

    it.each(['User.Read.All', 'user.readwrite.all', 'Directory.Read.All', 'Directory.AccessAsUser.All', 'Group.Read.All'])(
      'refuses %s beside permissions a user may grant, whatever the spelling (AADSTS90094)',
      async (permission) => {
        const scope = `openid profile User.Read https://graph.microsoft.com/${permission}`;
        const page = await send(authorizeUrl(spaAuthorizeParams(pkce(), { scope })));
        expect([permission, page.status]).toEqual([permission, 400]);
        expect(page.text).toContain('AADSTS90094:');
      },
    );

    it('refuses it without a page too: with a session, and prompt=none answers consent_required (AADSTS65001)', async () => {
      const { cookie } = await signIn(pkce(), 'bob');
      const interactive = await send(authorizeUrl(spaAuthorizeParams(pkce(), { scope: ADMIN_ONLY_SCOPE })), { headers: { cookie } });
      expect(interactive.status).toBe(400);
      expect(interactive.text).toContain('AADSTS90094:');
      const silent = redirectParams(
        await send(authorizeUrl(spaAuthorizeParams(pkce(), { scope: ADMIN_ONLY_SCOPE, prompt: 'none' })), { headers: { cookie } }),
      );
      expect(silent.get('error')).toBe('consent_required');
      expect(silent.get('error_description')).toMatch(/^AADSTS65001: /);
      expect(silent.get('code')).toBeNull();
    });

    it('lets the user grant every permission that needs no admin, to a client that holds none of them', async () => {
      const codes = pkce();
      const scope = 'openid profile email offline_access User.Read User.ReadWrite User.ReadBasic.All Mail.Read Calendars.Read Files.Read';
      const { code } = await signIn(codes, 'alice', { scope });
      const body = json<TokenAnswer>(await postToken(codeForm(code, codes, { scope })));
      expect(decodeJwt(body.access_token)).toMatchObject({
        aud: GRAPH_RESOURCE,
        scp: 'Calendars.Read email Files.Read Mail.Read openid profile User.Read User.ReadBasic.All User.ReadWrite',
      });
    });

    it('is refused at the token endpoint when not granted at sign-in, by code and refresh token (AADSTS65001)', async () => {
      const codes = pkce();
      const { code } = await signIn(codes, 'alice', { scope: 'openid offline_access User.Read' });
      for (const scope of ['User.ReadWrite.All openid', `${GRAPH_RESOURCE}/directory.accessasuser.all`]) {
        const refused = expectRefusal(await postToken(codeForm(code, codes, { scope })), 400, 'invalid_grant', 65001);
        expect(refused.suberror).toBe('consent_required');
      }
      const body = json<TokenAnswer>(await postToken(codeForm(code, codes, { scope: 'User.Read openid offline_access' })));
      expect(decodeJwt(body.access_token)).toMatchObject({ scp: 'openid User.Read' });
      for (const scope of ['User.ReadWrite.All', 'User.Read Directory.AccessAsUser.All offline_access']) {
        expectRefusal(await postToken(refreshForm(body.refresh_token ?? '', { scope })), 400, 'invalid_grant', 65001);
      }
    });

    it('grants one an admin consented to for the app (graphDelegatedScopes), and no other', async () => {
      const code = await webCode('openid offline_access User.Read.All');
      const form = { client_id: WEB_APP_ID, client_secret: WEB_SECRET, redirect_uri: WEB_REDIRECT, code, grant_type: 'authorization_code' };
      const body = json<TokenAnswer>(await postToken({ ...form, scope: 'User.Read.All openid offline_access' }, {}));
      expect(decodeJwt(body.access_token)).toMatchObject({ aud: GRAPH_RESOURCE, appid: WEB_APP_ID, scp: 'openid User.Read.All' });
      const refresh = { client_id: WEB_APP_ID, client_secret: WEB_SECRET, grant_type: 'refresh_token', refresh_token: body.refresh_token };
      expectRefusal(await postToken({ ...refresh, scope: 'User.ReadWrite.All' }, {}), 400, 'invalid_grant', 65001);
      const page = await send(
        authorizeUrl({ client_id: WEB_APP_ID, response_type: 'code', redirect_uri: WEB_REDIRECT, scope: 'openid User.ReadWrite.All' }),
      );
      expect(page.text).toContain('AADSTS90094:');
    });
  });

  describe('code redemption refusals', () => {
    it('without an Origin header: a SPA code is redeemed only cross-origin (AADSTS9002327), and stays redeemable', async () => {
      const codes = pkce();
      const { code } = await signIn(codes);
      const refused = await postToken(codeForm(code, codes), {});
      expectRefusal(refused, 400, 'invalid_request', 9002327);
      expect(header(refused, 'access-control-allow-origin')).toBeUndefined();
      expect((await postToken(codeForm(code, codes))).status).toBe(200);
    });

    it('from an origin that is not one of the SPA redirect URIs (AADSTS9002326, no CORS headers)', async () => {
      const codes = pkce();
      const { code } = await signIn(codes);
      const refused = await postToken(codeForm(code, codes), { origin: 'https://evil.example' });
      expect(expectRefusal(refused, 400, 'invalid_request', 9002326).error_description).toContain("Request origin: 'https://evil.example'");
      expect(header(refused, 'access-control-allow-origin')).toBeUndefined();
    });

    it('a code issued without PKCE (AADSTS9002325)', async () => {
      const codes = pkce();
      const { code } = await signIn(codes, 'alice', { code_challenge: undefined, code_challenge_method: undefined });
      expectRefusal(await postToken(codeForm(code, codes, { code_verifier: undefined })), 400, 'invalid_request', 9002325);
    });

    it.each([
      ['a wrong verifier', () => pkce().verifier],
      ['no verifier', () => undefined],
      ['the challenge itself as the verifier', (codes: Pkce) => codes.challenge],
    ])('%s (AADSTS501481)', async (_name, verifierOf) => {
      const codes = pkce();
      const { code } = await signIn(codes);
      const refused = await postToken(codeForm(code, codes, { code_verifier: verifierOf(codes) }));
      expectRefusal(refused, 400, 'invalid_grant', 501481);
      expect(header(refused, 'access-control-allow-origin')).toBe(SPA_ORIGIN);
    });

    it('accepts a plain PKCE challenge, which Entra supports beside S256', async () => {
      const verifier = randomBytes(48).toString('base64url');
      const { code } = await signIn(pkce(), 'alice', { code_challenge: verifier, code_challenge_method: 'plain' });
      expect((await postToken(codeForm(code, { verifier, challenge: verifier }))).status).toBe(200);
    });

    it('a code redeemed twice (AADSTS54005)', async () => {
      const codes = pkce();
      const { code } = await signIn(codes);
      expect((await postToken(codeForm(code, codes))).status).toBe(200);
      expectRefusal(await postToken(codeForm(code, codes)), 400, 'invalid_grant', 54005);
    });

    it('a code older than 10 minutes (AADSTS70008)', async () => {
      const codes = pkce();
      const { code } = await signIn(codes);
      clockOffsetMs = 10 * 60 * 1000 + 1000;
      expectRefusal(await postToken(codeForm(code, codes)), 400, 'invalid_grant', 70008);
    });

    it('a code of another client (AADSTS70000) and a code nobody issued', async () => {
      const codes = pkce();
      const { code } = await signIn(codes);
      expectRefusal(await postToken(codeForm(code, codes, { client_id: WEB_APP_ID })), 400, 'invalid_grant', 70000);
      expectRefusal(await postToken(codeForm('1.made-up', codes)), 400, 'invalid_grant', 9002313);
    });

    it('a code sent to another redirect URI than the one redeeming it (AADSTS50011)', async () => {
      const codes = pkce();
      const { code } = await signIn(codes);
      expectRefusal(await postToken(codeForm(code, codes, { redirect_uri: SPA_CALLBACK })), 400, 'invalid_grant', 50011);
      expectRefusal(await postToken(codeForm(code, codes, { redirect_uri: undefined })), 400, 'invalid_request', 900144);
      for (const rewritten of [`${SPA_ORIGIN}/%2e/`, `http://user@localhost:5000/`, ` ${SPA_REDIRECT}`]) {
        expectRefusal(await postToken(codeForm(code, codes, { redirect_uri: rewritten })), 400, 'invalid_grant', 50011);
      }
      expect((await postToken(codeForm(code, codes))).status).toBe(200);
    });

    it('a client secret from a browser page (AADSTS700025)', async () => {
      const codes = pkce();
      const { code } = await signIn(codes);
      expectRefusal(await postToken(codeForm(code, codes, { client_secret: 'x' })), 401, 'invalid_client', 700025);
    });

    it('scopes of two resources (AADSTS700022) and permissions the user did not consent to (AADSTS65001)', async () => {
      const codes = pkce();
      const { code } = await signIn(codes);
      expectRefusal(await postToken(codeForm(code, codes, { scope: `${API_SCOPE} User.Read openid` })), 400, 'invalid_scope', 700022);
      const consent = expectRefusal(await postToken(codeForm(code, codes, { scope: 'User.Read openid' })), 400, 'invalid_grant', 65001);
      expect(consent.suberror).toBe('consent_required');
    });

    it('client credentials from a browser page (AADSTS9002326)', async () => {
      const refused = await postToken(
        {
          client_id: LOCAL_API_CLIENT_ID,
          client_secret: API_SECRET,
          grant_type: 'client_credentials',
          scope: `${GRAPH_RESOURCE}/.default`,
        },
        { origin: SPA_ORIGIN },
      );
      expectRefusal(refused, 400, 'invalid_request', 9002326);
    });
  });

  describe('codes of a Web redirect URI', () => {
    it('are redeemed server-side only (AADSTS9002326) and with the app credential (AADSTS7000218), then give a Graph token', async () => {
      const code = await webCode();
      const form = { client_id: WEB_APP_ID, redirect_uri: WEB_REDIRECT, code, grant_type: 'authorization_code', scope: 'User.Read openid' };
      expectRefusal(
        await postToken({ ...form, client_secret: WEB_SECRET }, { origin: 'https://app.contoso.test' }),
        400,
        'invalid_request',
        9002326,
      );
      expectRefusal(await postToken(form, {}), 401, 'invalid_client', 7000218);
      const answer = await postToken({ ...form, client_secret: WEB_SECRET }, {});
      expect(answer.status).toBe(200);
      const body = json<TokenAnswer>(answer);
      expect(body.scope).toBe(`${GRAPH_RESOURCE}/User.Read openid`);
      expect(decodeJwt(body.access_token)).toMatchObject({
        aud: GRAPH_RESOURCE,
        appid: WEB_APP_ID,
        appidacr: '1',
        scp: 'openid User.Read',
        oid: DEMO_USERS.bob.oid,
      });
      expect(decodeProtectedHeader(body.access_token)).toHaveProperty('nonce');
    });
  });

  describe('refresh tokens', () => {
    it('gives new tokens and a new refresh token; the old one keeps working (Entra does not revoke it)', async () => {
      const first = await spaRefreshToken();
      const answer = await postToken(refreshForm(first));
      expect(answer.status).toBe(200);
      expect(header(answer, 'access-control-allow-origin')).toBe(SPA_ORIGIN);
      const body = json<TokenAnswer>(answer);
      expect(body.refresh_token).toBeDefined();
      expect(body.refresh_token).not.toBe(first);
      expect(await verifyWithEmulatorKeys(body.access_token)).toMatchObject({
        aud: `api://${LOCAL_API_CLIENT_ID}`,
        oid: DEMO_USERS.alice.oid,
      });
      expect(decodeJwt(body.id_token ?? '')).not.toHaveProperty('nonce');
      expect((await postToken(refreshForm(first))).status).toBe(200);
    });

    it('are valid for every resource consented at sign-in: Graph after the API, the first resource of several', async () => {
      const token = await spaRefreshToken();
      const graph = json<TokenAnswer>(await postToken(refreshForm(token, { scope: 'User.Read openid offline_access' })));
      expect(decodeJwt(graph.access_token)).toMatchObject({ aud: GRAPH_RESOURCE, appid: LOCAL_SPA_CLIENT_ID, appidacr: '0' });
      const first = json<TokenAnswer>(await postToken(refreshForm(token, { scope: `User.Read ${API_SCOPE}` })));
      expect(decodeJwt(first.access_token)).toMatchObject({ aud: GRAPH_RESOURCE });
      expectRefusal(await postToken(refreshForm(token, { scope: 'User.ReadWrite openid' })), 400, 'invalid_grant', 65001);
    });

    it('are redeemed cross-origin only (AADSTS9002327) and by their client only (AADSTS70000)', async () => {
      const token = await spaRefreshToken();
      expectRefusal(await postToken(refreshForm(token), {}), 400, 'invalid_request', 9002327);
      expectRefusal(await postToken(refreshForm(token, { client_id: WEB_APP_ID })), 400, 'invalid_grant', 70000);
      expectRefusal(await postToken(refreshForm('1.made-up')), 400, 'invalid_grant', 9002313);
    });

    it('of a SPA expire 24 hours after the sign-in, the renewed ones too (AADSTS700084)', async () => {
      const first = await spaRefreshToken();
      clockOffsetMs = 23 * 60 * 60 * 1000;
      const renewed = json<TokenAnswer>(await postToken(refreshForm(first)));
      expect(renewed.refresh_token_expires_in).toBeLessThanOrEqual(3600);
      clockOffsetMs = 24 * 60 * 60 * 1000;
      expectRefusal(await postToken(refreshForm(first)), 400, 'invalid_grant', 700084);
      expectRefusal(await postToken(refreshForm(renewed.refresh_token ?? '')), 400, 'invalid_grant', 700084);
    });
  });

  describe('CORS and metadata for browsers', () => {
    it('answers token preflights for SPA origins only', async () => {
      const preflight = (origin: string) =>
        send(`${entra.authority}/oauth2/v2.0/token`, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-anchormailbox' },
        });
      const allowed = await preflight(SPA_ORIGIN);
      expect(allowed.status).toBe(204);
      expect(header(allowed, 'access-control-allow-origin')).toBe(SPA_ORIGIN);
      expect(header(allowed, 'access-control-allow-methods')).toBe('POST, OPTIONS');
      expect(header(allowed, 'access-control-allow-headers')).toBe('content-type,x-anchormailbox');
      const other = await preflight('https://evil.example');
      expect(header(other, 'access-control-allow-origin')).toBeUndefined();
    });

    it('lets any page read the metadata and keys, and lists the sign-in endpoints', async () => {
      const metadata = await send(`${entra.authority}/v2.0/.well-known/openid-configuration`, { headers: { origin: SPA_ORIGIN } });
      expect(header(metadata, 'access-control-allow-origin')).toBe('*');
      expect(json<Record<string, unknown>>(metadata)).toMatchObject({
        authorization_endpoint: `${entra.authority}/oauth2/v2.0/authorize`,
        end_session_endpoint: `${entra.authority}/oauth2/v2.0/logout`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
      });
      expect(header(await send(`${entra.authority}/discovery/v2.0/keys`), 'access-control-allow-origin')).toBe('*');
    });

    it('serves the same tenant over plain http on loopback, endpoints on that listener and the issuer unchanged', async () => {
      const browserUrl = entra.browserUrl ?? '';
      expect(browserUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const metadata = json<Record<string, string>>(await send(`${browserUrl}/${LOCAL_TENANT_ID}/v2.0/.well-known/openid-configuration`));
      expect(metadata).toMatchObject({
        issuer: entra.issuerV2,
        authorization_endpoint: `${browserUrl}/${LOCAL_TENANT_ID}/oauth2/v2.0/authorize`,
        token_endpoint: `${browserUrl}/${LOCAL_TENANT_ID}/oauth2/v2.0/token`,
        jwks_uri: `${browserUrl}/${LOCAL_TENANT_ID}/discovery/v2.0/keys`,
      });
      const codes = pkce();
      const page = await send(authorizeUrl(spaAuthorizeParams(codes), browserUrl));
      const picked = await pick(page, 'alice', browserUrl);
      expect(header(picked, 'set-cookie')).toMatch(/HttpOnly; SameSite=Lax/);
      const code = redirectParams(picked).get('code') ?? '';
      const answer = await postToken(codeForm(code, codes), { origin: SPA_ORIGIN }, browserUrl);
      expect(answer.status).toBe(200);
      expect(await verifyWithEmulatorKeys(json<TokenAnswer>(answer).id_token ?? '')).toMatchObject({ iss: entra.issuerV2 });
    });

    it('answers only to loopback host names over plain http (no DNS rebinding), and mints no token without a sign-in', async () => {
      const browserUrl = entra.browserUrl ?? '';
      const metadataPath = `/${LOCAL_TENANT_ID}/v2.0/.well-known/openid-configuration`;
      for (const host of ['evil.example', 'evil.example:80', '127.0.0.1.nip.io', '0.0.0.0']) {
        const answer = await send(`${browserUrl}${metadataPath}`, { headers: { host } });
        expect([host, answer.status]).toEqual([host, 421]);
      }
      for (const host of [new URL(browserUrl).host, `localhost:${new URL(browserUrl).port}`]) {
        expect((await send(`${browserUrl}${metadataPath}`, { headers: { host } })).status).toBe(200);
      }
      // The emulator-only minting routes stay on the https listener, where no web page can read them.
      expect((await send(`${browserUrl}/_local/users/alice/token`, { method: 'POST', body: '{}' })).status).toBe(404);
      expect((await send(`${browserUrl}/_local/users/alice/teams-token`, { method: 'POST' })).status).toBe(404);
      expect((await send(`${entra.url}/_local/users/alice/teams-token`, { method: 'POST' })).status).toBe(200);
    });

    it('answers 421 to an HTTP/1.0 request without a Host header over plain http, as to a foreign host', async () => {
      const browserUrl = entra.browserUrl ?? '';
      const path = `/${LOCAL_TENANT_ID}/v2.0/.well-known/openid-configuration`;
      expect(await rawHttp(browserUrl, `GET ${path} HTTP/1.0\r\n\r\n`)).toMatch(/^HTTP\/1\.1 421 /);
      expect(await rawHttp(browserUrl, `GET ${path} HTTP/1.0\r\nHost: localhost\r\n\r\n`)).toMatch(/^HTTP\/1\.1 200 /);
    });
  });

  describe('logout', () => {
    it('ends the session and returns to a registered post_logout_redirect_uri named by the ID token hint', async () => {
      const codes = pkce();
      const { code, cookie } = await signIn(codes, 'bob');
      const idToken = json<TokenAnswer>(await postToken(codeForm(code, codes))).id_token ?? '';
      const logoutUrl = `${entra.authority}/oauth2/v2.0/logout?${new URLSearchParams({ post_logout_redirect_uri: SPA_REDIRECT, id_token_hint: idToken, state: 'bye' }).toString()}`;
      const answer = await send(logoutUrl, { headers: { cookie } });
      expect(answer.status).toBe(302);
      expect(header(answer, 'location')).toBe(`${SPA_REDIRECT}?state=bye`);
      expect(header(answer, 'set-cookie')).toMatch(/ESTSAUTH=; Max-Age=0/);
      const silent = await send(authorizeUrl(spaAuthorizeParams(pkce(), { prompt: 'none' })), { headers: { cookie } });
      expect(redirectParams(silent).get('error')).toBe('login_required');
    });

    it('shows a signed-out page for a post_logout_redirect_uri the app did not register', async () => {
      const answer = await send(
        `${entra.authority}/oauth2/v2.0/logout?${new URLSearchParams({ post_logout_redirect_uri: 'https://evil.example/', client_id: LOCAL_SPA_CLIENT_ID }).toString()}`,
      );
      expect(answer.status).toBe(200);
      expect(header(answer, 'location')).toBeUndefined();
      expect(answer.text).toContain('You signed out');
    });

    it('shows a signed-out page for a post_logout_redirect_uri that only parses to a registered one', async () => {
      for (const target of ['http://evil.com@localhost:5077/', 'http:localhost:5000/', `${SPA_ORIGIN}/%2e%2e/`]) {
        const answer = await send(
          `${entra.authority}/oauth2/v2.0/logout?${new URLSearchParams({ post_logout_redirect_uri: target, client_id: LOCAL_SPA_CLIENT_ID }).toString()}`,
        );
        expect([target, answer.status, header(answer, 'location')]).toEqual([target, 200, undefined]);
      }
    });
  });
});

describe("Entra emulator: a Teams user's token for ACS, as a SPA gets it with msal-browser", () => {
  /** The claims ACS checks, and the ones Entra puts in any v1 user token. */
  const teamsClaims = {
    aud: ACS_TEAMS_AUDIENCE,
    iss: `https://sts.windows.net/${LOCAL_TENANT_ID}/`,
    ver: '1.0',
    appid: LOCAL_SPA_CLIENT_ID,
    appidacr: '0',
    scp: 'Teams.ManageCalls Teams.ManageChats',
    oid: DEMO_USERS.alice.oid,
    tid: LOCAL_TENANT_ID,
    upn: DEMO_USERS.alice.userPrincipalName,
  };

  it('acquireTokenRedirect: a sign-in and code grant for the Teams scopes give a v1 token for ACS, issued to the SPA, that ACS exchanges', async () => {
    const scope = `${TEAMS_SCOPES} openid profile offline_access`;
    const page = await send(authorizeUrl(spaAuthorizeParams(pkce(), { scope })));
    expect(page.text).toContain('Azure Communication Services: Teams.ManageChats');
    const codes = pkce();
    const { code } = await signIn(codes, 'alice', { scope });
    const answer = await postToken(codeForm(code, codes, { scope }));
    expect(answer.status).toBe(200);
    const body = json<TokenAnswer>(answer);
    expect(body.scope).toBe(TEAMS_SCOPES);
    expect(body.refresh_token).toBeDefined();
    expect(await verifyWithEmulatorKeys(body.access_token)).toMatchObject(teamsClaims);
    expect(decodeProtectedHeader(body.access_token)).toMatchObject({ alg: 'RS256', x5t: expect.any(String) });
    await exchangeForTeamsUser(body.access_token);
  });

  it.each([
    ['the scopes msal-browser sends', `${TEAMS_SCOPES} openid profile offline_access`],
    ['other letter case', `${ACS_TEAMS_AUDIENCE}/teams.managecalls ${ACS_TEAMS_AUDIENCE}/TEAMS.MANAGECHATS`],
    ["the resource's .default", `${ACS_TEAMS_AUDIENCE}/.default offline_access`],
    ["the ACS app id's .default", `${ACS_APP_ID}/.default`],
  ])('acquireTokenSilent: a refresh token of the sign-in for the API gets it, by %s', async (_name, scope) => {
    const answer = await postToken(refreshForm(await spaRefreshToken(), { scope }));
    expect(answer.status).toBe(200);
    const body = json<TokenAnswer>(answer);
    expect(body.scope).toBe(TEAMS_SCOPES);
    expect(await verifyWithEmulatorKeys(body.access_token)).toMatchObject(teamsClaims);
    await exchangeForTeamsUser(body.access_token);
  });

  it('issues a token with one of the two permissions, which ACS refuses to exchange (it needs both)', async () => {
    const body = json<TokenAnswer>(await postToken(refreshForm(await spaRefreshToken(), { scope: TEAMS_CALLS })));
    expect(decodeJwt(body.access_token)).toMatchObject({ aud: ACS_TEAMS_AUDIENCE, scp: 'Teams.ManageCalls' });
    await expect(exchangeForTeamsUser(body.access_token)).rejects.toMatchObject({ statusCode: 401, code: 'InvalidAccessToken' });
  });

  it('refuses API and ACS scopes in one code redemption (AADSTS700022); a refresh takes the first resource', async () => {
    const codes = pkce();
    const { code } = await signIn(codes, 'alice', { scope: `${API_SCOPE} ${TEAMS_SCOPES} openid offline_access` });
    expectRefusal(await postToken(codeForm(code, codes, { scope: `${API_SCOPE} ${TEAMS_CALLS}` })), 400, 'invalid_scope', 700022);
    const body = json<TokenAnswer>(await postToken(codeForm(code, codes, { scope: `${TEAMS_SCOPES} offline_access` })));
    expect(decodeJwt(body.access_token)).toMatchObject({ aud: ACS_TEAMS_AUDIENCE });
    const refreshed = json<TokenAnswer>(await postToken(refreshForm(body.refresh_token ?? '', { scope: `${TEAMS_SCOPES} ${API_SCOPE}` })));
    expect(decodeJwt(refreshed.access_token)).toMatchObject({ aud: ACS_TEAMS_AUDIENCE });
  });

  it('refuses a permission ACS does not publish (AADSTS70011), at /authorize and at the token endpoint', async () => {
    const unknown = `${ACS_TEAMS_AUDIENCE}/Teams.ReadEverything`;
    const params = redirectParams(await send(authorizeUrl(spaAuthorizeParams(pkce(), { scope: `${unknown} openid` }))));
    expect(params.get('error')).toBe('invalid_scope');
    expect(params.get('error_description')).toMatch(/^AADSTS70011: /);
    expectRefusal(await postToken(refreshForm(await spaRefreshToken(), { scope: unknown })), 400, 'invalid_scope', 70011);
  });

  it('refuses a client an admin did not grant the Teams permissions (AADSTS65001 consent_required), by code and refresh token', async () => {
    const code = await webCode(`User.Read ${TEAMS_SCOPES} openid offline_access`);
    const form = { client_id: WEB_APP_ID, client_secret: WEB_SECRET, redirect_uri: WEB_REDIRECT, code, grant_type: 'authorization_code' };
    const byCode = expectRefusal(await postToken({ ...form, scope: TEAMS_SCOPES }, {}), 400, 'invalid_grant', 65001);
    expect(byCode.suberror).toBe('consent_required');
    const graph = json<TokenAnswer>(await postToken({ ...form, scope: 'User.Read openid offline_access' }, {}));
    const refresh = { client_id: WEB_APP_ID, client_secret: WEB_SECRET, grant_type: 'refresh_token', refresh_token: graph.refresh_token };
    for (const scope of [TEAMS_SCOPES, `${ACS_TEAMS_AUDIENCE}/.default`]) {
      expectRefusal(await postToken({ ...refresh, scope }, {}), 400, 'invalid_grant', 65001);
    }
  });
});

describe('msal-node PublicClientApplication against the sign-in (conformance)', () => {
  let network: MsalNetworkClient;
  beforeAll(() => {
    network = createMsalNetworkClient({ ca: certs.caCertPem });
  });
  afterAll(() => {
    network.destroy();
  });

  /** The network client msal uses, sending `Origin` like a browser page would when `origin` is given. */
  function networkFrom(origin: string | undefined): INetworkModule {
    return {
      sendGetRequestAsync: (url, options) => network.sendGetRequestAsync(url, options),
      sendPostRequestAsync: (url, options) =>
        network.sendPostRequestAsync(
          url,
          origin === undefined ? options : { ...options, headers: { ...options?.headers, Origin: origin } },
        ),
    };
  }

  function publicClient(origin: string | undefined): PublicClientApplication {
    return new PublicClientApplication({
      auth: { clientId: LOCAL_SPA_CLIENT_ID, authority: entra.authority, knownAuthorities: [new URL(entra.url).host] },
      system: { networkClient: networkFrom(origin) },
    });
  }

  async function codeFromMsalUrl(app: PublicClientApplication, nonce: string): Promise<{ code: string; verifier: string }> {
    const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
    const url = await app.getAuthCodeUrl({
      scopes: [API_SCOPE],
      redirectUri: SPA_REDIRECT,
      codeChallenge: challenge,
      codeChallengeMethod: 'S256',
      nonce,
      state: 'msal-state',
    });
    const picked = await pick(await send(url), 'alice');
    const params = redirectParams(picked);
    expect(params.get('state')).toBe('msal-state');
    return { code: params.get('code') ?? '', verifier };
  }

  it("builds an authorize URL the emulator accepts and redeems its code into msal's account and tokens", async () => {
    const app = publicClient(SPA_ORIGIN);
    const { code, verifier } = await codeFromMsalUrl(app, 'msal-nonce');
    const result = await app.acquireTokenByCode({
      code,
      codeVerifier: verifier,
      redirectUri: SPA_REDIRECT,
      scopes: [API_SCOPE],
      nonce: 'msal-nonce',
    });
    expect(result.account).toMatchObject({
      homeAccountId: `${DEMO_USERS.alice.oid}.${LOCAL_TENANT_ID}`,
      tenantId: LOCAL_TENANT_ID,
      username: DEMO_USERS.alice.userPrincipalName,
      localAccountId: DEMO_USERS.alice.oid,
    });
    expect(result.idTokenClaims).toMatchObject({ nonce: 'msal-nonce', aud: LOCAL_SPA_CLIENT_ID });
    expect(result.scopes).toEqual([API_SCOPE]);
    expect(decodeJwt(result.accessToken)).toMatchObject({ aud: `api://${LOCAL_API_CLIENT_ID}`, scp: 'access_as_user' });
    const silent = await app.acquireTokenSilent({
      account: present(result.account, 'the signed-in account'),
      scopes: [API_SCOPE],
      forceRefresh: true,
    });
    expect(silent.accessToken).not.toBe(result.accessToken);
  });

  it("gets a Teams user's token for ACS silently after a sign-in for the API (refresh token grant), and caches it as ACS's", async () => {
    const app = publicClient(SPA_ORIGIN);
    const { code, verifier } = await codeFromMsalUrl(app, 'n');
    const signedIn = await app.acquireTokenByCode({
      code,
      codeVerifier: verifier,
      redirectUri: SPA_REDIRECT,
      scopes: [API_SCOPE],
      nonce: 'n',
    });
    const account = present(signedIn.account, 'the signed-in account');
    const teams = await app.acquireTokenSilent({ account, scopes: [TEAMS_CALLS, TEAMS_CHATS] });
    expect(teams.scopes).toEqual([TEAMS_CALLS, TEAMS_CHATS]);
    expect(decodeJwt(teams.accessToken)).toMatchObject({ aud: ACS_TEAMS_AUDIENCE, appid: LOCAL_SPA_CLIENT_ID });
    await exchangeForTeamsUser(teams.accessToken);
    expect((await app.acquireTokenSilent({ account, scopes: [TEAMS_CALLS, TEAMS_CHATS] })).accessToken).toBe(teams.accessToken);
  });

  it('raises the ServerError Entra causes when a SPA code is redeemed without Origin (AADSTS9002327)', async () => {
    const app = publicClient(undefined);
    const { code, verifier } = await codeFromMsalUrl(app, 'n');
    await expect(
      app.acquireTokenByCode({ code, codeVerifier: verifier, redirectUri: SPA_REDIRECT, scopes: [API_SCOPE], nonce: 'n' }),
    ).rejects.toMatchObject({
      errorCode: 'invalid_request',
      errorNo: 9002327,
    });
    await expect(
      app.acquireTokenByCode({ code, codeVerifier: verifier, redirectUri: SPA_REDIRECT, scopes: [API_SCOPE], nonce: 'n' }),
    ).rejects.toBeInstanceOf(ServerError);
  });
});

describe("msal-browser's authority rules (msal-common's browser build, which msal-browser runs on)", () => {
  type CacheManager = ConstructorParameters<typeof Authority>[2];
  const noCache = {
    getAuthorityMetadataByAlias: () => null,
    getAuthorityMetadata: () => null,
    setAuthorityMetadata: () => undefined,
    generateAuthorityMetadataCacheKey: (key: string) => key,
  } as unknown as CacheManager;
  const noNetwork: INetworkModule = {
    sendGetRequestAsync: (url) => Promise.reject(new Error(`unexpected request to ${url}`)),
    sendPostRequestAsync: (url) => Promise.reject(new Error(`unexpected request to ${url}`)),
  };

  function browserAuthority(url: string, authorityMetadata = ''): Authority {
    const options = {
      protocolMode: ProtocolMode.AAD,
      knownAuthorities: [new URL(entra.url).host],
      cloudDiscoveryMetadata: '',
      authorityMetadata,
    };
    return new Authority(url, noNetwork, noCache, options, new Logger({}), 'correlation-id', new StubPerformanceClient());
  }

  it('refuses an http authority, even on loopback (authority_uri_insecure)', () => {
    expect(() => browserAuthority(`${entra.browserUrl ?? ''}/${LOCAL_TENANT_ID}`)).toThrow(
      expect.objectContaining({ errorCode: 'authority_uri_insecure' }),
    );
  });

  it("takes the http listener's endpoints from authorityMetadata for the https authority, with no request at all", async () => {
    const browserUrl = entra.browserUrl ?? '';
    const metadata = await send(`${browserUrl}/${LOCAL_TENANT_ID}/v2.0/.well-known/openid-configuration`);
    const authority = browserAuthority(entra.authority, metadata.text);
    await authority.resolveEndpointsAsync();
    expect(authority.authorizationEndpoint).toBe(`${browserUrl}/${LOCAL_TENANT_ID}/oauth2/v2.0/authorize`);
    expect(authority.tokenEndpoint).toBe(`${browserUrl}/${LOCAL_TENANT_ID}/oauth2/v2.0/token`);
    expect(authority.endSessionEndpoint).toBe(`${browserUrl}/${LOCAL_TENANT_ID}/oauth2/v2.0/logout`);
  });
});

describe('local mode: a browser sign-in over the http listener gives a token the service accepts', () => {
  const service = useTestService({ localAzure: { browserSignIn: {} } });

  it('GET /api/user answers for the signed-in user (404: no identity yet), not 401', async () => {
    const local = service.local.entra;
    const browserUrl = local.browserUrl ?? '';
    expect(browserUrl.startsWith('http://127.0.0.1:')).toBe(true);
    const codes = pkce();
    const page = await request(authorizeUrl(spaAuthorizeParams(codes, { redirect_uri: 'http://127.0.0.1:5000/' }), browserUrl));
    const flowToken = /name="flowToken" value="([^"]+)"/.exec(await page.body.text())?.[1] ?? '';
    const picked = await request(`${browserUrl}/${LOCAL_TENANT_ID}/login`, {
      method: 'POST',
      headers: { 'content-type': FORM },
      body: new URLSearchParams({ flowToken, user: 'bob' }).toString(),
    });
    await picked.body.dump();
    const location = new URL(String(picked.headers['location']));
    const code = new URLSearchParams(location.hash.slice(1)).get('code') ?? '';
    const token = await request(`${browserUrl}/${LOCAL_TENANT_ID}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': FORM, origin: 'http://127.0.0.1:5000' },
      body: new URLSearchParams(codeForm(code, codes, { redirect_uri: 'http://127.0.0.1:5000/' }) as Record<string, string>).toString(),
    });
    const body = (await token.body.json()) as TokenAnswer;
    expect(token.statusCode).toBe(200);
    const answer = await service.http.get('/api/user').set('Authorization', `Bearer ${body.access_token}`);
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({ code: 'identity_not_found' });
  });

  it('refuses the sample SPA Graph permissions only an admin may grant (AADSTS90094)', async () => {
    const browserUrl = service.local.entra.browserUrl ?? '';
    const scope = 'openid offline_access User.ReadWrite.All Directory.AccessAsUser.All';
    const page = await request(authorizeUrl(spaAuthorizeParams(pkce(), { scope }), browserUrl));
    expect(page.statusCode).toBe(400);
    expect(await page.body.text()).toContain('AADSTS90094:');
  });

  it('refuses a redirect URI written as another spelling of the registered 127.0.0.1 (AADSTS50011)', async () => {
    const browserUrl = service.local.entra.browserUrl ?? '';
    for (const redirectUri of ['http://0x7f000001:5000/', 'http://2130706433:5000/', 'http://127.1:5000/', 'http://127.0.0.1:5000/.']) {
      const page = await request(authorizeUrl(spaAuthorizeParams(pkce(), { redirect_uri: redirectUri }), browserUrl));
      expect([redirectUri, page.statusCode]).toEqual([redirectUri, 400]);
      expect(await page.body.text()).toContain('AADSTS50011:');
    }
  });
});

describe("local mode: Teams users' tokens are the sample SPA's, from the CLI or a browser, and the service exchanges them", () => {
  const service = useTestService({ localAzure: { browserSignIn: {} } });

  it('sets TEAMS_CLIENT_ID to the sample SPA', () => {
    expect(service.local.settings['TEAMS_CLIENT_ID']).toBe(LOCAL_SPA_CLIENT_ID);
    expect(service.config.entra.teamsClientId).toBe(LOCAL_SPA_CLIENT_ID);
  });

  it("exchanges the CLI's --teams token (POST /_local/users/alice/teams-token over https) at GET /api/token/teams", async () => {
    const cli = new Agent({ connect: { ca: service.local.caCertPem } });
    let teamsToken: string;
    try {
      const answer = await request(`${service.local.entra.url}/_local/users/alice/teams-token`, {
        dispatcher: cli,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(answer.statusCode).toBe(200);
      teamsToken = ((await answer.body.json()) as TokenAnswer).access_token;
    } finally {
      await cli.close();
    }
    expect(decodeJwt(teamsToken)).toMatchObject({ aud: ACS_TEAMS_AUDIENCE, appid: LOCAL_SPA_CLIENT_ID, oid: DEMO_USERS.alice.oid });
    await service.http
      .get('/api/token/teams')
      .set('Authorization', `Bearer ${await service.tokenFor('alice')}`)
      .set('teams-user-aad-token', teamsToken)
      .expect(201);
  });

  it('exchanges a Teams token the SPA got in a browser sign-in at POST /api/token/teams', async () => {
    const browserUrl = service.local.entra.browserUrl ?? '';
    const origin = 'http://127.0.0.1:5000';
    const scope = `${TEAMS_SCOPES} openid profile offline_access`;
    const codes = pkce();
    const page = await send(authorizeUrl(spaAuthorizeParams(codes, { redirect_uri: `${origin}/`, scope }), browserUrl));
    const code = redirectParams(await pick(page, 'bob', browserUrl)).get('code') ?? '';
    const answer = await postToken(codeForm(code, codes, { redirect_uri: `${origin}/`, scope }), { origin }, browserUrl);
    expect(answer.status).toBe(200);
    await service.http
      .post('/api/token/teams')
      .set('Authorization', `Bearer ${await service.tokenFor('bob')}`)
      .send({ teamsUserAadToken: json<TokenAnswer>(answer).access_token })
      .expect(201);
  });
});
