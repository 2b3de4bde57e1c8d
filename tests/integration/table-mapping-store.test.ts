import { randomUUID } from 'node:crypto';

import { createMappingTableClient } from '../../src/adapters/table/table-client';
import { createTableMappingStore } from '../../src/adapters/table/table-mapping-store';
import type { TableStoreConfig } from '../../src/config/config';
import { UpstreamError } from '../../src/errors/app-errors';
import { DEMO_USERS, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { acsResourceOf, createOwnedStoreSealer } from '../../src/services/mapping-seal';
import type { MappingStore, MappingTarget, StoredMapping } from '../../src/services/ports';
import { resetTestService } from '../helpers/invariants';
import { present } from '../helpers/present';
import { useTestService } from '../helpers/test-service';

/**
 * The table store on its own, against Azurite behind the fault proxy: the arbitration the service
 * relies on (insert-if-absent, one user per identity, ETag-conditional removal) and the lost answers
 * and races a real network adds.
 */
describe('the table mapping store', () => {
  const service = useTestService({ store: 'table' });
  const ALICE = DEMO_USERS.alice.oid;
  const BOB = DEMO_USERS.bob.oid;
  const target = (oid: string): MappingTarget => ({ via: 'me', tid: LOCAL_TENANT_ID, oid });
  const newId = (): string => `8:acs:${randomUUID()}_${randomUUID()}`;

  function storeOn(table: TableStoreConfig, maxRetries = 0): MappingStore {
    const client = createMappingTableClient({ table, maxRetries, maxRetryWaitMs: 1000, ca: service.local.caCertPem });
    return createTableMappingStore(client, { timeoutMs: 5000 });
  }
  const configured = (): TableStoreConfig => present(service.config.mappings.table, 'the table settings');
  const sealed = (acsUserId: string) => ({
    acsUserId,
    seal: createOwnedStoreSealer(acsResourceOf(service.config.acs.auth.endpoint)).seal(target(ALICE), acsUserId),
  });

  beforeEach(() => resetTestService(service));

  it("inserts a user's mapping once: the second create is 'exists' and leaves the first", async () => {
    const store = storeOn(configured());
    const first = newId();
    await expect(store.create(target(ALICE), sealed(first))).resolves.toBe('created');
    await expect(store.create(target(ALICE), sealed(newId()))).resolves.toBe('exists');
    expect(await store.read(target(ALICE))).toEqual<StoredMapping>({ acsUserId: first, seal: sealed(first).seal });
  });

  it('never maps one ACS identity to two users: the second insert fails whole', async () => {
    const store = storeOn(configured());
    const shared = newId();
    await store.create(target(ALICE), sealed(shared));

    await expect(store.create(target(BOB), sealed(shared))).rejects.toThrow(/already mapped to another user/);
    expect(await store.read(target(BOB))).toBeUndefined();
    expect(await service.mappings.mappedIdentityOf(BOB)).toBeUndefined();
  });

  it("recognises its own write when the answer was lost and the SDK's retry met it (409): 'created'", async () => {
    const store = storeOn(configured(), 2);
    const batch = /\/\$batch$/;
    service.tableProxy?.loseAnswer({ method: 'POST', path: batch }, 1);
    const seenBefore = service.tableProxy?.seen.length ?? 0;
    const id = newId();

    await expect(store.create(target(ALICE), sealed(id))).resolves.toBe('created');
    const batches = service.tableProxy?.seen.slice(seenBefore).filter((request) => request.path.endsWith('/$batch'));
    expect(batches?.map((request) => request.action)).toEqual(['lost answer', 'forwarded']);
    expect((await store.read(target(ALICE)))?.acsUserId).toBe(id);
  });

  it("removes conditionally: 'kept' when the condition fails, then 'removed' with the identity row, then 'absent'", async () => {
    const store = storeOn(configured());
    const id = newId();
    await store.create(target(ALICE), sealed(id));

    await expect(store.remove(target(ALICE), (stored) => stored.acsUserId === 'another')).resolves.toBe('kept');
    await expect(store.remove(target(ALICE), (stored) => stored.acsUserId === id)).resolves.toBe('removed');
    await expect(store.remove(target(ALICE))).resolves.toBe('absent');
    // The identity row went with it: the identity can be mapped again (to anyone).
    await expect(store.create(target(BOB), sealed(id))).resolves.toBe('created');
  });

  it('keeps a mapping rewritten between its check and its delete (the ETag no longer matches)', async () => {
    const store = storeOn(configured());
    const old = newId();
    await store.create(target(ALICE), sealed(old));
    // Hold the delete, and rewrite the row meanwhile, as another instance's create after a removal would.
    service.tableProxy?.delay({ method: 'DELETE' }, 400, 1);
    const removal = store.remove(target(ALICE), (stored) => stored.acsUserId === old);
    const replacement = newId();
    await waitFor(() => service.tableProxy?.seen.some((request) => request.method === 'DELETE') === true);
    await service.mappings.putTrusted(ALICE, replacement);

    await expect(removal).resolves.toBe('kept');
    expect(await service.mappings.mappedIdentityOf(ALICE)).toBe(replacement);
  });

  it('removes a mapping whose identity row is missing (data written by hand)', async () => {
    const store = storeOn(configured());
    await service.mappings.putTrusted(ALICE, newId());
    await service.mappings.remove(BOB);
    await expect(store.remove(target(ALICE))).resolves.toBe('removed');
    expect(await store.read(target(ALICE))).toBeUndefined();
  });

  it('creates a missing table on first use', async () => {
    const store = storeOn({ ...configured(), tableName: `Fresh${randomUUID().replace(/-/g, '')}` });
    await expect(store.read(target(ALICE))).resolves.toBeUndefined();
    await expect(store.create(target(ALICE), sealed(newId()))).resolves.toBe('created');
  });

  it("reports refused credentials as the deployment's problem (502), naming the role", async () => {
    const table = configured();
    if (table.auth.kind !== 'connectionString') throw new Error('the test service reaches Azurite with a connection string');
    const wrongKey = Buffer.alloc(64, 1).toString('base64');
    const connectionString = table.auth.connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${wrongKey}`);
    const store = storeOn({ ...table, auth: { ...table.auth, connectionString } });

    const failure = await store.read(target(ALICE)).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UpstreamError);
    expect(failure).toMatchObject({ status: 502, code: 'upstream_error' });
    expect((failure as Error).message).toMatch(/Storage Table Data Contributor/);
  });
});

/** Poll a condition the test cannot await directly (a request reaching the proxy). */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!condition()) throw new Error('the condition did not hold in time');
}
