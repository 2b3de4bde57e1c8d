import type { LocalAzure } from '../../src/local/local-azure';
import { DEMO_USERS } from '../../src/local/local-directory';
import type { TestService } from './test-service';

/**
 * The service's two data invariants, read straight from the emulators' state:
 * - no orphan: every ACS identity alive in the ACS emulator is referenced by some user's mapping
 *   extension in the Graph emulator (an orphan is a billed identity nobody can reach or delete);
 * - no lost mapping: every mapping points to an identity that is alive (a mapping to a deleted
 *   identity is a user who was told "you have an identity" and now has none).
 *
 * Only the demo users are inspected: the Graph emulator has no "list every user" view, and the
 * tests only sign in demo users.
 */

/** The extension name the original hero sample wrote and the service reads (the default GRAPH_EXTENSION_NAME). */
export const MAPPING_EXTENSION_NAME = 'com.contoso.identityMapping';

const DEMO_OIDS: readonly string[] = Object.values(DEMO_USERS).map((user) => user.oid);

/** The ACS identity the user's mapping extension points to, or undefined when there is no mapping. */
export function mappedIdentityOf(
  local: Pick<LocalAzure, 'graph'>,
  oid: string,
  extensionName: string = MAPPING_EXTENSION_NAME,
): string | undefined {
  const wanted = extensionName.toLowerCase();
  const extension = local.graph.extensionsOf(oid).find((candidate) => candidate.extensionName.toLowerCase() === wanted);
  const value = extension?.properties['acsUserIdentity'];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Every mapping of the inspected users, oid → ACS identity. */
export function mappings(local: Pick<LocalAzure, 'graph'>, oids: readonly string[] = DEMO_OIDS): Map<string, string> {
  const found = new Map<string, string>();
  for (const oid of oids) {
    const acsUserId = mappedIdentityOf(local, oid);
    if (acsUserId !== undefined) found.set(oid, acsUserId);
  }
  return found;
}

/** Identities alive in ACS that no mapping references. */
export function orphanedIdentities(local: Pick<LocalAzure, 'graph' | 'acs'>, oids: readonly string[] = DEMO_OIDS): string[] {
  const referenced = new Set(mappings(local, oids).values());
  return local.acs.aliveIdentityIds().filter((id) => !referenced.has(id));
}

/** Mappings whose identity is not alive in ACS, as `oid → identity`. */
export function lostMappings(local: Pick<LocalAzure, 'graph' | 'acs'>, oids: readonly string[] = DEMO_OIDS): Record<string, string> {
  const lost: Record<string, string> = {};
  for (const [oid, acsUserId] of mappings(local, oids)) {
    if (!local.acs.isAlive(acsUserId)) lost[oid] = acsUserId;
  }
  return lost;
}

/**
 * Assert both invariants. Written as `toEqual` on the offending lists so a failure prints exactly
 * which identities or users broke them.
 */
export function expectInvariants(local: Pick<LocalAzure, 'graph' | 'acs'>, oids: readonly string[] = DEMO_OIDS): void {
  expect({ orphans: orphanedIdentities(local, oids), lostMappings: lostMappings(local, oids) }).toEqual({ orphans: [], lostMappings: {} });
}

/**
 * Both invariants, on whichever store the service uses (read through its {@link TestService.mappings}
 * view): every live identity is mapped, every mapping names a live identity.
 */
export async function expectStoreInvariants(
  service: Pick<TestService, 'local' | 'mappings'>,
  oids: readonly string[] = DEMO_OIDS,
): Promise<void> {
  const mapped = await service.mappings.mappings(oids);
  const referenced = new Set(mapped.values());
  const orphans = service.local.acs.aliveIdentityIds().filter((id) => !referenced.has(id));
  const lost = Object.fromEntries([...mapped].filter(([, acsUserId]) => !service.local.acs.isAlive(acsUserId)));
  expect({ orphans, lostMappings: lost }).toEqual({ orphans: [], lostMappings: {} });
}

/**
 * Put the emulators back to an empty, healthy state between tests that share one test service:
 * no extensions, no live identities, no faults, counters and rate limits reset. Identities are
 * deleted the way an operator would (outside the service), so the service's own caches are not
 * involved. Its Graph token cache (graph-token-source.ts: On-Behalf-Of results keyed by the caller's
 * access token) survives a reset, which is why tests mint a fresh access token each: a reused one
 * would reach Graph without asking Entra ID, past its counters and faults. (msal's own token cache
 * plays no part: the service empties it after every On-Behalf-Of call.)
 */
export function resetEmulatorState(local: Pick<LocalAzure, 'entra' | 'graph' | 'acs'>): void {
  local.graph.reset();
  for (const id of local.acs.aliveIdentityIds()) local.acs.deleteIdentityDirectly(id);
  local.acs.faults.clear();
  local.acs.counters.reset();
  local.acs.resetRateLimits();
  local.entra.faults.clear();
  local.entra.counters.reset();
  for (const user of Object.values(DEMO_USERS)) local.entra.clearInteraction(user.oid);
}

/**
 * Start a test on a clean slate, emulators AND service: {@link resetEmulatorState}, then make the
 * service forget what it remembers about each demo user. The service keeps mappings in memory (the
 * mapping cache), and an emulator reset is a change made behind its back; `GET /api/user` always
 * reads Graph and replaces the remembered entry, so one call per user and instance re-syncs it.
 * Counters are reset afterwards, so tests count only their own upstream calls.
 *
 * @param instances every app serving this emulator set (a second instance in cross-instance tests).
 */
export async function resetTestService(service: TestService, instances: readonly TestService['http'][] = [service.http]): Promise<void> {
  resetEmulatorState(service.local);
  service.tableProxy?.clear();
  await service.mappings.clear();
  await Promise.all(
    Object.values(DEMO_USERS).map(async (user) => {
      const auth = { Authorization: `Bearer ${await service.tokenFor(user.name as keyof typeof DEMO_USERS)}` };
      for (const http of instances) {
        const response = await http.get('/api/user').set(auth);
        if (response.status !== 404)
          throw new Error(`resetTestService: GET /api/user as ${user.name} answered ${response.status}, expected 404`);
      }
    }),
  );
  service.local.entra.counters.reset();
  service.local.graph.counters.reset();
  service.local.acs.counters.reset();
}
