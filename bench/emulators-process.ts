import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { TableClient, type TransactionAction } from '@azure/data-tables';

import { ACS_ID_PROPERTY, SEAL_PROPERTY } from '../src/adapters/graph/graph-mapping-store';
import { loadConfig } from '../src/config/config';
import type { AcsOperation, OperationLimit } from '../src/local/acs/rate-limiter';
import { startLocalAzure, type LocalAzure } from '../src/local/local-azure';
import { DEMO_USERS, LOCAL_API_CLIENT_ID, LOCAL_TENANT_ID, type DemoUser } from '../src/local/local-directory';
import { generateLocalCertificates } from '../src/local/tls/local-certificate-authority';
import { mappingSealerOf } from '../src/services/mapping-seal';
import { serveRpc } from './ipc';
import { startCountingTableProxy, type CountingTableProxy } from './table-proxy';

/**
 * Benchmark child process: the three local emulators (Entra ID, Graph, ACS Identity) with thousands
 * of extra users, and, for the table store, Azurite's Table service behind a counting proxy; the
 * per-request latency that models a cloud round trip, request counters, token minting and direct
 * seeding of mappings, all driven by the orchestrator over IPC.
 */

/** Where the service under test keeps its mappings (MAPPING_STORE). */
export type MappingStoreKind = 'graph' | 'table';

/** Request counts per route name, per upstream. */
export interface UpstreamCounters {
  readonly entra: Readonly<Record<string, number>>;
  readonly graph: Readonly<Record<string, number>>;
  readonly acs: Readonly<Record<string, number>>;
  /** Requests that reached the table (Azurite), per Table service operation; empty for the Graph store. */
  readonly storage: Readonly<Record<string, number>>;
}

export interface EmulatorsStarted {
  /**
   * Settings that point the service at the emulators: ENTRA_*, ACS_CONNECTION_STRING, and GRAPH_BASE_URL
   * with the Graph store's secret and seal key, or MAPPING_STORE=table with a connection string whose
   * table endpoint is the counting proxy.
   */
  readonly settings: Readonly<Record<string, string>>;
  readonly caCertPem: string;
  readonly entraUrl: string;
  /** `https://sts.windows.net/{tid}/`: the issuer of the v1 user tokens the bench mints. */
  readonly issuerV1: string;
  /** Object ids of the bench users, in minting order. */
  readonly oids: readonly string[];
}

/** A bench user's object id and the ACS identity it is mapped to. */
export type MappingPair = readonly [oid: string, acsId: string];

export interface EmulatorsApi {
  start(params: { readonly users: number; readonly store: MappingStoreKind }): Promise<EmulatorsStarted>;
  /** API access tokens (v1, `access_as_user`) for bench users `from` .. `from + count - 1`. */
  mintTokens(params: { readonly from: number; readonly count: number; readonly lifetimeSeconds: number }): Promise<string[]>;
  /**
   * Create an ACS identity and its mapping (a sealed Graph extension, or the table's two rows) for every
   * bench user, as the service would with the settings `env`; returns [oid, acsId] pairs.
   */
  seedMappings(params: { readonly env: Readonly<Record<string, string>> }): Promise<MappingPair[]>;
  setLatency(params: { readonly ms: number }): void;
  counters(): UpstreamCounters;
  resetCounters(): void;
  memory(): NodeJS.MemoryUsage;
  /** CPU of this process plus, for the table store, of Azurite's child process. */
  cpu(): NodeJS.CpuUsage;
  stop(): Promise<void>;
}

/**
 * Limits lifted for the benchmark: the documented ACS limits (1,000 token issues per 30 s) and Graph's
 * 455 requests per 10 s per app would otherwise make the emulators, not the service, the thing measured.
 */
const LIFTED = { limit: 1_000_000_000, windowMs: 1_000 } satisfies OperationLimit;
const ACS_LIMITS_LIFTED: Record<AcsOperation, OperationLimit> = {
  'identities.create': LIFTED,
  'identities.createWithToken': LIFTED,
  'identities.delete': LIFTED,
  'identities.issueToken': LIFTED,
  'identities.revokeTokens': LIFTED,
  'teams.exchange': LIFTED,
};
// Graph's throttle keeps a log of accepted requests per window: a 1 ms window keeps it short at any rate.
const GRAPH_THROTTLE_LIFTED = { limit: 1_000_000_000, windowMs: 1 };

/** Rows per seeding transaction: a table transaction holds at most 100 operations, two per user. */
const SEED_USERS_PER_TRANSACTION = 50;
const SEED_TRANSACTIONS_AT_ONCE = 8;

let local: LocalAzure | undefined;
let tableProxy: CountingTableProxy | undefined;
let benchUsers: DemoUser[] = [];

function running(): LocalAzure {
  if (local === undefined) throw new Error('emulators not started');
  return local;
}

/** The connection string with its TableEndpoint swapped for `endpoint` (the account key still signs the same paths). */
function withTableEndpoint(connectionString: string, endpoint: string): string {
  const parts = connectionString.split(';').filter((part) => part !== '' && !part.startsWith('TableEndpoint='));
  return `${[...parts, `TableEndpoint=${endpoint}`].join(';')};`;
}

/**
 * CPU of another process from /proc (Linux; zero elsewhere), in microseconds like `process.cpuUsage()`.
 * utime and stime are in clock ticks, 100 per second on Linux (USER_HZ).
 */
function childCpu(pid: number | undefined): NodeJS.CpuUsage {
  if (pid === undefined || process.platform !== 'linux') return { user: 0, system: 0 };
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, inside parentheses): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = (index: number): number => Number(fields[index - 3] ?? 0) * 10_000;
    return { user: ticks(14), system: ticks(15) };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** Write both rows of every mapping straight into the table, as the table store's create does (one partition per tenant). */
async function seedTable(
  connectionString: string,
  tableName: string,
  caCertPem: string,
  mappings: readonly (readonly [oid: string, acsId: string, acsResource: string])[],
): Promise<void> {
  const client = TableClient.fromConnectionString(connectionString, tableName, { tlsOptions: { ca: caCertPem } });
  await client.createTable();
  const partitionKey = LOCAL_TENANT_ID.toLowerCase();
  const batches: TransactionAction[][] = [];
  for (let from = 0; from < mappings.length; from += SEED_USERS_PER_TRANSACTION) {
    batches.push(
      mappings.slice(from, from + SEED_USERS_PER_TRANSACTION).flatMap(([oid, acsUserId, acsResource]): TransactionAction[] => [
        ['create', { partitionKey, rowKey: `user:${oid.toLowerCase()}`, acsUserId, acsResource }],
        ['create', { partitionKey, rowKey: `identity:${acsUserId}`, oid: oid.toLowerCase() }],
      ]),
    );
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const batch = batches[next];
      next += 1;
      if (batch !== undefined) await client.submitTransaction(batch);
    }
  };
  await Promise.all(Array.from({ length: SEED_TRANSACTIONS_AT_ONCE }, () => worker()));
}

const api: EmulatorsApi = {
  async start({ users, store }) {
    if (local !== undefined) throw new Error('already started');
    benchUsers = Array.from({ length: users }, (_unused, index) => {
      const name = `bench-${index}`;
      return { name, oid: randomUUID(), displayName: `Bench User ${index}`, userPrincipalName: `${name}@contoso.local` };
    });
    // Made here rather than by startLocalAzure, so the table proxy can serve the same certificate.
    const certificates = await generateLocalCertificates();
    local = await startLocalAzure({
      users: [...Object.values(DEMO_USERS), ...benchUsers],
      acsLimits: ACS_LIMITS_LIFTED,
      graphThrottle: GRAPH_THROTTLE_LIFTED,
      certificates,
      mappingStore: store,
    });
    let settings = local.settings;
    if (local.tables !== undefined) {
      tableProxy = await startCountingTableProxy({ target: local.tables.url, tls: certificates, caCertPem: certificates.caCertPem });
      settings = {
        ...settings,
        MAPPING_TABLE_CONNECTION_STRING: withTableEndpoint(local.tables.connectionString, tableProxy.url),
      };
    }
    return {
      settings,
      caCertPem: local.caCertPem,
      entraUrl: local.entra.url,
      issuerV1: local.entra.issuerV1,
      oids: benchUsers.map((user) => user.oid),
    };
  },

  async mintTokens({ from, count, lifetimeSeconds }) {
    const { entra } = running();
    const slice = benchUsers.slice(from, from + count);
    // Signing runs on libuv's thread pool (WebCrypto), so minting a batch concurrently uses every core.
    return Promise.all(slice.map((user) => entra.mintAccessToken({ oid: user.oid, lifetimeSeconds })));
  },

  async seedMappings({ env }) {
    const { acs, graph, tables, caCertPem } = running();
    // Sealed as the service seals them (the Graph store: same per-run key and ACS resource; the table
    // store: the ACS resource), or it would trust none.
    const config = loadConfig({ ...env, NODE_ENV: 'test' });
    const sealer = mappingSealerOf(config);
    const sealed = benchUsers.map((user) => {
      const acsId = acs.seedIdentity();
      return [user.oid, acsId, sealer.seal({ tid: LOCAL_TENANT_ID, oid: user.oid }, acsId)] as const;
    });
    if (config.mappings.store === 'table') {
      if (tables === undefined) throw new Error('the table store was asked for, but Azurite was not started');
      // Straight to Azurite, not through the proxy: setup is not counted.
      await seedTable(tables.connectionString, config.mappings.table.tableName, caCertPem, sealed);
    } else {
      const { extensionName } = config.mappings.graph;
      for (const [oid, acsId, seal] of sealed) {
        graph.putExtension(oid, LOCAL_API_CLIENT_ID, { extensionName, [ACS_ID_PROPERTY]: acsId, [SEAL_PROPERTY]: seal });
      }
    }
    return sealed.map(([oid, acsId]) => [oid, acsId] as const);
  },

  setLatency({ ms }) {
    const { entra, graph, acs } = running();
    for (const emulator of [entra, graph, acs]) emulator.faults.setLatency(ms);
    tableProxy?.setLatency(ms);
  },

  counters() {
    const { entra, graph, acs } = running();
    return {
      entra: entra.counters.snapshot(),
      graph: graph.counters.snapshot(),
      acs: acs.counters.snapshot(),
      storage: tableProxy?.counters.snapshot() ?? {},
    };
  },

  resetCounters() {
    const { entra, graph, acs } = running();
    for (const emulator of [entra, graph, acs]) emulator.counters.reset();
    tableProxy?.counters.reset();
  },

  memory: () => process.memoryUsage(),
  cpu() {
    const own = process.cpuUsage();
    const azurite = childCpu(local?.tables?.pid);
    return { user: own.user + azurite.user, system: own.system + azurite.system };
  },

  async stop() {
    await tableProxy?.close();
    tableProxy = undefined;
    await local?.close();
    local = undefined;
  },
};

serveRpc(api);
