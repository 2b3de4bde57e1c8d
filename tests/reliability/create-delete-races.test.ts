import supertest from 'supertest';

import { composeService } from '../../src/composition-root';
import { DEMO_USERS } from '../../src/local/local-directory';
import { createLogger } from '../../src/observability/logger';
import { tokenBody, userBody } from '../helpers/bodies';
import { expectStoreInvariants, resetTestService } from '../helpers/invariants';
import { ACS_ID, MAPPING_STORES, useTestService, type TestService } from '../helpers/test-service';

/**
 * Creates racing deletes, on one instance and across two: whatever the interleaving, every request
 * gets a deliberate answer, and the end state has no orphaned identity and no mapping to a dead one.
 */
describe.each(MAPPING_STORES)('creates racing deletes for one user (%s store)', (store) => {
  const service = useTestService({ store });
  const ALICE = DEMO_USERS.alice.oid;

  /** A second instance of the service on the same emulators and store, as App Service scales out. */
  function secondInstanceOf(running: TestService): ReturnType<typeof composeService> {
    return composeService(running.config, { logger: createLogger({ level: 'silent' }), trustedCaPem: running.local.caCertPem });
  }

  /** Latency on every upstream widens every window between a read and the write that follows it. */
  function slowUpstreams(): void {
    service.local.acs.faults.setLatency(15);
    if (store === 'graph') service.local.graph.faults.setLatency(10);
    else service.tableProxy?.delay({}, 10);
  }

  beforeEach(() => resetTestService(service));
  afterEach(() => {
    service.local.acs.faults.setLatency(0);
    service.local.graph.faults.setLatency(0);
    service.tableProxy?.clear();
  });

  it('50 concurrent creates across two instances end with one identity and no orphan', async () => {
    const secondInstance = secondInstanceOf(service);
    const instances = [service.http, supertest(secondInstance.app)] as const;
    slowUpstreams();
    try {
      const auth = { Authorization: `Bearer ${await service.tokenFor('bob')}` };
      const responses = await Promise.all(Array.from({ length: 50 }, (_, index) => instances[index % 2]!.post('/api/user').set(auth)));
      const statuses = responses.map((response) => response.status);
      // One request created the identity; every other one was told it exists, from either instance.
      expect(statuses.filter((status) => status === 201)).toHaveLength(1);
      expect(statuses.filter((status) => status !== 201 && status !== 200)).toEqual([]);
      const identities = new Set(responses.map((response) => userBody(response).acsUserIdentity));
      expect(identities.size).toBe(1);
      const [identity] = identities;
      expect(service.local.acs.aliveIdentityIds()).toEqual([identity]);
      expect(await service.mappings.mappedIdentityOf(DEMO_USERS.bob.oid)).toBe(identity);
      await expectStoreInvariants(service);
    } finally {
      await secondInstance.close();
    }
  });

  it('never orphans an identity or leaves a dead mapping, on one instance or two', async () => {
    const secondInstance = secondInstanceOf(service);
    const instances = [service.http, supertest(secondInstance.app)] as const;
    slowUpstreams();
    try {
      const auth = { Authorization: `Bearer ${await service.tokenFor('alice')}` };
      for (let round = 0; round < 6; round += 1) {
        // A create and a delete on the first instance, then on the second, and so on: each instance races
        // itself (one writer at a time per user) and the other (the store's compare-and-delete).
        const requests = Array.from({ length: 10 }, (_, index) => {
          const http = instances[Math.floor(index / 2) % 2 === 0 ? 0 : 1];
          return index % 2 === 0 ? http.post('/api/user').set(auth) : http.delete('/api/user').set(auth);
        });
        const statuses = (await Promise.all(requests)).map((response) => response.status);
        expect(statuses.filter((status) => ![200, 201, 204].includes(status))).toEqual([]);
        // At most one identity is alive, and only as the one alice's mapping names.
        await expectStoreInvariants(service);
        const mapped = await service.mappings.mappedIdentityOf(ALICE);
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
      expect(await service.mappings.mappedIdentityOf(ALICE)).toBe(identity);
      expect(service.local.acs.aliveIdentityIds()).toEqual([identity]);
      await expectStoreInvariants(service);
    } finally {
      await secondInstance.close();
    }
  });
});
