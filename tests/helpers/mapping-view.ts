import { TableClient } from '@azure/data-tables';

import type { Config } from '../../src/config/config';
import { DEMO_USERS, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import type { LocalAzure } from '../../src/local/local-azure';
import { acsResourceOf } from '../../src/services/mapping-seal';
import { mappedIdentityOf, MAPPING_EXTENSION_NAME } from './invariants';
import { putSealedMapping } from './mappings';

/**
 * The mappings as the store holds them, whichever store the service under test uses: read and written
 * past the service, as an operator with access to the store would (the Graph emulator's state; the
 * table in Azurite, reached directly with its account key, not through the fault proxy). Suites that
 * run against both stores inspect and prepare mappings through this.
 */
export interface MappingView {
  readonly store: 'graph' | 'table';
  /** The ACS identity the user's mapping names, or undefined when there is none. */
  mappedIdentityOf(oid: string): Promise<string | undefined>;
  /** Every demo user's mapping, oid → identity. */
  mappings(oids?: readonly string[]): Promise<Map<string, string>>;
  /** A mapping the service trusts, as the service writes it. */
  putTrusted(oid: string, acsUserId: string): Promise<void>;
  /**
   * A mapping the service must not trust: in Graph, one without a seal (what any app the user consented
   * to can write); in the table, which only the service writes, one made for another ACS resource.
   */
  putUntrusted(oid: string, acsUserId: string): Promise<void>;
  /** Remove the user's mapping behind the service's back. */
  remove(oid: string): Promise<void>;
  /** Remove every mapping. */
  clear(): Promise<void>;
}

const DEMO_OIDS: readonly string[] = Object.values(DEMO_USERS).map((user) => user.oid);

export function mappingViewOf(local: LocalAzure, config: Config): MappingView {
  return local.tables === undefined ? graphView(local, config) : tableView(local, config);
}

async function collect(view: Pick<MappingView, 'mappedIdentityOf'>, oids: readonly string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const oid of oids) {
    const acsUserId = await view.mappedIdentityOf(oid);
    if (acsUserId !== undefined) found.set(oid, acsUserId);
  }
  return found;
}

function graphView(local: LocalAzure, config: Config): MappingView {
  const view: MappingView = {
    store: 'graph',
    mappedIdentityOf: (oid) => Promise.resolve(mappedIdentityOf(local, oid)),
    mappings: (oids = DEMO_OIDS) => collect(view, oids),
    putTrusted(oid, acsUserId) {
      putSealedMapping({ local, config }, oid, acsUserId);
      return Promise.resolve();
    },
    putUntrusted(oid, acsUserId) {
      local.graph.putExtension(oid, config.entra.clientId, { extensionName: MAPPING_EXTENSION_NAME, acsUserIdentity: acsUserId });
      return Promise.resolve();
    },
    remove(oid) {
      local.graph.removeExtensions(oid);
      return Promise.resolve();
    },
    clear() {
      local.graph.reset();
      return Promise.resolve();
    },
  };
  return view;
}

/** The table store's layout (src/adapters/table/table-mapping-store.ts), written here by hand as an operator would. */
function tableView(local: LocalAzure, config: Config): MappingView {
  const tables = local.tables!;
  const tableName = config.mappings.table?.tableName ?? 'AcsIdentityMappings';
  const client = TableClient.fromConnectionString(tables.connectionString, tableName, {
    tlsOptions: { ca: local.caCertPem },
    retryOptions: { maxRetries: 0 },
  });
  const partitionKey = LOCAL_TENANT_ID;
  const put = async (oid: string, acsUserId: string, acsResource: string): Promise<void> => {
    await client.createTable();
    await client.upsertEntity({ partitionKey, rowKey: `user:${oid}`, acsUserId, acsResource }, 'Replace');
    await client.upsertEntity({ partitionKey, rowKey: `identity:${acsUserId}`, oid }, 'Replace');
  };
  const view: MappingView = {
    store: 'table',
    async mappedIdentityOf(oid) {
      try {
        const row = await client.getEntity<{ acsUserId?: unknown }>(partitionKey, `user:${oid}`);
        return typeof row.acsUserId === 'string' ? row.acsUserId : undefined;
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) return undefined;
        throw error;
      }
    },
    mappings: (oids = DEMO_OIDS) => collect(view, oids),
    putTrusted: (oid, acsUserId) => put(oid, acsUserId, acsResourceOf(config.acs.auth.endpoint)),
    putUntrusted: (oid, acsUserId) => put(oid, acsUserId, 'https://another-resource.communication.azure.com'),
    async remove(oid) {
      const acsUserId = await view.mappedIdentityOf(oid);
      await client.deleteEntity(partitionKey, `user:${oid}`).catch(ignoreMissing);
      if (acsUserId !== undefined) await client.deleteEntity(partitionKey, `identity:${acsUserId}`).catch(ignoreMissing);
    },
    async clear() {
      try {
        for await (const entity of client.listEntities()) await client.deleteEntity(entity.partitionKey!, entity.rowKey!);
      } catch (error) {
        ignoreMissing(error);
      }
    },
  };
  return view;
}

function ignoreMissing(error: unknown): void {
  if ((error as { statusCode?: number }).statusCode !== 404) throw error;
}
