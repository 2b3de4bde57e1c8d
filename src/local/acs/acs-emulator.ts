import type { JSONWebKeySet } from 'jose';
import { createEmulatorKit, type FaultInjector, type RequestCounters } from '../kit/faults';
import { startServer } from '../kit/start-server';
import { verifyAccessToken, type AccessTokenVerification } from './access-token-check';
import { acsErrorEnvelope } from './acs-errors';
import { createAcsResource } from './acs-resource';
import { createAcsApp } from './acs-routes';
import { resolveAcsEmulatorOptions, type AcsEmulatorOptions } from './emulator-options';
import type { IdentityRecord } from './identity-registry';
import { createTeamsTokenVerifier } from './teams-token-verifier';

/**
 * A local Azure Communication Services Identity data plane (api-version 2023-10-01): the five
 * operations of the spec over plain HTTP on loopback, with HMAC-SHA256 access-key authentication
 * checked exactly as the live service checks it, real signed JWT access tokens, revocation, deletion,
 * Teams token exchange against the Entra emulator's keys, the documented request limits, and fault
 * injection. The real `CommunicationIdentityClient` talks to it with `allowInsecureConnection: true`.
 *
 * This module only composes the emulator; each operation is in `actions/`, each step shared by the
 * routes in `middleware/`, and the route table with its check order in `acs-routes.ts`.
 *
 * @packageDocumentation
 */

export type { AccessTokenInvalidReason, AccessTokenVerification } from './access-token-check';
export type { AcsEmulatorOptions } from './emulator-options';
export { ACS_SUPPORTED_API_VERSIONS } from './middleware/api-version';

/** A running ACS emulator: where it is, its credentials, and what tests may inspect or change. */
export interface AcsEmulator {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:49152`. */
  readonly url: string;
  /** `${url}/`, the form the ACS SDK and connection strings use. */
  readonly endpoint: string;
  /** `endpoint=${url}/;accesskey=${accessKey}`. */
  readonly connectionString: string;
  readonly resourceId: string;
  readonly accessKey: string;
  readonly faults: FaultInjector;
  /** Requests per route: `identities.create`, `identities.delete`, `identities.issueToken`, `identities.revokeTokens`, `teams.exchange`, `unmatched`. */
  readonly counters: RequestCounters;
  /** Every identity ever created, deleted ones included. */
  identities(): IdentityRecord[];
  isAlive(id: string): boolean;
  aliveIdentityIds(): string[];
  /** Whether an access token this emulator issued still stands (signature, expiry, revocation, deletion). */
  verifyAccessToken(token: string): Promise<AccessTokenVerification>;
  /** Create an identity directly (a fresh id, or `id`, which must be of this resource). Returns its id. */
  seedIdentity(id?: string): string;
  /** Delete an identity as if from outside the service (portal, another app). False if it was not alive. */
  deleteIdentityDirectly(id: string): boolean;
  /** Start a new rate-limit window for every operation. */
  resetRateLimits(): void;
  /** Public key of the emulator's ACS tokens. */
  tokenSigningJwks(): JSONWebKeySet;
  /** TCP connections accepted so far (keep-alive reuse shows as few connections for many requests). */
  connectionsAccepted(): number;
  close(): Promise<void>;
}

/**
 * Start an ACS Identity emulator on loopback (port 0 unless `port` is given). Point the SDK at it with
 * `createIdentityClient({ connectionString: emulator.connectionString })`, which turns on
 * `allowInsecureConnection` for the loopback http endpoint. Close it with `close()`.
 */
export async function createAcsEmulator(options: AcsEmulatorOptions): Promise<AcsEmulator> {
  const { resourceId, accessKey, tenantId, limits, tokenLifetimeSeconds } = resolveAcsEmulatorOptions(options);
  const resource = await createAcsResource(resourceId, limits, tokenLifetimeSeconds, options.rsaKeys);
  const verifyTeamsToken = createTeamsTokenVerifier({
    entraKeys: options.entraKeys,
    tenantId,
    ...(options.entraIssuers ? { extraIssuers: options.entraIssuers } : {}),
  });
  const kit = createEmulatorKit(acsErrorEnvelope);
  const app = createAcsApp({ resource, kit, macKey: Buffer.from(accessKey, 'base64'), verifyTeamsToken });
  const server = await startServer(app, {
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.port === undefined ? {} : { port: options.port }),
  });

  const { registry, issuer, limiter } = resource;
  return {
    url: server.url,
    endpoint: `${server.url}/`,
    connectionString: `endpoint=${server.url}/;accesskey=${accessKey}`,
    resourceId,
    accessKey,
    faults: kit.faults,
    counters: kit.counters,
    identities: () => registry.list(),
    isAlive: (id) => registry.findAlive(id) !== undefined,
    aliveIdentityIds: () => registry.aliveIds(),
    verifyAccessToken: (token) => verifyAccessToken(resource, token),
    seedIdentity: (id) => registry.create(id).id,
    deleteIdentityDirectly: (id) => registry.delete(id),
    resetRateLimits: () => limiter.reset(),
    tokenSigningJwks: () => issuer.publicJwks(),
    connectionsAccepted: () => server.connectionsAccepted(),
    close: () => server.close(),
  };
}
