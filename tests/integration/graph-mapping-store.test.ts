import { createGraphClient, type GraphClient } from '../../src/adapters/graph/graph-client';
import {
  type GraphMappingTarget,
  ACS_ID_PROPERTY,
  createGraphMappingStore,
  findMappingExtension,
  SEAL_PROPERTY,
} from '../../src/adapters/graph/graph-mapping-store';
import { DEMO_USERS, LOCAL_API_CLIENT_ID, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { mappingSealerOf } from '../../src/services/mapping-seal';
import type { MappingStore, StoredMapping } from '../../src/services/ports';
import { mintGraphToken } from '../helpers/graph-tokens';
import { MAPPING_EXTENSION_NAME, resetTestService } from '../helpers/invariants';
import { mappingPropertiesOf, putSealedMapping, withGraphExplorer } from '../helpers/mappings';
import { present } from '../helpers/present';
import { useTestService } from '../helpers/test-service';

/**
 * The Graph mapping store on the Graph emulator, through the real Graph client: removal is a
 * compare-and-delete on what is stored when it runs, so a request that read an untrusted (or
 * stale) mapping never deletes the sealed one another request wrote since.
 */

const BOB = DEMO_USERS.bob.oid;

describe('the Graph mapping store', () => {
  const service = useTestService();
  let graph: GraphClient;
  let store: MappingStore;
  let target: GraphMappingTarget;

  beforeAll(() => {
    graph = createGraphClient({ baseUrl: service.local.graph.url, ca: service.local.caCertPem, maxRetries: 0 });
    // The targets are made below with a minted token, so the store never asks for one.
    const unused = (): Promise<string> => Promise.reject(new Error('the test makes its own targets'));
    store = createGraphMappingStore(graph, { forUser: unused, forApp: unused }, { extensionName: MAPPING_EXTENSION_NAME });
  });
  afterAll(async () => {
    await graph.close();
  });
  beforeEach(async () => {
    await resetTestService(service);
    // What On-Behalf-Of gives this API for bob: a delegated Graph token with User.ReadWrite.
    const graphToken = await mintGraphToken(service.local.entra.keys, { oid: BOB, appId: LOCAL_API_CLIENT_ID, scp: 'User.ReadWrite' });
    target = { via: 'me', tid: LOCAL_TENANT_ID, oid: BOB, graphToken };
  });

  const untrusted = (stored: StoredMapping): boolean =>
    !mappingSealerOf(service.config).verify(target, stored.acsUserId, stored.seal).trusted;

  it('keeps a sealed mapping written after the caller read an untrusted one', async () => {
    await withGraphExplorer(service.local, (explorer) =>
      explorer.createMapping(BOB, { [ACS_ID_PROPERTY]: service.local.acs.seedIdentity() }),
    );
    expect(untrusted(present(await store.read(target), 'the mapping bob wrote'))).toBe(true);

    // Another request (or instance) replaces it in the meantime with a sealed mapping of bob's own.
    service.local.graph.reset();
    const own = service.local.acs.seedIdentity();
    putSealedMapping(service, BOB, own);

    await expect(store.remove(target, untrusted)).resolves.toBe('kept');
    expect(mappingPropertiesOf(service.local, BOB)?.[ACS_ID_PROPERTY]).toBe(own);
  });

  it('removes the mapping when the condition still holds, and says so', async () => {
    await withGraphExplorer(service.local, (explorer) =>
      explorer.createMapping(BOB, { [ACS_ID_PROPERTY]: service.local.acs.seedIdentity() }),
    );

    await expect(store.remove(target, untrusted)).resolves.toBe('removed');
    expect(service.local.graph.extensionsOf(BOB)).toEqual([]);
    await expect(store.remove(target, untrusted)).resolves.toBe('absent');
  });

  it('deletes the extension by the id Graph has for it, when only another letter case of the name exists', async () => {
    service.local.graph.putExtension(BOB, LOCAL_API_CLIENT_ID, {
      extensionName: MAPPING_EXTENSION_NAME.toUpperCase(),
      [ACS_ID_PROPERTY]: 'x',
    });

    await expect(store.remove(target)).resolves.toBe('removed');

    expect(service.local.graph.extensionsOf(BOB)).toEqual([]);
    expect(service.local.graph.counters.get('extensions.delete')).toBe(1);
  });
});

describe("finding the mapping extension among a user's", () => {
  const named = (name: string, value: string): Record<string, unknown> => ({
    id: name,
    extensionName: name,
    [ACS_ID_PROPERTY]: value,
    [SEAL_PROPERTY]: 'v1',
  });

  it('prefers the exact name over a decoy in other letter case, wherever the decoy stands', () => {
    const decoy = named(MAPPING_EXTENSION_NAME.toUpperCase(), 'decoy');
    const real = named(MAPPING_EXTENSION_NAME, 'real');
    expect(findMappingExtension([decoy, real], MAPPING_EXTENSION_NAME)?.[ACS_ID_PROPERTY]).toBe('real');
    expect(findMappingExtension([real, decoy], MAPPING_EXTENSION_NAME)?.[ACS_ID_PROPERTY]).toBe('real');
  });

  it('uses another letter case only when it is the only candidate', () => {
    expect(
      findMappingExtension([named('com.other.thing', 'x'), named(MAPPING_EXTENSION_NAME.toLowerCase(), 'lower')], MAPPING_EXTENSION_NAME)?.[
        ACS_ID_PROPERTY
      ],
    ).toBe('lower');
    expect(findMappingExtension([named('com.other.thing', 'x')], MAPPING_EXTENSION_NAME)).toBeUndefined();
  });

  it.each([[undefined], [null], ['text'], [{}], [[null, 42, 'x']]])('finds nothing in %p', (extensions) => {
    expect(findMappingExtension(extensions, MAPPING_EXTENSION_NAME)).toBeUndefined();
  });
});
