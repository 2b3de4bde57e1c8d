import { randomUUID } from 'node:crypto';

import { expect } from '@jest/globals';
import type { Response } from 'supertest';

import { DEMO_USERS, LOCAL_API_CLIENT_ID } from '../../src/local/local-directory';
import { errorBody, issuedTokenBody, tokenBody, userBody } from '../helpers/bodies';
import { expectInvariants, mappedIdentityOf, MAPPING_EXTENSION_NAME, resetTestService } from '../helpers/invariants';
import { ORIGINAL_SAMPLE_APP_ID, putSealedMapping } from '../helpers/mappings';
import { ACS_ID, startTestService, useTestService } from '../helpers/test-service';

/**
 * `/api/token`: issuing ACS tokens for the mapped identity (GET), get-or-create plus token in one
 * call (POST), revocation (DELETE), stale and foreign mappings, and the Teams token exchange.
 */

const ALICE = DEMO_USERS.alice.oid;
const MINUTE_MS = 60_000;

describe('/api/token', () => {
  const service = useTestService();
  beforeEach(async () => {
    await resetTestService(service);
  });

  async function authAs(user: keyof typeof DEMO_USERS = 'alice'): Promise<{ Authorization: string }> {
    return { Authorization: `Bearer ${await service.tokenFor(user)}` };
  }

  async function createIdentity(user: keyof typeof DEMO_USERS = 'alice'): Promise<string> {
    const response = await service.http
      .post('/api/user')
      .set(await authAs(user))
      .expect(201);
    return userBody(response).acsUserIdentity;
  }

  function expiresInMs(expiresOn: unknown): number {
    expect(typeof expiresOn).toBe('string');
    return Date.parse(expiresOn as string) - Date.now();
  }

  describe('GET /api/token', () => {
    describe('when the user has an identity', () => {
      it('answers 201 with a token that ACS accepts for that identity', async () => {
        const acsUserId = await createIdentity();

        const response = await service.http
          .get('/api/token')
          .set(await authAs())
          .expect(201);

        expect(response.body).toEqual({
          token: expect.any(String),
          expiresOn: expect.any(String),
          user: { communicationUserId: acsUserId },
        });
        const verdict = await service.local.acs.verifyAccessToken(issuedTokenBody(response).token);
        expect(verdict.valid).toBe(true);
        expect(verdict.claims?.skypeid).toBe(acsUserId.slice('8:'.length));
        expect(verdict.claims?.acsScope).toBe(service.config.acs.tokenScopes.join(','));
      });

      it('honours scopes=voip', async () => {
        await createIdentity();

        const response = await service.http
          .get('/api/token?scopes=voip')
          .set(await authAs())
          .expect(201);

        expect((await service.local.acs.verifyAccessToken(issuedTokenBody(response).token)).claims?.acsScope).toBe('voip');
      });

      it('honours expiresInMinutes=60', async () => {
        await createIdentity();

        const response = await service.http
          .get('/api/token?expiresInMinutes=60')
          .set(await authAs())
          .expect(201);

        const remaining = expiresInMs(issuedTokenBody(response).expiresOn);
        expect(remaining).toBeGreaterThan(59 * MINUTE_MS);
        expect(remaining).toBeLessThanOrEqual(60 * MINUTE_MS);
      });

      it.each([
        ['a scope the deployment does not configure', 'scopes', 'scopes=chat.join'],
        ['an empty scope list', 'scopes', 'scopes='],
        ['a lifetime below ACS minimum', 'expiresInMinutes', 'expiresInMinutes=59'],
        ['a lifetime above ACS maximum', 'expiresInMinutes', 'expiresInMinutes=1441'],
        ['a fractional lifetime', 'expiresInMinutes', 'expiresInMinutes=60.5'],
        ['a repeated parameter', 'scopes', 'scopes=voip&scopes=chat'],
        ['an unknown parameter', 'foo', 'foo=1'],
        // Node's querystring stops at 1,000 pairs unless told otherwise, which would hide what follows.
        ['an unknown parameter after 1,000 empty pairs', 'foo', `${'&'.repeat(1000)}foo=1`],
      ])('answers 400 for %s, naming %s', async (_case, parameter, query) => {
        await createIdentity();
        const acsCallsBefore = service.local.acs.counters.total();

        const response = await service.http
          .get(`/api/token?${query}`)
          .set(await authAs())
          .expect(400);

        expect(response.body).toMatchObject({ code: 'bad_request', message: expect.stringContaining(`'${parameter}'`) });
        expect(service.local.acs.counters.total()).toBe(acsCallsBefore);
      });
    });

    describe('when the original hero sample wrote the mapping', () => {
      it('issues a token for that identity once the mapping is sealed', async () => {
        const acsUserId = service.local.acs.seedIdentity();
        putSealedMapping(service, ALICE, acsUserId, ORIGINAL_SAMPLE_APP_ID);

        const response = await service.http
          .get('/api/token')
          .set(await authAs())
          .expect(201);

        expect(tokenBody(response).user).toEqual({ communicationUserId: acsUserId });
      });

      it('answers 409 mapping_untrusted while it is not sealed, issuing nothing', async () => {
        const acsUserId = service.local.acs.seedIdentity();
        service.local.graph.putExtension(ALICE, ORIGINAL_SAMPLE_APP_ID, {
          extensionName: MAPPING_EXTENSION_NAME,
          acsUserIdentity: acsUserId,
        });

        const response = await service.http
          .get('/api/token')
          .set(await authAs())
          .expect(409);

        expect(response.body).toMatchObject({ code: 'mapping_untrusted' });
        expect(service.local.acs.counters.total()).toBe(0);
      });
    });

    describe('when the user has no mapping', () => {
      it('answers 404 identity_not_found and creates nothing', async () => {
        const response = await service.http
          .get('/api/token')
          .set(await authAs())
          .expect(404);

        expect(response.body).toMatchObject({ code: 'identity_not_found', message: expect.any(String) });
        expect(service.local.acs.counters.total()).toBe(0);
      });
    });

    describe('when the mapped identity was deleted outside the service (stale mapping)', () => {
      it('answers 404 identity_not_found, removes the mapping, and POST /api/user then creates a fresh identity', async () => {
        const stale = await createIdentity();
        service.local.acs.deleteIdentityDirectly(stale);

        const response = await service.http
          .get('/api/token')
          .set(await authAs())
          .expect(404);

        expect(response.body).toMatchObject({ code: 'identity_not_found' });
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);

        const fresh = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(201);
        expect(userBody(fresh).acsUserIdentity).not.toBe(stale);
        expect(mappedIdentityOf(service.local, ALICE)).toBe(userBody(fresh).acsUserIdentity);
        expectInvariants(service.local);
      });
    });

    describe('when the mapped identity belongs to another ACS resource', () => {
      it('answers 409 identity_not_owned and leaves the mapping alone', async () => {
        const foreign = `8:acs:${randomUUID()}_${randomUUID()}`;
        putSealedMapping(service, ALICE, foreign, ORIGINAL_SAMPLE_APP_ID);

        const response = await service.http
          .get('/api/token')
          .set(await authAs())
          .expect(409);

        expect(response.body).toMatchObject({ code: 'identity_not_owned', message: expect.any(String) });
        expect(mappedIdentityOf(service.local, ALICE)).toBe(foreign);
      });
    });
  });

  describe('POST /api/token', () => {
    describe('when the user has no identity', () => {
      it('answers 201, creating the identity and its token in one ACS call', async () => {
        const response = await service.http
          .post('/api/token')
          .set(await authAs())
          .expect(201);

        expect(response.body).toEqual({
          token: expect.any(String),
          expiresOn: expect.any(String),
          user: { communicationUserId: expect.stringMatching(ACS_ID) },
        });
        expect(service.local.acs.counters.get('identities.create')).toBe(1);
        expect(service.local.acs.counters.get('identities.issueToken')).toBe(0);
        expect(mappedIdentityOf(service.local, ALICE)).toBe(tokenBody(response).user.communicationUserId);
        expect((await service.local.acs.verifyAccessToken(issuedTokenBody(response).token)).valid).toBe(true);
        expectInvariants(service.local);
      });

      it('applies the token options to the created token', async () => {
        const response = await service.http
          .post('/api/token?scopes=voip&expiresInMinutes=60')
          .set(await authAs())
          .expect(201);

        expect((await service.local.acs.verifyAccessToken(issuedTokenBody(response).token)).claims?.acsScope).toBe('voip');
        expect(expiresInMs(issuedTokenBody(response).expiresOn)).toBeLessThanOrEqual(60 * MINUTE_MS);
      });

      it('refuses bad options before creating anything', async () => {
        const response = await service.http
          .post('/api/token?expiresInMinutes=59')
          .set(await authAs())
          .expect(400);

        expect(errorBody(response).message).toContain("'expiresInMinutes'");
        expect(service.local.acs.counters.total()).toBe(0);
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);
      });
    });

    describe('when the user already has an identity', () => {
      it('answers 201 with a token issued for it', async () => {
        const acsUserId = await createIdentity();
        service.local.acs.counters.reset();

        const response = await service.http
          .post('/api/token')
          .set(await authAs())
          .expect(201);

        expect(tokenBody(response).user).toEqual({ communicationUserId: acsUserId });
        expect(service.local.acs.counters.get('identities.create')).toBe(0);
        expect(service.local.acs.counters.get('identities.issueToken')).toBe(1);
      });
    });

    describe('when many requests for one new user arrive at once', () => {
      it('creates one identity and every caller gets a valid token for it', async () => {
        const auth = await authAs();
        const responses = await Promise.all(Array.from({ length: 20 }, () => service.http.post('/api/token').set(auth)));

        expect(responses.map((response) => response.status)).toEqual(Array<number>(20).fill(201));
        const ids = new Set(responses.map((response) => tokenBody(response).user.communicationUserId));
        expect(ids.size).toBe(1);
        const verdicts = await Promise.all(
          responses.map((response) => service.local.acs.verifyAccessToken(issuedTokenBody(response).token)),
        );
        expect(verdicts.every((verdict) => verdict.valid)).toBe(true);
        expect(service.local.acs.aliveIdentityIds()).toEqual([...ids]);
        expectInvariants(service.local);
      });
    });

    describe('when the mapping is stale', () => {
      it('heals in one call: 201 with a new identity, mapped', async () => {
        const stale = await createIdentity();
        service.local.acs.deleteIdentityDirectly(stale);

        const response = await service.http
          .post('/api/token')
          .set(await authAs())
          .expect(201);

        const fresh = tokenBody(response).user.communicationUserId;
        expect(fresh).toMatch(ACS_ID);
        expect(fresh).not.toBe(stale);
        expect(mappedIdentityOf(service.local, ALICE)).toBe(fresh);
        expect((await service.local.acs.verifyAccessToken(issuedTokenBody(response).token)).valid).toBe(true);
        expectInvariants(service.local);
      });
    });

    describe('when the mapped identity belongs to another ACS resource', () => {
      it('answers 409 identity_not_owned and creates nothing', async () => {
        const foreign = `8:acs:${randomUUID()}_${randomUUID()}`;
        putSealedMapping(service, ALICE, foreign, ORIGINAL_SAMPLE_APP_ID);

        const response = await service.http
          .post('/api/token')
          .set(await authAs())
          .expect(409);

        expect(response.body).toMatchObject({ code: 'identity_not_owned' });
        expect(service.local.acs.counters.get('identities.create')).toBe(0);
        expect(mappedIdentityOf(service.local, ALICE)).toBe(foreign);
      });

      it('creates an identity in this resource once the foreign mapping was deleted with Graph (the documented fix)', async () => {
        const foreign = `8:acs:${randomUUID()}_${randomUUID()}`;
        putSealedMapping(service, ALICE, foreign, ORIGINAL_SAMPLE_APP_ID);
        await service.http
          .post('/api/token')
          .set(await authAs())
          .expect(409);
        // docs/troubleshooting.md: delete only the extension with Graph, outside this service.
        service.local.graph.reset();

        const response = await service.http
          .post('/api/token')
          .set(await authAs())
          .expect(201);

        expect(tokenBody(response).user.communicationUserId).toMatch(ACS_ID);
        expect(tokenBody(response).user.communicationUserId).not.toBe(foreign);
        expect(mappedIdentityOf(service.local, ALICE)).toBe(tokenBody(response).user.communicationUserId);
        expectInvariants(service.local);
      });
    });
  });

  describe('DELETE /api/token', () => {
    describe('when the user has an identity', () => {
      it('answers 204; tokens issued before are revoked, tokens issued after are valid', async () => {
        await createIdentity();
        const before = await service.http
          .get('/api/token')
          .set(await authAs())
          .expect(201);

        await service.http
          .delete('/api/token')
          .set(await authAs())
          .expect(204);
        const after = await service.http
          .get('/api/token')
          .set(await authAs())
          .expect(201);

        expect((await service.local.acs.verifyAccessToken(issuedTokenBody(before).token)).reason).toBe('revoked');
        expect((await service.local.acs.verifyAccessToken(issuedTokenBody(after).token)).valid).toBe(true);
        expect(service.local.acs.counters.get('identities.revokeTokens')).toBe(1);
      });
    });

    describe('when the user has no mapping', () => {
      it('answers 404 identity_not_found', async () => {
        const response = await service.http
          .delete('/api/token')
          .set(await authAs())
          .expect(404);
        expect(response.body).toMatchObject({ code: 'identity_not_found' });
      });
    });

    describe('when the mapping is stale', () => {
      it('answers 404 identity_not_found and removes the mapping', async () => {
        const stale = await createIdentity();
        service.local.acs.deleteIdentityDirectly(stale);

        const response = await service.http
          .delete('/api/token')
          .set(await authAs())
          .expect(404);

        expect(response.body).toMatchObject({ code: 'identity_not_found' });
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);
        expectInvariants(service.local);
      });
    });
  });

  describe('/api/token/teams', () => {
    const teamsTokenFor = (user: keyof typeof DEMO_USERS, overrides: { appId?: string; lifetimeSeconds?: number } = {}): Promise<string> =>
      service.local.entra.mintTeamsToken({ user, appId: service.config.entra.teamsClientId, ...overrides });

    async function expectTeamsAcsToken(response: Response): Promise<void> {
      expect(response.body).toEqual({ token: expect.any(String), expiresOn: expect.any(String) });
      const verdict = await service.local.acs.verifyAccessToken(issuedTokenBody(response).token);
      expect(verdict.valid).toBe(true);
      expect(verdict.claims?.skypeid).toBe(`orgid:${ALICE}`);
    }

    describe("when the caller presents their own Teams user's token", () => {
      it('GET with the teams-user-aad-token header answers 201 with an ACS token', async () => {
        const response = await service.http
          .get('/api/token/teams')
          .set(await authAs())
          .set('teams-user-aad-token', await teamsTokenFor('alice'))
          .expect(201);

        await expectTeamsAcsToken(response);
      });

      it('POST with { teamsUserAadToken } answers 201 with an ACS token', async () => {
        const response = await service.http
          .post('/api/token/teams')
          .set(await authAs())
          .send({ teamsUserAadToken: await teamsTokenFor('alice') })
          .expect(201);

        await expectTeamsAcsToken(response);
      });

      it('POST with the header answers 201 with an ACS token', async () => {
        const response = await service.http
          .post('/api/token/teams')
          .set(await authAs())
          .set('teams-user-aad-token', await teamsTokenFor('alice'))
          .expect(201);

        await expectTeamsAcsToken(response);
      });

      it('needs no ACS identity mapping', async () => {
        await service.http
          .get('/api/token/teams')
          .set(await authAs())
          .set('teams-user-aad-token', await teamsTokenFor('alice'))
          .expect(201);

        expect(service.local.graph.counters.total()).toBe(0);
        expect(service.local.acs.aliveIdentityIds()).toEqual([]);
      });
    });

    describe('when the Teams token is missing or malformed in the request', () => {
      it.each([
        ['GET without the header', 'get', undefined],
        ['POST with an empty body', 'post', {}],
        ['POST with a blank token', 'post', { teamsUserAadToken: '   ' }],
      ] as const)('%s: answers 400 bad_request without calling ACS', async (_name, method, body) => {
        const request = service.http[method]('/api/token/teams').set(await authAs());
        const response = await (body === undefined ? request : request.send(body)).expect(400);

        expect(response.body).toMatchObject({ code: 'bad_request', message: expect.stringContaining('teams-user-aad-token') });
        expect(service.local.acs.counters.get('teams.exchange')).toBe(0);
      });

      it('answers 400 bad_request when teamsUserAadToken is not a string', async () => {
        const response = await service.http
          .post('/api/token/teams')
          .set(await authAs())
          .send({ teamsUserAadToken: 42 })
          .expect(400);

        expect(response.body).toMatchObject({ code: 'bad_request', message: expect.stringContaining('teamsUserAadToken') });
      });
    });

    describe('when ACS refuses the Teams token', () => {
      it.each([
        ["another user's Teams token", () => teamsTokenFor('bob')],
        ['an expired Teams token', () => teamsTokenFor('alice', { lifetimeSeconds: -3600 })],
        ['a Teams token issued to another app', () => teamsTokenFor('alice', { appId: LOCAL_API_CLIENT_ID })],
        ['a string that is not a token', () => Promise.resolve('not-a-jwt')],
      ])('%s: answers 400 invalid_teams_token, never 500', async (_name, makeToken) => {
        const response = await service.http
          .post('/api/token/teams')
          .set(await authAs())
          .send({ teamsUserAadToken: await makeToken() })
          .expect(400);

        expect(response.body).toMatchObject({ code: 'invalid_teams_token', message: expect.any(String) });
        expect(service.local.acs.counters.get('teams.exchange')).toBe(1);
      });
    });
  });
});

describe('/api/token/teams with a v2 Teams token', () => {
  it('exchanges it too (the local v2 issuer is the Entra emulator host)', async () => {
    const service = await startTestService();
    try {
      const teamsToken = await service.local.entra.mintAccessToken({
        user: 'alice',
        version: 2,
        audience: 'https://auth.msft.communication.azure.com',
        scp: 'Teams.ManageCalls Teams.ManageChats',
        clientAppId: service.config.entra.teamsClientId,
      });
      const response = await service.http
        .get('/api/token/teams')
        .set('Authorization', `Bearer ${await service.tokenFor('alice')}`)
        .set('teams-user-aad-token', teamsToken)
        .expect(201);
      expect((await service.local.acs.verifyAccessToken(issuedTokenBody(response).token)).valid).toBe(true);
    } finally {
      await service.close();
    }
  });
});
