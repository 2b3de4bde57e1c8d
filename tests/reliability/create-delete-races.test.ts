import { composeService } from '../../src/composition-root';
import { DEMO_USERS } from '../../src/local/local-directory';
import { createLogger } from '../../src/observability/logger';
import { expectInvariants, mappedIdentityOf } from '../helpers/invariants';
import { useTestService } from '../helpers/test-service';

import supertest from 'supertest';

/**
 * Creates racing deletes, on one instance and across two: whatever the interleaving, every request
 * gets a deliberate answer and the end state has no orphaned identity and no mapping to a dead one.
 */
describe('creates racing deletes for one user', () => {
  const service = useTestService();

  it('never orphans an identity or leaves a dead mapping, on one instance or two', async () => {
    const other = composeService(service.config, { logger: createLogger({ level: 'silent' }), trustedCaPem: service.local.caCertPem });
    const instances = [service.http, supertest(other.app)];
    // Latency on both upstreams widens every window between a read and the write that follows it.
    service.local.acs.faults.setLatency(15);
    service.local.graph.faults.setLatency(10);
    try {
      const auth = { Authorization: `Bearer ${await service.tokenFor('alice')}` };
      for (let round = 0; round < 6; round += 1) {
        const requests = Array.from({ length: 10 }, (_, index) => {
          const http = instances[index % instances.length] as ReturnType<typeof supertest>;
          return index % 2 === 0 ? http.post('/api/user').set(auth) : http.delete('/api/user').set(auth);
        });
        const statuses = (await Promise.all(requests)).map((response) => response.status);
        expect(statuses.filter((status) => ![200, 201, 204].includes(status))).toEqual([]);
        expectInvariants(service.local);
      }

      // The user can still get a working identity afterwards, from either instance.
      await instances[0]?.post('/api/user').set(auth).expect((response) => expect([200, 201]).toContain(response.status));
      await instances[1]?.get('/api/token').set(auth).expect(201);
      expect(mappedIdentityOf(service.local, DEMO_USERS.alice.oid)).toBeDefined();
      expectInvariants(service.local);
    } finally {
      await other.close();
    }
  });
});
