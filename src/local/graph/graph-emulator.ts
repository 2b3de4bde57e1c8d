import type { SigningKeySet } from '../entra/signing-keys';
import { createEmulatorKit, type FaultInjector, type RequestCounters } from '../kit/faults';
import { startServer } from '../kit/start-server';
import { LOCAL_TENANT_ID } from '../local-directory';
import { createGraphErrorEnvelope } from './graph-emulator-error';
import { createGraphApp } from './graph-routes';
import { createGraphEmulatorState } from './graph-state';
import { createRequestIdAssignment } from './middleware/request-ids';
import type { ExtensionSeed, StoredExtension } from './open-extension-store';

/**
 * A local Microsoft Graph that serves the slice this service uses: the signed-in user and its open
 * extensions (`/v1.0/me`, `/v1.0/me/extensions`, and the same under `/v1.0/users/{id}`), plus the
 * paged user list an admin tool walks (`/v1.0/users?$expand=extensions`), over HTTPS, verifying
 * Entra-issued Graph tokens and answering with Graph's status codes, error envelope, limits and
 * throttling.
 *
 * This module only composes the emulator; each route's action is in `actions/`, each step shared by
 * the routes in `middleware/`, and the route table with its check order in `graph-routes.ts`.
 *
 * @packageDocumentation
 */

/** How to start a Graph emulator. */
export interface GraphEmulatorOptions {
  /** Server certificate and key (the Graph client sends tokens over https only). */
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  /** The Entra emulator's signing keys: tokens must be signed by one of its published keys. */
  readonly keys: SigningKeySet;
  /** Tenant whose v1 issuer (`https://sts.windows.net/{tid}/`) is accepted; {@link LOCAL_TENANT_ID} by default. */
  readonly tenantId?: string;
  /** Per-app request budget; Graph's 455 requests per 10 s by default. */
  readonly throttle?: { readonly limit?: number; readonly windowMs?: number };
  /** Interface to bind; 127.0.0.1 by default. */
  readonly host?: string;
  /** Port; 0 (a free one) by default. */
  readonly port?: number;
}

/** An extension as seen by tests, with the app that created it. */
export type EmulatedExtension = StoredExtension;

/** A running Graph emulator: where it is, and what tests may inspect or change. */
export interface GraphEmulator {
  /** Base URL without the version segment, e.g. `https://127.0.0.1:49152` (use it as the Graph client's `baseUrl`). */
  readonly url: string;
  readonly tenantId: string;
  readonly faults: FaultInjector;
  /**
   * Requests per route name (each counted whatever it answered), plus `throttled`: the 429s of the
   * per-app budget, so a test can tell requests the client repeated after throttling.
   */
  readonly counters: RequestCounters;
  /** Every open extension on a user, in creation order. */
  extensionsOf(oid: string): readonly EmulatedExtension[];
  /**
   * Seed an extension as if `appId` had created it (e.g. data left by the original sample). Bypasses
   * the per-app limit. An unknown `oid` joins the directory (generated name and UPN), so
   * `/users/{oid}` finds it and `/users` lists it, as every user holding an extension exists on Graph.
   */
  putExtension(oid: string, appId: string, extension: ExtensionSeed): EmulatedExtension;
  /** Delete every extension of a user, as an operator outside any app would (bypasses faults and counters). */
  removeExtensions(oid: string): void;
  /** Forget extensions and users seen, refill the throttle, clear faults and counters. */
  reset(): void;
  /** TCP connections accepted so far (keep-alive reuse shows as few connections for many requests). */
  connectionsAccepted(): number;
  close(): Promise<void>;
}

/** Start the Graph emulator on loopback (port 0 by default). */
export async function createGraphEmulator(options: GraphEmulatorOptions): Promise<GraphEmulator> {
  const state = createGraphEmulatorState(options.tenantId ?? LOCAL_TENANT_ID, options.throttle);
  const requestIds = createRequestIdAssignment();
  const kit = createEmulatorKit(createGraphErrorEnvelope((req) => requestIds.idsOf(req)));
  const app = createGraphApp({ state, kit, requestIds, keys: options.keys });
  const started = await startServer(app, { tls: options.tls, host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  state.baseUrl = started.url;

  const { directory, store, throttle } = state;
  return {
    url: started.url,
    tenantId: state.tenantId,
    faults: kit.faults,
    counters: kit.counters,
    extensionsOf: (oid) => store.list(oid),
    putExtension: (oid, appId, extension) => {
      const seeded = store.seed(oid, appId, extension);
      directory.ensure(oid);
      return seeded;
    },
    removeExtensions: (oid) => {
      for (const extension of store.list(oid)) store.delete(oid, extension.id);
    },
    reset: () => {
      store.reset();
      directory.reset();
      throttle.reset();
      kit.faults.clear();
      kit.counters.reset();
    },
    connectionsAccepted: () => started.connectionsAccepted(),
    close: () => started.close(),
  };
}
