import { ACS_ID_PROPERTY } from '../../src/adapters/graph/graph-mapping-store';
import { DEMO_USERS } from '../../src/local/local-directory';
import { errorBody, userBody } from '../helpers/bodies';
import { resetTestService } from '../helpers/invariants';
import { useGraphExplorer } from '../helpers/mappings';
import { useTestService } from '../helpers/test-service';

/**
 * Where the mapping cache must let go of an entry. The deletes drop the user's entry once when they
 * start and once when they end; an entry whose identity ACS no longer knows is dropped at once. A
 * stale entry mostly heals itself (ACS answers "not found" and the entry is dropped on the way), so
 * these tests look where it does not: a token served from memory while the user's mapping is being
 * deleted, and a dead identity sent to ACS again.
 *
 * To make the moments in between observable, one upstream step is held (emulator latency on that
 * route only) or failed while a second request of the same user runs.
 */

const ALICE = DEMO_USERS.alice.oid;
/** How long the held step of a delete waits: ample for one request to run meanwhile. */
const HOLD_MS = 1_500;

/** Poll until `condition` holds (it watches the emulators' counters, which count a request on arrival). */
async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('mapping cache invalidation', () => {
  const service = useTestService();
  const explorer = useGraphExplorer(service);
  beforeEach(async () => {
    await resetTestService(service);
  });

  const aliceAuth = async (): Promise<{ Authorization: string }> => ({ Authorization: `Bearer ${await service.tokenFor('alice')}` });
  const adminAuth = async (): Promise<{ Authorization: string }> => ({
    Authorization: `Bearer ${await service.tokenFor('carol', { roles: [service.config.entra.adminRole] })}`,
  });
  const tokenIssues = (): number => service.local.acs.counters.get('identities.issueToken');

  /** Alice with an identity this instance has cached, and then (with Graph Explorer) an unsealed mapping naming it: untrusted. */
  async function aliceWithCachedIdentityAndUntrustedMapping(alice: { Authorization: string }): Promise<string> {
    const { acsUserIdentity } = userBody(await service.http.post('/api/user').set(alice).expect(201));
    await service.http.get('/api/token').set(alice).expect(201);
    await explorer().writeMapping(ALICE, { [ACS_ID_PROPERTY]: acsUserIdentity });
    return acsUserIdentity;
  }

  describe('DELETE /api/user', () => {
    it('stops serving the cached identity as soon as it starts: a token request during the delete is decided by Graph', async () => {
      const alice = await aliceAuth();
      await aliceWithCachedIdentityAndUntrustedMapping(alice);
      // The user's own delete removes an untrusted mapping alone; hold that removal in Graph.
      service.local.graph.faults.setLatency(HOLD_MS, 'extensions.delete');
      const deleting = service.http
        .delete('/api/user')
        .set(alice)
        .then((response) => response);
      await waitUntil(() => service.local.graph.counters.get('extensions.delete') === 1, 'the delete reached Graph');

      const issuesBefore = tokenIssues();
      const during = await service.http.get('/api/token').set(alice);
      // Graph holds the untrusted mapping (409), or none once the removal went through (404); memory would have said 201.
      expect([404, 409]).toContain(during.status);
      expect(errorBody(during).code).toBe(during.status === 409 ? 'mapping_untrusted' : 'identity_not_found');
      expect(tokenIssues()).toBe(issuesBefore);

      expect((await deleting).status).toBe(204);
      expect(errorBody(await service.http.get('/api/token').set(alice).expect(404)).code).toBe('identity_not_found');
    });

    it('drops, when it ends, an identity a lookup cached while it ran: the deleted identity is not sent to ACS again', async () => {
      const alice = await aliceAuth();
      const { acsUserIdentity: identity } = userBody(await service.http.post('/api/user').set(alice).expect(201));
      // Identity first, mapping second: hold the identity's deletion, while the mapping still stands in Graph.
      service.local.acs.faults.setLatency(HOLD_MS, 'identities.delete');
      const deleting = service.http
        .delete('/api/user')
        .set(alice)
        .then((response) => response);
      await waitUntil(() => service.local.acs.counters.get('identities.delete') === 1, 'the delete reached ACS');
      // A lookup meanwhile reads the mapping from Graph and caches it again.
      expect(userBody(await service.http.get('/api/user').set(alice).expect(200)).acsUserIdentity).toBe(identity);

      expect((await deleting).status).toBe(204);
      expect(service.local.acs.isAlive(identity)).toBe(false);
      const issuesBefore = tokenIssues();
      expect(errorBody(await service.http.get('/api/token').set(alice).expect(404)).code).toBe('identity_not_found');
      expect(tokenIssues()).toBe(issuesBefore);
    });
  });

  describe('when ACS no longer knows the cached identity (deleted behind the service)', () => {
    it('drops it even when Graph cannot be read right then: the next request asks Graph before ACS', async () => {
      const alice = await aliceAuth();
      const { acsUserIdentity: deleted } = userBody(await service.http.post('/api/user').set(alice).expect(201));
      await service.http.get('/api/token').set(alice).expect(201);
      service.local.acs.deleteIdentityDirectly(deleted);
      service.local.graph.faults.inject({ route: 'user.get', status: 503 });
      // Memory names the deleted identity, ACS says it is gone, and Graph cannot be asked instead.
      expect(errorBody(await service.http.get('/api/token').set(alice).expect(503)).code).toBe('upstream_unavailable');

      const issuesBefore = tokenIssues();
      // Graph still maps the deleted identity: one attempt at ACS shows it is gone, and the mapping is healed.
      expect(errorBody(await service.http.get('/api/token').set(alice).expect(404)).code).toBe('identity_not_found');
      expect(tokenIssues() - issuesBefore).toBe(1);
      expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);
    });
  });

  describe('DELETE /api/user/{userObjectId} (admin erasure)', () => {
    it("drops the user's cached identity as soon as it starts, so even a refused erasure leaves the user to Graph's verdict", async () => {
      const alice = await aliceAuth();
      const identity = await aliceWithCachedIdentityAndUntrustedMapping(alice);
      expect(
        errorBody(
          await service.http
            .delete(`/api/user/${ALICE}`)
            .set(await adminAuth())
            .expect(409),
        ).code,
      ).toBe('mapping_untrusted');
      expect(service.local.acs.isAlive(identity)).toBe(true);

      const issuesBefore = tokenIssues();
      // Memory still held the identity verified before the mapping was overwritten; Graph holds an untrusted mapping.
      expect(errorBody(await service.http.get('/api/token').set(alice).expect(409)).code).toBe('mapping_untrusted');
      expect(tokenIssues()).toBe(issuesBefore);
    });

    it('drops, when it ends, an identity a lookup cached while it ran: the erased identity is not sent to ACS again', async () => {
      const alice = await aliceAuth();
      const { acsUserIdentity: identity } = userBody(await service.http.post('/api/user').set(alice).expect(201));
      service.local.acs.faults.setLatency(HOLD_MS, 'identities.delete');
      const erasing = service.http
        .delete(`/api/user/${ALICE}`)
        .set(await adminAuth())
        .then((response) => response);
      await waitUntil(() => service.local.acs.counters.get('identities.delete') === 1, 'the erasure reached ACS');
      expect(userBody(await service.http.get('/api/user').set(alice).expect(200)).acsUserIdentity).toBe(identity);

      expect((await erasing).status).toBe(204);
      expect(service.local.acs.isAlive(identity)).toBe(false);
      // A revocation is the other operation that starts from the cache.
      const revocationsBefore = service.local.acs.counters.get('identities.revokeTokens');
      expect(errorBody(await service.http.delete('/api/token').set(alice).expect(404)).code).toBe('identity_not_found');
      expect(service.local.acs.counters.get('identities.revokeTokens')).toBe(revocationsBefore);
    });
  });
});
