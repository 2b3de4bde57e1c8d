import { LOCAL_SPA_CLIENT_ID, LOCAL_TENANT_ID, DEMO_USERS } from '../../src/local/local-directory';
import { AUTHENTICATED_ROUTES } from '../helpers/api-routes';
import { BARE_CHALLENGE, call, expectErrorBody, INVALID_TOKEN_CHALLENGE, upstreamWork } from '../helpers/auth-assertions';
import { hmacSignedWith, publicKeyPem, signedByForeignKey, withAlgNone, withTamperedPayload } from '../helpers/forged-tokens';
import { present } from '../helpers/present';
import { startTestService, type TestService } from '../helpers/test-service';

/**
 * Authentication of every /api route: which bearer tokens the service refuses, with which status,
 * code and RFC 6750 challenge, and that a refusal never costs a call to Graph, ACS or Entra's token
 * endpoint. Key rotation, the JWKS cool-down and an unreachable keys endpoint are in
 * authentication-keys.test.ts; the tokens the service accepts are in authentication-accepted.test.ts.
 */

const ADMIN_ROLE = 'AcsAuth.Admin';
const OTHER_TENANT_ID = '0c1c0e0f-5e7a-4c55-9a39-58f3d6c0d3a1';

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/**
 * A token that would pass everything (including the admin route's role check) but for the one
 * defect under test.
 */
function mint(service: TestService, options: Parameters<TestService['tokenFor']>[1] = {}): Promise<string> {
  return service.tokenFor('alice', { roles: [ADMIN_ROLE], ...options });
}

interface Refusal {
  readonly name: string;
  /** The Authorization header value, or undefined to send none. */
  readonly authorization: (service: TestService) => string | undefined | Promise<string | undefined>;
  readonly challenge: RegExp;
  /** What the message must say, so the refusal is known to come from the defect under test. */
  readonly reason: RegExp;
}

const bearer = (token: string): string => `Bearer ${token}`;

const REFUSALS: readonly Refusal[] = [
  { name: 'no Authorization header', authorization: () => undefined, challenge: BARE_CHALLENGE, reason: /no bearer token/ },
  { name: 'an empty Authorization header', authorization: () => '', challenge: BARE_CHALLENGE, reason: /no bearer token/ },
  { name: 'the Bearer scheme without a token', authorization: () => 'Bearer', challenge: BARE_CHALLENGE, reason: /no bearer token/ },
  {
    name: 'another scheme (Basic credentials)',
    authorization: () => `Basic ${Buffer.from('alice:password').toString('base64')}`,
    challenge: BARE_CHALLENGE,
    reason: /no bearer token/,
  },
  {
    name: 'a valid token without the Bearer scheme',
    authorization: async (service) => mint(service),
    challenge: BARE_CHALLENGE,
    reason: /no bearer token/,
  },
  {
    name: 'two tokens after Bearer',
    authorization: async (service) => `Bearer ${await mint(service)} ${await mint(service)}`,
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /must be "Bearer <access token>"/,
  },
  {
    name: 'characters a bearer token cannot contain',
    authorization: () => 'Bearer {"alg":"none"}',
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /must be "Bearer <access token>"/,
  },
  { name: 'Bearer with garbage', authorization: () => 'Bearer not-a-jwt', challenge: INVALID_TOKEN_CHALLENGE, reason: /malformed/ },
  {
    name: 'Bearer with three segments that are not JSON',
    authorization: () => 'Bearer aaaa.bbbb.cccc',
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /malformed/,
  },
  {
    name: 'a token that expired 10 minutes ago (beyond the 5 minute skew)',
    authorization: async (service) => bearer(await mint(service, { issuedAt: nowSeconds() - 3600 - 600, lifetimeSeconds: 3600 })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /expired/,
  },
  {
    name: 'a token not valid for another 10 minutes (nbf)',
    authorization: async (service) => bearer(await mint(service, { notBefore: nowSeconds() + 600 })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /not valid yet/,
  },
  {
    name: 'a Microsoft Graph token (aud https://graph.microsoft.com)',
    authorization: async (service) => bearer(await mint(service, { audience: 'https://graph.microsoft.com' })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /audience/,
  },
  {
    name: "a token for another app (aud is that app's client id)",
    authorization: async (service) => bearer(await mint(service, { audience: LOCAL_SPA_CLIENT_ID, version: 2 })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /audience/,
  },
  {
    name: "a token for another app (aud is that app's App ID URI)",
    authorization: async (service) => bearer(await mint(service, { audience: `api://${LOCAL_SPA_CLIENT_ID}` })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /audience/,
  },
  {
    name: "another tenant's v1 issuer",
    authorization: async (service) => bearer(await mint(service, { issuer: `https://sts.windows.net/${OTHER_TENANT_ID}/` })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /issuer/,
  },
  {
    name: 'the cloud v2 issuer, which is not the local v2 issuer',
    authorization: async (service) =>
      bearer(await mint(service, { version: 2, issuer: `https://login.microsoftonline.com/${LOCAL_TENANT_ID}/v2.0` })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /issuer/,
  },
  {
    name: 'a tid of another tenant under the right issuer',
    authorization: async (service) => bearer(await mint(service, { tid: OTHER_TENANT_ID })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /another tenant/,
  },
  {
    name: 'alg none (unsecured JWT, empty signature)',
    authorization: async (service) => bearer(withAlgNone(await mint(service))),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /malformed/,
  },
  {
    name: 'alg none with the original signature left in place',
    authorization: async (service) => {
      const token = await mint(service);
      return bearer(`${withAlgNone(token)}${present(token.split('.')[2], 'a signature segment')}`);
    },
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /RS256/,
  },
  {
    name: 'HS256 keyed with the public key PEM (key confusion)',
    authorization: async (service) => {
      const jwk = service.local.entra.keys.publicJwks().keys[0];
      if (jwk === undefined) throw new Error('the emulator publishes no key');
      return bearer(hmacSignedWith(await mint(service), publicKeyPem(jwk)));
    },
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /RS256/,
  },
  {
    name: 'HS256 keyed with the published JWK',
    authorization: async (service) =>
      bearer(hmacSignedWith(await mint(service), JSON.stringify(service.local.entra.keys.publicJwks().keys[0]))),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /RS256/,
  },
  {
    name: 'a token signed by a key the JWKS does not publish (unknown kid)',
    authorization: async (service) => bearer(signedByForeignKey(await mint(service))),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /unknown key/,
  },
  {
    name: 'a token signed by a foreign key claiming a published kid',
    authorization: async (service) => bearer(signedByForeignKey(await mint(service), { kid: service.local.entra.keys.currentKid })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /signature is invalid/,
  },
  {
    name: 'a tampered payload (oid changed to another user)',
    authorization: async (service) => bearer(withTamperedPayload(await mint(service), { oid: DEMO_USERS.bob.oid })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /signature is invalid/,
  },
  {
    name: 'an app-only token (no scp, roles present)',
    authorization: async (service) => bearer(await mint(service, { scp: null, roles: [ADMIN_ROLE, 'User.ReadWrite.All'] })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /App-only/,
  },
  {
    name: 'a token without oid',
    authorization: async (service) => bearer(await mint(service, { claims: { oid: undefined } })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /oid/,
  },
  {
    name: 'a token without exp',
    authorization: async (service) => bearer(await mint(service, { claims: { exp: undefined } })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /exp/,
  },
  {
    // jose's "not supported" error used to fall through to "the keys could not be fetched": 503.
    name: 'a crit header naming an extension the service does not implement',
    authorization: async (service) =>
      bearer(signedByForeignKey(await mint(service), { header: { crit: ['urn:example:policy'], 'urn:example:policy': 'strict' } })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /critical extension \(crit\)/,
  },
  {
    name: 'a header without kid',
    authorization: async (service) => bearer(signedByForeignKey(await mint(service), { header: { kid: undefined, x5t: undefined } })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /does not name its signing key \(kid\)/,
  },
  // Each of these is signed by the tenant's own key: only the shape tells it is not a token Entra issued.
  {
    name: 'a v1-shaped token (ver 1.0, appid) under the v2 issuer',
    authorization: async (service) => bearer(await mint(service, { version: 1, issuer: service.local.entra.issuerV2 })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /version \(ver\) does not match its issuer, which issues version 2\.0/,
  },
  {
    name: 'a v2-shaped token (ver 2.0, azp) under the v1 issuer',
    authorization: async (service) => bearer(await mint(service, { version: 2, issuer: service.local.entra.issuerV1 })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /version \(ver\) does not match its issuer, which issues version 1\.0/,
  },
  {
    name: 'a v1 token whose ver says 2.0',
    authorization: async (service) => bearer(await mint(service, { version: 1, claims: { ver: '2.0' } })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /version \(ver\) does not match/,
  },
  {
    name: 'a v2 token without ver',
    authorization: async (service) => bearer(await mint(service, { version: 2, claims: { ver: undefined } })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /version \(ver\) does not match/,
  },
  {
    name: 'a v1 token naming its client app in azp instead of appid',
    authorization: async (service) => bearer(await mint(service, { version: 1, claims: { appid: undefined, azp: LOCAL_SPA_CLIENT_ID } })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /version 1\.0 access token names its client application in 'appid'/,
  },
  {
    name: 'a v2 token carrying appid besides azp',
    authorization: async (service) => bearer(await mint(service, { version: 2, claims: { appid: LOCAL_SPA_CLIENT_ID } })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /version 2\.0 access token names its client application in 'azp' \(a GUID\) and has no 'appid'/,
  },
  {
    name: 'a v1 token whose appid is not a GUID',
    authorization: async (service) => bearer(await mint(service, { version: 1, claims: { appid: 'contoso-spa' } })),
    challenge: INVALID_TOKEN_CHALLENGE,
    reason: /'appid' \(a GUID\)/,
  },
];

describe('authentication on every /api route', () => {
  let service: TestService;
  let teamsToken: string;
  beforeAll(async () => {
    service = await startTestService();
    teamsToken = await service.local.entra.mintTeamsToken({ user: 'alice', appId: service.config.entra.teamsClientId });
  });
  afterAll(async () => {
    await service.close();
  });

  describe.each(AUTHENTICATED_ROUTES)('$name', (route) => {
    describe('when the bearer token is missing or invalid', () => {
      it.each(REFUSALS)('answers 401 invalid_token to $name, without any upstream call', async ({ authorization, challenge, reason }) => {
        const header = await authorization(service);
        const before = upstreamWork(service);

        const response = await call(service, route, { ...(header === undefined ? {} : { authorization: header }), teamsToken });

        expect(response.status).toBe(401);
        expectErrorBody(response, 'invalid_token', reason);
        expect(response.headers['www-authenticate']).toMatch(challenge);
        expect(upstreamWork(service)).toEqual(before);
      });
    });

    describe('when the token lacks the access_as_user scope', () => {
      it('answers 403 insufficient_scope with an insufficient_scope challenge, without any upstream call', async () => {
        const token = await mint(service, { scp: 'User.Read' });
        const before = upstreamWork(service);

        const response = await call(service, route, { authorization: bearer(token), teamsToken });

        expect(response.status).toBe(403);
        expectErrorBody(response, 'insufficient_scope', /access_as_user/);
        const challenge = response.headers['www-authenticate'];
        expect(challenge).toMatch(/^Bearer error="insufficient_scope", scope="access_as_user"/);
        expect(challenge).not.toContain('invalid_token');
        expect(upstreamWork(service)).toEqual(before);
      });
    });

    describe('when the token is valid (control for the cases above)', () => {
      it('gets past authentication', async () => {
        const response = await call(service, route, { authorization: bearer(await mint(service)), teamsToken });

        expect(response.status).not.toBe(401);
        expect(response.status).not.toBe(403);
        expect(response.status).toBeLessThan(500);
        expect(response.headers['www-authenticate']).toBeUndefined();
      });
    });
  });
});
