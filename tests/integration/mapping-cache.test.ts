import supertest from 'supertest';

import { composeService } from '../../src/composition-root';
import { DEMO_USERS } from '../../src/local/local-directory';
import { createLogger } from '../../src/observability/logger';
import { errorBody, tokenBody, userBody } from '../helpers/bodies';
import { useTestService } from '../helpers/test-service';

/**
 * The mapping cache makes a steady-state GET /api/token cost one upstream call (the ACS issue),
 * stays correct when the mapping changes, and heals when ACS says the identity is gone.
 */
describe('the identity mapping cache', () => {
  const service = useTestService();

  async function authAs(user: 'alice' | 'bob' | 'carol'): Promise<Record<string, string>> {
    return { Authorization: `Bearer ${await service.tokenFor(user)}` };
  }

  describe('GET /api/token a second time for the same user', () => {
    it('makes no On-Behalf-Of and no Graph call: only the ACS issue', async () => {
      const alice = await authAs('alice');
      await service.http.post('/api/user').set(alice).expect(201);
      await service.http.get('/api/token').set(alice).expect(201);

      const before = {
        obo: service.local.entra.counters.get('token'),
        graph: service.local.graph.counters.total(),
        acs: service.local.acs.counters.total(),
      };
      // A new access token for the same user (as a client refreshing it) still hits the cache: it is keyed by user, not token.
      const freshToken = await authAs('alice');
      await service.http.get('/api/token').set(freshToken).expect(201);
      await service.http.get('/api/token').set(alice).expect(201);
      expect({
        obo: service.local.entra.counters.get('token') - before.obo,
        graph: service.local.graph.counters.total() - before.graph,
        acs: service.local.acs.counters.total() - before.acs,
      }).toEqual({ obo: 0, graph: 0, acs: 2 });
    });
  });

  describe('DELETE /api/user, then GET /api/token on the same instance', () => {
    it('answers 404: the entry went with the mapping', async () => {
      const bob = await authAs('bob');
      await service.http.post('/api/user').set(bob).expect(201);
      await service.http.get('/api/token').set(bob).expect(201);
      await service.http.delete('/api/user').set(bob).expect(204);
      const response = await service.http.get('/api/token').set(bob).expect(404);
      expect(errorBody(response).code).toBe('identity_not_found');
    });
  });

  describe('when the cached identity was deleted behind the service (another instance, the portal)', () => {
    it('drops the entry, reads Graph again, and heals the stale mapping', async () => {
      const carol = await authAs('carol');
      const { acsUserIdentity: deleted } = userBody(await service.http.post('/api/user').set(carol).expect(201));
      await service.http.get('/api/token').set(carol).expect(201);
      service.local.acs.deleteIdentityDirectly(deleted);

      await service.http.get('/api/token').set(carol).expect(404);
      expect(service.local.graph.extensionsOf(DEMO_USERS.carol.oid)).toEqual([]);
      // Healed in memory too: the next request is answered from Graph, without asking ACS about the dead identity.
      const issues = service.local.acs.counters.get('identities.issueToken');
      await service.http.get('/api/token').set(carol).expect(404);
      expect(service.local.acs.counters.get('identities.issueToken')).toBe(issues);
      const again = await service.http.post('/api/token').set(carol).expect(201);
      expect(tokenBody(again).user.communicationUserId).not.toBe(deleted);
    });
  });

  describe('with two instances sharing the upstreams (App Service scale-out)', () => {
    it('an identity deleted through one instance is not served by the other', async () => {
      const logger = createLogger({ level: 'silent' });
      const secondInstance = composeService(service.config, { logger, trustedCaPem: service.local.caCertPem });
      try {
        const alice = await authAs('alice');
        const viaSecondInstance = supertest(secondInstance.app);
        await viaSecondInstance.get('/api/token').set(alice).expect(201); // warms the second instance's cache
        await service.http.delete('/api/user').set(alice).expect(204);
        const response = await viaSecondInstance.get('/api/token').set(alice).expect(404);
        expect(errorBody(response).code).toBe('identity_not_found');
      } finally {
        await secondInstance.close();
      }
    });
  });
});

describe('keep-alive connection reuse to every upstream', () => {
  const service = useTestService();

  it('serves many requests over a handful of connections to Entra ID, Graph and ACS', async () => {
    const users = ['alice', 'bob', 'carol'] as const;
    for (const user of users) {
      const auth = { Authorization: `Bearer ${await service.tokenFor(user)}` };
      await service.http.post('/api/user').set(auth).expect(201);
      for (let request = 0; request < 10; request += 1) await service.http.get('/api/token').set(auth).expect(201);
      await service.http.get('/api/user').set(auth).expect(200);
    }
    const requests = service.upstreamCalls();
    expect(requests.acs).toBeGreaterThanOrEqual(33);
    expect(requests.graph).toBeGreaterThanOrEqual(6);
    // Sequential requests: one connection each would suffice; allow a few for idle timeouts.
    expect(service.local.acs.connectionsAccepted()).toBeLessThanOrEqual(3);
    expect(service.local.graph.connectionsAccepted()).toBeLessThanOrEqual(3);
    expect(service.local.entra.connectionsAccepted()).toBeLessThanOrEqual(4);
  });
});
