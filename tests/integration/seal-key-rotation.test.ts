import { createSecretKey, randomBytes } from 'node:crypto';

import supertest from 'supertest';

import { SEAL_PROPERTY } from '../../src/adapters/graph/graph-mapping-store';
import { composeService, type ServiceRuntime } from '../../src/composition-root';
import type { Config } from '../../src/config/config';
import { DEMO_USERS } from '../../src/local/local-directory';
import { createLogger } from '../../src/observability/logger';
import type { SealKey } from '../../src/services/mapping-seal';
import { errorBody } from '../helpers/bodies';
import { resetTestService } from '../helpers/invariants';
import { mappingPropertiesOf } from '../helpers/mappings';
import { useTestService } from '../helpers/test-service';
import { graphStoreOf } from '../helpers/store-config';

/**
 * Rotating MAPPING_SEAL_KEYS as docs/security.md describes it, with instances of the service on the
 * same emulators, each composed with the ring of one step: mappings sealed under the old key keep
 * working while both keys are in the ring, new writes are sealed under the first key, and a ring
 * without the old key no longer trusts what only the old key sealed.
 */

const ALICE = DEMO_USERS.alice.oid;
const BOB = DEMO_USERS.bob.oid;

describe('rotating the mapping seal keys', () => {
  const service = useTestService();
  const newKey: SealKey = { id: 'k2', secret: createSecretKey(randomBytes(32)) };
  const runtimes: ServiceRuntime[] = [];

  /** Another instance on the same emulators whose ring is `keys` (everything else as the test service). */
  function instanceWithRing(keys: (old: SealKey) => readonly SealKey[]): ReturnType<typeof supertest> {
    const [old] = graphStoreOf(service.config).sealKeys as [SealKey];
    const config: Config = {
      ...service.config,
      mappings: { store: 'graph', table: undefined, graph: { ...graphStoreOf(service.config), sealKeys: keys(old) } },
    };
    const runtime = composeService(config, { logger: createLogger({ level: 'silent' }), trustedCaPem: service.local.caCertPem });
    runtimes.push(runtime);
    return supertest(runtime.app);
  }

  const auth = async (user: keyof typeof DEMO_USERS): Promise<{ Authorization: string }> => ({
    Authorization: `Bearer ${await service.tokenFor(user)}`,
  });
  const sealKeyIdOf = (oid: string): string | undefined => {
    const seal = mappingPropertiesOf(service.local, oid)?.[SEAL_PROPERTY];
    return typeof seal === 'string' ? seal.split('.')[2] : undefined;
  };

  beforeEach(async () => {
    await resetTestService(service);
  });
  afterAll(async () => {
    await Promise.all(runtimes.map((runtime) => runtime.close()));
  });

  it('keeps old seals valid while the old key is in the ring, and seals new mappings with the first key', async () => {
    const created = await service.http
      .post('/api/user')
      .set(await auth('alice'))
      .expect(201);
    expect(sealKeyIdOf(ALICE)).toBe('local');

    // Step 1: the new key added at the END: every instance can verify it before any seals with it.
    const verifyingNew = instanceWithRing((old) => [old, newKey]);
    await verifyingNew
      .get('/api/user')
      .set(await auth('alice'))
      .expect(200, created.body);

    // Step 2: the new key first. Old seals still verify; new mappings are sealed with the new key.
    const sealingNew = instanceWithRing((old) => [newKey, old]);
    await sealingNew
      .get('/api/token')
      .set(await auth('alice'))
      .expect(201);
    const bob = await sealingNew
      .post('/api/user')
      .set(await auth('bob'))
      .expect(201);
    expect(sealKeyIdOf(BOB)).toBe('k2');
    // An instance still on step 1 trusts it too, which is why step 1 comes first.
    await verifyingNew
      .get('/api/user')
      .set(await auth('bob'))
      .expect(200, bob.body);

    // Step 3 done too early: the old key retired while alice's mapping is still sealed with it.
    const newOnly = instanceWithRing(() => [newKey]);
    await newOnly
      .get('/api/user')
      .set(await auth('bob'))
      .expect(200, bob.body);
    const refused = await newOnly
      .get('/api/token')
      .set(await auth('alice'))
      .expect(409);
    expect(errorBody(refused).code).toBe('mapping_untrusted');
  });

  it('re-seals on write: a mapping deleted and made again under the new ring carries the new key', async () => {
    await service.http
      .post('/api/user')
      .set(await auth('alice'))
      .expect(201);
    const sealingNew = instanceWithRing((old) => [newKey, old]);

    await sealingNew
      .delete('/api/user')
      .set(await auth('alice'))
      .expect(204);
    await sealingNew
      .post('/api/user')
      .set(await auth('alice'))
      .expect(201);

    expect(sealKeyIdOf(ALICE)).toBe('k2');
    await instanceWithRing(() => [newKey])
      .get('/api/user')
      .set(await auth('alice'))
      .expect(200);
  });
});
