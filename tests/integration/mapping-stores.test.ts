import { randomUUID } from 'node:crypto';

import { DEMO_USERS } from '../../src/local/local-directory';
import { issuedTokenBody, tokenBody, userBody } from '../helpers/bodies';
import { expectStoreInvariants, resetTestService } from '../helpers/invariants';
import { ACS_ID, MAPPING_STORES, useTestService, type TestService } from '../helpers/test-service';

/**
 * The API as a client sees it is the same whichever store holds the mappings: every route, status and
 * error code below runs once on the Graph store and once on the table store (Azurite), through the same
 * service code. Store-specific checks (which upstreams a request reaches) say which store they are about.
 */
describe.each(MAPPING_STORES)('the API on the %s store', (store) => {
  const service = useTestService({ store });
  const ALICE = DEMO_USERS.alice.oid;
  const BOB = DEMO_USERS.bob.oid;

  async function authAs(user: keyof typeof DEMO_USERS = 'alice', mint: Parameters<TestService['tokenFor']>[1] = {}) {
    return { Authorization: `Bearer ${await service.tokenFor(user, mint)}` };
  }

  /** Requests that reached the mapping store: Graph for the Graph store, the table for the table store. */
  const storeCalls = (): number => (store === 'graph' ? service.local.graph.counters.total() : service.upstreamCalls().storage);

  beforeEach(() => resetTestService(service));

  describe('the user routes', () => {
    it('POST creates once (201, then 200), GET reads it, DELETE removes identity and mapping (204), then GET is 404', async () => {
      const auth = await authAs();
      expectCode(404, 'identity_not_found')(await service.http.get('/api/user').set(auth));
      const created = userBody(await service.http.post('/api/user').set(auth).expect(201)).acsUserIdentity;
      expect(created).toMatch(ACS_ID);
      expect(userBody(await service.http.post('/api/user').set(auth).expect(200)).acsUserIdentity).toBe(created);
      expect(userBody(await service.http.get('/api/user').set(auth).expect(200)).acsUserIdentity).toBe(created);
      expect(await service.mappings.mappedIdentityOf(ALICE)).toBe(created);

      await service.http.delete('/api/user').set(auth).expect(204);
      expect(service.local.acs.isAlive(created)).toBe(false);
      expect(await service.mappings.mappedIdentityOf(ALICE)).toBeUndefined();
      expectCode(404, 'identity_not_found')(await service.http.get('/api/user').set(auth));
      // Deleting again is a no-op, not an error.
      await service.http.delete('/api/user').set(auth).expect(204);
      await expectStoreInvariants(service);
    });

    it('GET answers 409 mapping_untrusted for a mapping the service did not vouch for, and never uses its identity', async () => {
      const somebodyElses = service.local.acs.seedIdentity();
      await service.mappings.putUntrusted(ALICE, somebodyElses);
      const auth = await authAs();

      expectCode(409, 'mapping_untrusted')(await service.http.get('/api/user').set(auth));
      expectCode(409, 'mapping_untrusted')(await service.http.get('/api/token').set(auth));
      expectCode(409, 'mapping_untrusted')(await service.http.post('/api/token').set(auth));
      expectCode(409, 'mapping_untrusted')(await service.http.delete('/api/token').set(auth));
      expect(service.local.acs.counters.get('identities.issueToken')).toBe(0);
      expect(service.local.acs.counters.get('identities.revokeTokens')).toBe(0);

      // POST replaces it with a new identity of the user's own; the one it named is left alone.
      const own = userBody(await service.http.post('/api/user').set(auth).expect(201)).acsUserIdentity;
      expect(own).not.toBe(somebodyElses);
      expect(service.local.acs.isAlive(somebodyElses)).toBe(true);
      expect(await service.mappings.mappedIdentityOf(ALICE)).toBe(own);
    });

    it("the user's own DELETE removes an untrusted mapping only, never the identity it names", async () => {
      const somebodyElses = service.local.acs.seedIdentity();
      await service.mappings.putUntrusted(ALICE, somebodyElses);

      await service.http
        .delete('/api/user')
        .set(await authAs())
        .expect(204);

      expect(await service.mappings.mappedIdentityOf(ALICE)).toBeUndefined();
      expect(service.local.acs.isAlive(somebodyElses)).toBe(true);
    });

    it('a mapped identity of another ACS resource answers 409 identity_not_owned and keeps the mapping', async () => {
      const foreign = `8:acs:${randomUUID()}_${randomUUID()}`;
      await service.mappings.putTrusted(ALICE, foreign);

      expectCode(
        409,
        'identity_not_owned',
      )(
        await service.http
          .delete('/api/user')
          .set(await authAs())
          .send(),
      );
      expect(await service.mappings.mappedIdentityOf(ALICE)).toBe(foreign);
    });
  });

  describe('admin erasure (DELETE /api/user/{userObjectId})', () => {
    const adminAuth = () => authAs('alice', { roles: ['AcsAuth.Admin'] });

    it("deletes another user's identity and mapping (204), and answers 204 for a user without one", async () => {
      const bobs = userBody(
        await service.http
          .post('/api/user')
          .set(await authAs('bob'))
          .expect(201),
      ).acsUserIdentity;

      await service.http
        .delete(`/api/user/${BOB}`)
        .set(await adminAuth())
        .expect(204);
      expect(service.local.acs.isAlive(bobs)).toBe(false);
      expect(await service.mappings.mappedIdentityOf(BOB)).toBeUndefined();
      await service.http
        .delete(`/api/user/${BOB}`)
        .set(await adminAuth())
        .expect(204);
      // bob's next request sees the erasure at once: this instance dropped what it remembered.
      expectCode(
        404,
        'identity_not_found',
      )(
        await service.http
          .get('/api/token')
          .set(await authAs('bob'))
          .send(),
      );
    });

    it('refuses (409 mapping_untrusted) to erase through an untrusted mapping, deleting nothing', async () => {
      const somebodyElses = service.local.acs.seedIdentity();
      await service.mappings.putUntrusted(BOB, somebodyElses);

      expectCode(
        409,
        'mapping_untrusted',
      )(
        await service.http
          .delete(`/api/user/${BOB}`)
          .set(await adminAuth())
          .send(),
      );
      expect(service.local.acs.isAlive(somebodyElses)).toBe(true);
      expect(await service.mappings.mappedIdentityOf(BOB)).toBe(somebodyElses);
    });

    it('is 403 without the admin role', async () => {
      expectCode(
        403,
        'forbidden',
      )(
        await service.http
          .delete(`/api/user/${BOB}`)
          .set(await authAs('alice'))
          .send(),
      );
    });
  });

  describe('the token routes', () => {
    it('GET is 404 without an identity; POST gets or creates one and its token (201); DELETE revokes (204)', async () => {
      const auth = await authAs();
      expectCode(404, 'identity_not_found')(await service.http.get('/api/token').set(auth));
      expectCode(404, 'identity_not_found')(await service.http.delete('/api/token').set(auth));

      const first = tokenBody(await service.http.post('/api/token').set(auth).expect(201));
      expect(first.user.communicationUserId).toMatch(ACS_ID);
      // Logged as POST /api/user logs it: the record of which identity belongs to whom.
      expect(service.logs).toContainEqual(
        expect.objectContaining({ msg: 'created and mapped an ACS identity', oid: ALICE, acsUserId: first.user.communicationUserId }),
      );
      expect(await service.mappings.mappedIdentityOf(ALICE)).toBe(first.user.communicationUserId);
      const again = tokenBody(await service.http.post('/api/token').set(auth).expect(201));
      expect(again.user.communicationUserId).toBe(first.user.communicationUserId);
      const issued = tokenBody(await service.http.get('/api/token').set(auth).expect(201));
      expect((await service.local.acs.verifyAccessToken(issued.token)).valid).toBe(true);

      await service.http.delete('/api/token').set(auth).expect(204);
      expect((await service.local.acs.verifyAccessToken(issued.token)).valid).toBe(false);
      await expectStoreInvariants(service);
    });

    it('serves a steady token request from the mapping cache: ACS alone, the store is not read again', async () => {
      const auth = await authAs();
      await service.http.post('/api/user').set(auth).expect(201);
      await service.http.get('/api/token').set(auth).expect(201);
      const before = storeCalls();
      const entraTokensBefore = service.local.entra.counters.get('token');

      for (let index = 0; index < 5; index += 1) await service.http.get('/api/token').set(auth).expect(201);

      expect(storeCalls()).toBe(before);
      expect(service.local.entra.counters.get('token')).toBe(entraTokensBefore);
    });

    it('heals a mapping whose identity ACS no longer has: 404, the mapping removed, then POST makes a new one', async () => {
      const auth = await authAs();
      const gone = userBody(await service.http.post('/api/user').set(auth).expect(201)).acsUserIdentity;
      service.local.acs.deleteIdentityDirectly(gone);

      expectCode(404, 'identity_not_found')(await service.http.get('/api/token').set(auth));
      expect(await service.mappings.mappedIdentityOf(ALICE)).toBeUndefined();
      const fresh = tokenBody(await service.http.post('/api/token').set(auth).expect(201)).user.communicationUserId;
      expect(fresh).not.toBe(gone);
      await expectStoreInvariants(service);
    });

    it('the Teams exchange (GET with the header, POST with the body) answers 201 without reading any mapping', async () => {
      const teamsToken = () => service.local.entra.mintTeamsToken({ user: 'alice', appId: service.config.entra.teamsClientId });
      const before = storeCalls();
      const viaHeader = await service.http
        .get('/api/token/teams')
        .set(await authAs())
        .set('teams-user-aad-token', await teamsToken())
        .expect(201);
      expect(issuedTokenBody(viaHeader).token).toEqual(expect.any(String));
      await service.http
        .post('/api/token/teams')
        .set(await authAs())
        .send({ teamsUserAadToken: await teamsToken() })
        .expect(201);
      expect(storeCalls()).toBe(before);
    });
  });

  it('describes the store it runs on in its OpenAPI document', async () => {
    // The operations and the description; the error-code schema lists the whole vocabulary on either store.
    const { info, paths } = (await service.http.get('/api/openapi.json').expect(200)).body as { info: unknown; paths: unknown };
    const document = JSON.stringify({ info, paths });
    const graphOnly = ['mapping_limit_reached', 'interaction_required', 'acsUserIdentitySeal', 'open extension'];
    const present = graphOnly.filter((term) => document.includes(term));
    expect(present).toEqual(store === 'graph' ? graphOnly : []);
    expect(document.includes('Azure Table Storage')).toBe(store === 'table');
  });

  describe('one identity per user, one user per identity', () => {
    it('concurrent creates for one user end with one identity', async () => {
      const auth = await authAs('carol');
      const responses = await Promise.all(Array.from({ length: 20 }, () => service.http.post('/api/token').set(auth)));
      expect(responses.map((response) => response.status).filter((status) => status !== 201)).toEqual([]);
      const identities = new Set(responses.map((response) => tokenBody(response).user.communicationUserId));
      expect(identities.size).toBe(1);
      expect(service.local.acs.aliveIdentityIds()).toEqual([...identities]);
      await expectStoreInvariants(service);
    });

    it('users get distinct identities', async () => {
      const ids = await Promise.all(
        (['alice', 'bob', 'carol'] as const).map(async (user) =>
          userBody(
            await service.http
              .post('/api/user')
              .set(await authAs(user))
              .expect(201),
          ),
        ),
      );
      expect(new Set(ids.map((body) => body.acsUserIdentity)).size).toBe(3);
      await expectStoreInvariants(service);
    });
  });
});

/** Check an error answer: status and `code` (supertest's `.expect(status, body)` would compare the whole body). */
function expectCode(status: number, code: string): (response: { status: number; body: unknown }) => void {
  return (response) => {
    expect({ status: response.status, code: (response.body as { code?: unknown }).code }).toEqual({ status, code });
  };
}
