import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

import supertest from 'supertest';

import { DEMO_USERS, LOCAL_API_CLIENT_ID, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { expectErrorBody, INVALID_TOKEN_CHALLENGE, upstreamWork } from '../helpers/auth-assertions';
import { userBody } from '../helpers/bodies';
import { decodeToken } from '../helpers/forged-tokens';
import { mappedIdentityOf } from '../helpers/invariants';
import { ACS_ID, type TestService, useTestService } from '../helpers/test-service';

/**
 * The tokens the service accepts (v1 and v2, both audiences, clock skew, any client app while
 * ENTRA_ALLOWED_CLIENT_APP_IDS is unset), the admin role on DELETE /api/user/{userObjectId}, oversize
 * Authorization headers, and the v1 issuer of a cloud named by ENTRA_V1_ISSUER_HOST.
 */

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

describe('authentication', () => {
  // One service for the file: starting one costs seconds (TLS certificates), and these stories use distinct users.
  const service = useTestService();

  describe('accepted access tokens', () => {
    describe('POST /api/user', () => {
      describe('with a v1 token (iss sts.windows.net, aud the App ID URI)', () => {
        it('creates the identity end to end', async () => {
          const token = await service.tokenFor('alice', { version: 1 });
          expect(decodeToken(token).payload).toMatchObject({
            ver: '1.0',
            iss: `https://sts.windows.net/${service.config.entra.tenantId}/`,
            aud: `api://${LOCAL_API_CLIENT_ID}`,
          });

          const response = await service.http.post('/api/user').set('Authorization', `Bearer ${token}`).expect(201);

          expect(userBody(response).acsUserIdentity).toMatch(ACS_ID);
          expect(mappedIdentityOf(service.local, DEMO_USERS.alice.oid)).toBe(userBody(response).acsUserIdentity);
        });
      });

      describe('with a v2 token (the local v2 issuer, aud the client id)', () => {
        it('creates the identity end to end', async () => {
          const token = await service.tokenFor('bob', { version: 2 });
          expect(decodeToken(token).payload).toMatchObject({ ver: '2.0', iss: service.local.entra.issuerV2, aud: LOCAL_API_CLIENT_ID });
          expect(service.config.entra.issuers.v2).toBe(service.local.entra.issuerV2);

          const response = await service.http.post('/api/user').set('Authorization', `Bearer ${token}`).expect(201);

          expect(userBody(response).acsUserIdentity).toMatch(ACS_ID);
          expect(mappedIdentityOf(service.local, DEMO_USERS.bob.oid)).toBe(userBody(response).acsUserIdentity);
        });
      });
    });

    describe('GET /api/user', () => {
      // Alice's identity exists from the POST above; every variant below must read it.
      const cases: readonly { readonly name: string; readonly options: Parameters<TestService['tokenFor']>[1] }[] = [
        { name: 'a v1 token whose aud is the client id', options: { version: 1, audience: LOCAL_API_CLIENT_ID } },
        { name: 'a v2 token whose aud is the App ID URI', options: { version: 2, audience: `api://${LOCAL_API_CLIENT_ID}` } },
        {
          name: 'a token that expired 2 minutes ago (within the 5 minute skew)',
          options: { issuedAt: nowSeconds() - 3600 - 120, lifetimeSeconds: 3600 },
        },
        { name: 'a token valid only in 2 minutes (nbf within the skew)', options: { notBefore: nowSeconds() + 120 } },
        { name: 'a v1 token obtained by an unregistered client app (appid)', options: { version: 1, clientAppId: randomUUID() } },
        { name: 'a v2 token obtained by an unregistered client app (azp)', options: { version: 2, clientAppId: randomUUID() } },
        { name: 'a token with several scopes, access_as_user among them', options: { scp: 'User.Read access_as_user openid' } },
      ];

      it.each(cases)('answers 200 to $name', async ({ options }) => {
        const expected = mappedIdentityOf(service.local, DEMO_USERS.alice.oid);
        expect(expected).toMatch(ACS_ID);
        const token = await service.tokenFor('alice', options);

        const response = await service.http.get('/api/user').set('Authorization', `Bearer ${token}`).expect(200);

        expect(response.body).toEqual({ acsUserIdentity: expected });
      });

      it('accepts the scheme in any case ("bearer")', async () => {
        const token = await service.tokenFor('alice');
        await service.http.get('/api/user').set('Authorization', `bearer ${token}`).expect(200);
      });
    });
  });

  describe('DELETE /api/user/{userObjectId}', () => {
    let carolsIdentity: string;
    beforeAll(async () => {
      const carol = await service.tokenFor('carol');
      const created = await service.http.post('/api/user').set('Authorization', `Bearer ${carol}`).expect(201);
      carolsIdentity = userBody(created).acsUserIdentity;
    });

    describe('when the caller has a valid token without the AcsAuth.Admin role', () => {
      it('answers 403 forbidden, touches nothing upstream, and leaves the mapping', async () => {
        const token = await service.tokenFor('alice', { roles: ['Some.Other.Role'] });
        const before = upstreamWork(service);

        const response = await service.http.delete(`/api/user/${DEMO_USERS.carol.oid}`).set('Authorization', `Bearer ${token}`);

        expect(response.status).toBe(403);
        expectErrorBody(response, 'forbidden', /AcsAuth\.Admin/);
        // A role is not something a new token from the same sign-in can fix: no bearer challenge.
        expect(response.headers['www-authenticate']).toBeUndefined();
        expect(upstreamWork(service)).toEqual(before);
        expect(mappedIdentityOf(service.local, DEMO_USERS.carol.oid)).toBe(carolsIdentity);
        expect(service.local.acs.isAlive(carolsIdentity)).toBe(true);
      });
    });

    describe('when the caller holds the AcsAuth.Admin role (control)', () => {
      it('erases the user', async () => {
        const token = await service.tokenFor('alice', { roles: ['AcsAuth.Admin'] });

        await service.http.delete(`/api/user/${DEMO_USERS.carol.oid}`).set('Authorization', `Bearer ${token}`).expect(204);

        expect(mappedIdentityOf(service.local, DEMO_USERS.carol.oid)).toBeUndefined();
        expect(service.local.acs.isAlive(carolsIdentity)).toBe(false);
      });
    });
  });

  describe('an oversize Authorization header (a 20 KB token)', () => {
    let roomyServer: Server;
    let roomyUrl: string;
    let oversizeToken: string;
    beforeAll(async () => {
      // Correctly signed by the tenant's key: only its size is wrong.
      oversizeToken = await service.tokenFor('alice', { claims: { padding: 'x'.repeat(20 * 1024) } });
      // A front end may pass headers larger than Node's default 16 KB limit; the service must still refuse.
      roomyServer = createServer({ maxHeaderSize: 64 * 1024 }, service.app);
      await new Promise<void>((resolve) => roomyServer.listen(0, '127.0.0.1', resolve));
      roomyUrl = `http://127.0.0.1:${(roomyServer.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((resolve, reject) => roomyServer.close((error) => (error ? reject(error) : resolve())));
    });

    it("is refused by Node's HTTP parser with 431 before the app runs, without any upstream call", async () => {
      const before = upstreamWork(service);

      const response = await service.http.get('/api/user').set('Authorization', `Bearer ${oversizeToken}`);

      expect(response.status).toBe(431);
      expect(upstreamWork(service)).toEqual(before);
    });

    it('is answered 401 invalid_token by the service when the HTTP server lets it through, without any upstream call', async () => {
      const before = upstreamWork(service);

      const response = await supertest(roomyUrl).get('/api/user').set('Authorization', `Bearer ${oversizeToken}`);

      expect(response.status).toBe(401);
      expectErrorBody(response, 'invalid_token', /malformed/);
      expect(response.headers['www-authenticate']).toMatch(INVALID_TOKEN_CHALLENGE);
      expect(upstreamWork(service)).toEqual(before);
    });
  });
});

describe('a v1 issuer named by ENTRA_V1_ISSUER_HOST (a sovereign cloud: 21Vianet issues v1 tokens from sts.chinacloudapi.cn)', () => {
  const service = useTestService({ env: { ENTRA_V1_ISSUER_HOST: 'https://sts.chinacloudapi.cn' } });
  const probe = (token: string): ReturnType<TestService['http']['get']> =>
    service.http.get('/api/no-such-route').set('Authorization', `Bearer ${token}`);

  it("accepts a v1 token from that cloud's issuer", async () => {
    const token = await service.tokenFor('alice', { version: 1, issuer: `https://sts.chinacloudapi.cn/${LOCAL_TENANT_ID}/` });

    await probe(token).expect(404);
  });

  it("refuses a v1 token from the global cloud's issuer", async () => {
    const response = await probe(await service.tokenFor('alice', { version: 1 }));

    expect(response.status).toBe(401);
    expectErrorBody(response, 'invalid_token', /issuer/);
  });
});
