import supertest from 'supertest';

import { composeService } from '../../src/composition-root';
import { DEMO_USERS } from '../../src/local/local-directory';
import { createLogger } from '../../src/observability/logger';
import { tokenBody, userBody } from '../helpers/bodies';
import { expectInvariants, mappedIdentityOf } from '../helpers/invariants';
import { ACS_ID, useTestService } from '../helpers/test-service';

/**
 * Creates racing deletes, on one instance and across two: whatever the interleaving, every request
 * gets a deliberate answer, and the end state has no orphaned identity and no mapping to a dead one.
 */
describe('creates racing deletes for one user', () => {
  const service = useTestService();
  const ALICE = DEMO_USERS.alice.oid;

  it('never orphans an identity or leaves a dead mapping, on one instance or two', async () => {
    const secondInstance = composeService(service.config, {
      logger: createLogger({ level: 'silent' }),
      trustedCaPem: service.local.caCertPem,
    });
    const instances = [service.http, supertest(secondInstance.app)] as const;
    // Latency on both upstreams widens every window between a read and the write that follows it.
    service.local.acs.faults.setLatency(15);
    service.local.graph.faults.setLatency(10);
    try {
      const auth = { Authorization: `Bearer ${await service.tokenFor('alice')}` };
      for (let round = 0; round < 6; round += 1) {
        // A create and a delete on the first instance, then on the second, and so on: each instance races
        // itself (one writer at a time per user) and the other (the compare-and-delete in Graph).
        const requests = Array.from({ length: 10 }, (_, index) => {
          const http = instances[Math.floor(index / 2) % 2 === 0 ? 0 : 1];
          return index % 2 === 0 ? http.post('/api/user').set(auth) : http.delete('/api/user').set(auth);
        });
        const statuses = (await Promise.all(requests)).map((response) => response.status);
        expect(statuses.filter((status) => ![200, 201, 204].includes(status))).toEqual([]);
        // At most one identity is alive, and only as the one alice's mapping names.
        expectInvariants(service.local);
        const mapped = mappedIdentityOf(service.local, ALICE);
        expect(service.local.acs.aliveIdentityIds()).toEqual(mapped === undefined ? [] : [mapped]);
      }

      // Afterwards the user gets one working identity from either instance: the one the mapping names.
      const ensured = await instances[0].post('/api/user').set(auth);
      expect([200, 201]).toContain(ensured.status);
      const identity = userBody(ensured).acsUserIdentity;
      expect(identity).toMatch(ACS_ID);
      const issued = await instances[1].get('/api/token').set(auth).expect(201);
      expect(tokenBody(issued).user.communicationUserId).toBe(identity);
      expect(await service.local.acs.verifyAccessToken(tokenBody(issued).token)).toMatchObject({ valid: true });
      expect(mappedIdentityOf(service.local, ALICE)).toBe(identity);
      expect(service.local.acs.aliveIdentityIds()).toEqual([identity]);
      expectInvariants(service.local);
    } finally {
      await secondInstance.close();
    }
  });
});
