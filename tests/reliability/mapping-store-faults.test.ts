import { DEMO_USERS } from '../../src/local/local-directory';
import { tokenBody, userBody } from '../helpers/bodies';
import { expectStoreInvariants, resetTestService } from '../helpers/invariants';
import { storeFaultsOf, type StoreFaults } from '../helpers/store-faults';
import { MAPPING_STORES, useTestService, type MappingStoreKind, type TestService } from '../helpers/test-service';

/**
 * The mapping store failing, on both stores: unreachable, throttling, slow, and a write or removal that
 * was applied but whose answer was lost. Every request gets an honest answer (503 with Retry-After, 504),
 * never a blanket 500, and the data invariants hold: no identity without a mapping, no mapping to a dead
 * identity.
 */
const HELD_MS = 2_500;
const ALICE = DEMO_USERS.alice.oid;

/** A test service on `store` for the enclosing block, reset before each test, its store's faults cleared after. */
function useFaultyStore(store: MappingStoreKind, env: Readonly<Record<string, string>>) {
  const service = useTestService({ store, env });
  const faults = (): StoreFaults => storeFaultsOf(service);
  beforeEach(() => resetTestService(service));
  afterEach(() => faults().clear());
  return { service, faults, auth: async () => ({ Authorization: `Bearer ${await service.tokenFor('alice')}` }) };
}

/** After a fault: alice's identity is the only one alive, her mapping names it, and both invariants hold. */
async function expectAliceMappedTo(service: TestService, acsUserId: string): Promise<void> {
  expect(service.local.acs.aliveIdentityIds()).toEqual([acsUserId]);
  expect(await service.mappings.mappedIdentityOf(ALICE)).toBe(acsUserId);
  await expectStoreInvariants(service);
}

describe.each(MAPPING_STORES)('the %s store failing', (store) => {
  describe('without SDK retries (UPSTREAM_MAX_RETRIES=0, UPSTREAM_TIMEOUT_MS=1000)', () => {
    const { service, faults, auth } = useFaultyStore(store, { UPSTREAM_TIMEOUT_MS: '1000' });

    it('unreachable: 503 upstream_unavailable, then recovers by itself when the store is back', async () => {
      faults().unavailable();
      const read = await service.http.get('/api/user').set(await auth());
      expect({ status: read.status, code: errorCode(read) }).toEqual({ status: 503, code: 'upstream_unavailable' });
      faults().clear();

      // The store comes back: the service recovers by itself.
      await service.http
        .post('/api/user')
        .set(await auth())
        .expect(201);
      await expectStoreInvariants(service);
    });

    it.each([429, 503] as const)('throttling with %s: 503, and Retry-After passed on where the store sent one', async (status) => {
      faults().throttle(status, 7);
      const response = await service.http.get('/api/user').set(await auth());
      expect(response.status).toBe(503);
      if (status === 429) {
        expect(errorCode(response)).toBe('upstream_throttled');
        expect(response.headers['retry-after']).toBe('7');
      } else {
        expect(errorCode(response)).toBe('upstream_unavailable');
      }
      expect(service.local.acs.aliveIdentityIds()).toEqual([]);
    });

    it('slow past the deadline: 504 upstream_timeout', async () => {
      faults().slowReads(HELD_MS);
      const response = await service.http.get('/api/user').set(await auth());
      expect({ status: response.status, code: errorCode(response) }).toEqual({ status: 504, code: 'upstream_timeout' });
    });

    it('a mapping write whose answer is lost: the service looks again, finds its own mapping, and answers 201', async () => {
      faults().loseNextWriteAnswer();
      const created = userBody(
        await service.http
          .post('/api/user')
          .set(await auth())
          .expect(201),
      ).acsUserIdentity;
      await expectAliceMappedTo(service, created);
    });
  });

  describe('with SDK retries (UPSTREAM_MAX_RETRIES=2)', () => {
    const { service, faults, auth } = useFaultyStore(store, { UPSTREAM_MAX_RETRIES: '2' });

    it('a lost write answer retried by the SDK meets its own write, which still counts as created (one identity, no orphan)', async () => {
      faults().loseNextWriteAnswer();
      const issued = tokenBody(
        await service.http
          .post('/api/token')
          .set(await auth())
          .expect(201),
      );
      await expectAliceMappedTo(service, issued.user.communicationUserId);
    });

    it('a write applied but answered 503, retried by the SDK: its own write counts as created (one identity, no orphan)', async () => {
      faults().answerNextWriteWith503();
      const created = userBody(
        await service.http
          .post('/api/user')
          .set(await auth())
          .expect(201),
      ).acsUserIdentity;
      await expectAliceMappedTo(service, created);
    });

    it('a removal applied whose answer is lost: 204, identity and mapping gone', async () => {
      const created = userBody(
        await service.http
          .post('/api/user')
          .set(await auth())
          .expect(201),
      ).acsUserIdentity;
      faults().loseNextRemoveAnswer();
      await service.http
        .delete('/api/user')
        .set(await auth())
        .expect(204);
      expect(service.local.acs.isAlive(created)).toBe(false);
      expect(await service.mappings.mappedIdentityOf(ALICE)).toBeUndefined();
      await expectStoreInvariants(service);
    });
  });
});

function errorCode(response: { body: unknown }): unknown {
  return (response.body as { code?: unknown }).code;
}
