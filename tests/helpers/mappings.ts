import { createGraphClient, type GraphClient } from '../../src/adapters/graph/graph-client';
import { ACS_ID_PROPERTY, SEAL_PROPERTY } from '../../src/adapters/graph/graph-mapping-store';
import type { Config } from '../../src/config/config';
import { GRAPH_RESOURCE, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import type { LocalAzure } from '../../src/local/local-azure';
import { mappingSealerOf } from '../../src/services/mapping-seal';
import { mintGraphToken } from './graph-tokens';
import { MAPPING_EXTENSION_NAME } from './invariants';

/**
 * Mappings in the Graph emulator, written the two ways that matter for trust:
 * - sealed, as the service (or `npm run mappings -- seal`) writes them, straight into the emulator's
 *   state, for tests that need a user who already has a trusted mapping;
 * - forged, through Graph's own HTTP API with a delegated token of ANOTHER client app (Graph
 *   Explorer), as any user can do to their own `/me` with `User.ReadWrite`: never through the service.
 */

/** Graph Explorer's client id: a first-party app every user of a tenant can sign in to and consent `User.ReadWrite`. */
export const GRAPH_EXPLORER_APP_ID = 'de8bc8b5-d9f9-48b1-a8ad-b748da725064';
/** The app registration of the original hero sample, which wrote unsealed mappings. */
export const ORIGINAL_SAMPLE_APP_ID = '1d0b5f3c-6a1e-4b8e-9f3e-2b6c8f0a9d41';

/** Put a mapping sealed for `oid` into the emulator as `appId` had written it (this API by default). */
export function putSealedMapping(
  service: { readonly local: Pick<LocalAzure, 'graph'>; readonly config: Config },
  oid: string,
  acsUserId: string,
  appId: string = service.config.entra.clientId,
): void {
  const seal = mappingSealerOf(service.config).seal({ tid: LOCAL_TENANT_ID, oid }, acsUserId);
  service.local.graph.putExtension(oid, appId, {
    extensionName: MAPPING_EXTENSION_NAME,
    [ACS_ID_PROPERTY]: acsUserId,
    [SEAL_PROPERTY]: seal,
  });
}

/** The extension's properties as a map, or undefined when the user has none. */
export function mappingPropertiesOf(local: Pick<LocalAzure, 'graph'>, oid: string): Readonly<Record<string, unknown>> | undefined {
  const wanted = MAPPING_EXTENSION_NAME.toLowerCase();
  return local.graph.extensionsOf(oid).find((extension) => extension.extensionName.toLowerCase() === wanted)?.properties;
}

export interface GraphExplorer {
  /** Create the mapping extension on the signed-in user's own `/me`, with whatever properties (POST). */
  createMapping(oid: string, properties: Readonly<Record<string, unknown>>): Promise<void>;
  /** Replace the properties of the user's existing mapping extension (PATCH replaces the whole set). */
  patchMapping(oid: string, properties: Readonly<Record<string, unknown>>): Promise<void>;
  /** Write the mapping whether or not the user has one: PATCH when it exists, POST when not. */
  writeMapping(oid: string, properties: Readonly<Record<string, unknown>>): Promise<void>;
  close(): Promise<void>;
}

/**
 * A user acting through Graph Explorer: a delegated Graph token of another client app, signed by the
 * tenant's Entra keys, sent over HTTPS to the Graph emulator by the Graph SDK.
 */
export function graphExplorer(local: Pick<LocalAzure, 'graph' | 'entra' | 'caCertPem'>): GraphExplorer {
  const graph: GraphClient = createGraphClient({ baseUrl: local.graph.url, ca: local.caCertPem, maxRetries: 0 });
  const tokenFor = (oid: string): Promise<string> =>
    mintGraphToken(local.entra.keys, { oid, appId: GRAPH_EXPLORER_APP_ID, scp: 'openid profile User.ReadWrite', audience: GRAPH_RESOURCE });
  const path = `/me/extensions/${MAPPING_EXTENSION_NAME}`;
  const explorer: GraphExplorer = {
    async createMapping(oid, properties) {
      await graph
        .api('/me/extensions', await tokenFor(oid))
        .post({ '@odata.type': 'microsoft.graph.openTypeExtension', extensionName: MAPPING_EXTENSION_NAME, ...properties });
    },
    async patchMapping(oid, properties) {
      await graph.api(path, await tokenFor(oid)).patch({ ...properties });
    },
    async writeMapping(oid, properties) {
      const exists = local.graph
        .extensionsOf(oid)
        .some((extension) => extension.extensionName.toLowerCase() === MAPPING_EXTENSION_NAME.toLowerCase());
      await (exists ? explorer.patchMapping(oid, properties) : explorer.createMapping(oid, properties));
    },
    close: () => graph.close(),
  };
  return explorer;
}

type ExplorerLocal = Pick<LocalAzure, 'graph' | 'entra' | 'caCertPem'>;

/** Work as users acting through Graph Explorer (their own `/me` only), then release its connections. */
export async function withGraphExplorer<T>(local: ExplorerLocal, work: (explorer: GraphExplorer) => Promise<T>): Promise<T> {
  const explorer = graphExplorer(local);
  try {
    return await work(explorer);
  } finally {
    await explorer.close();
  }
}

/** One Graph Explorer for the enclosing `describe` block, made before its tests and closed after them. */
export function useGraphExplorer(service: { readonly local: ExplorerLocal }): () => GraphExplorer {
  let explorer: GraphExplorer | undefined;
  beforeAll(() => {
    explorer = graphExplorer(service.local);
  });
  afterAll(async () => {
    await explorer?.close();
  });
  return () => {
    if (explorer === undefined) throw new Error('the Graph Explorer is used outside a test');
    return explorer;
  };
}
