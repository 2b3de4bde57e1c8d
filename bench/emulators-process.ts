import { randomUUID } from 'node:crypto';

import { ACS_ID_PROPERTY, SEAL_PROPERTY } from '../src/adapters/graph/graph-mapping-store';
import { loadConfig } from '../src/config/config';
import type { AcsOperation, OperationLimit } from '../src/local/acs/rate-limiter';
import { startLocalAzure, type LocalAzure } from '../src/local/local-azure';
import { DEMO_USERS, LOCAL_API_CLIENT_ID, LOCAL_TENANT_ID, type DemoUser } from '../src/local/local-directory';
import { mappingSealerOf } from '../src/services/mapping-seal';
import { serveRpc } from './ipc';

/**
 * Benchmark child process: the three local emulators (Entra ID, Graph, ACS Identity) with thousands
 * of extra users, the per-request latency that models a cloud round trip, request counters, token
 * minting and direct seeding of mappings, all driven by the orchestrator over IPC.
 */

/** Request counts per route name, per emulator. */
export interface UpstreamCounters {
  readonly entra: Readonly<Record<string, number>>;
  readonly graph: Readonly<Record<string, number>>;
  readonly acs: Readonly<Record<string, number>>;
}

export interface EmulatorsStarted {
  /** Settings that point the service at the emulators (ENTRA_*, GRAPH_BASE_URL, ACS_CONNECTION_STRING). */
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
  start(params: { readonly users: number }): Promise<EmulatorsStarted>;
  /** API access tokens (v1, `access_as_user`) for bench users `from` .. `from + count - 1`. */
  mintTokens(params: { readonly from: number; readonly count: number; readonly lifetimeSeconds: number }): Promise<string[]>;
  /** Create an ACS identity and its Graph mapping for every bench user, as if the service had; returns [oid, acsId] pairs. */
  seedMappings(params: { readonly extensionName: string }): MappingPair[];
  setLatency(params: { readonly ms: number }): void;
  counters(): UpstreamCounters;
  resetCounters(): void;
  memory(): NodeJS.MemoryUsage;
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

let local: LocalAzure | undefined;
let benchUsers: DemoUser[] = [];

function running(): LocalAzure {
  if (local === undefined) throw new Error('emulators not started');
  return local;
}

const api: EmulatorsApi = {
  async start({ users }) {
    if (local !== undefined) throw new Error('already started');
    benchUsers = Array.from({ length: users }, (_unused, index) => {
      const name = `bench-${index}`;
      return { name, oid: randomUUID(), displayName: `Bench User ${index}`, userPrincipalName: `${name}@contoso.local` };
    });
    local = await startLocalAzure({
      users: [...Object.values(DEMO_USERS), ...benchUsers],
      acsLimits: ACS_LIMITS_LIFTED,
      graphThrottle: GRAPH_THROTTLE_LIFTED,
    });
    return {
      settings: local.settings,
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

  seedMappings({ extensionName }) {
    const { acs, graph, settings } = running();
    // Sealed as the service seals them (same per-run key and ACS resource), or it would trust none.
    const config = loadConfig({ NODE_ENV: 'test', ...settings });
    const sealer = mappingSealerOf(config);
    return benchUsers.map((user) => {
      const acsId = acs.seedIdentity();
      const seal = sealer.seal({ tid: LOCAL_TENANT_ID, oid: user.oid }, acsId);
      graph.putExtension(user.oid, LOCAL_API_CLIENT_ID, { extensionName, [ACS_ID_PROPERTY]: acsId, [SEAL_PROPERTY]: seal });
      return [user.oid, acsId] as const;
    });
  },

  setLatency({ ms }) {
    const { entra, graph, acs } = running();
    for (const emulator of [entra, graph, acs]) emulator.faults.setLatency(ms);
  },

  counters() {
    const { entra, graph, acs } = running();
    return { entra: entra.counters.snapshot(), graph: graph.counters.snapshot(), acs: acs.counters.snapshot() };
  },

  resetCounters() {
    const { entra, graph, acs } = running();
    for (const emulator of [entra, graph, acs]) emulator.counters.reset();
  },

  memory: () => process.memoryUsage(),
  cpu: () => process.cpuUsage(),

  async stop() {
    await local?.close();
    local = undefined;
  },
};

serveRpc(api);
