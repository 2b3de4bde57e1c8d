import { execFile, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { expect } from '@jest/globals';
import supertest from 'supertest';

import { createGraphClient } from '../../src/adapters/graph/graph-client';
import { createGraphMappingDirectory } from '../../src/adapters/graph/graph-mapping-directory';
import { SEAL_PROPERTY } from '../../src/adapters/graph/graph-mapping-store';
import {
  createMappingMaintenance,
  type MaintenanceProgress,
  type MappingMaintenance,
  type MappingMaintenanceOptions,
  type SealReport,
} from '../../src/admin/mapping-maintenance';
import type { AdoptionPair } from '../../src/admin/adoption-plan';
import { formatAudit, formatSealLine, formatSealSummary } from '../../src/admin/mapping-report';
import { EXIT, parseMappingsArguments, runMappingsCommand, UsageError } from '../../src/admin/mappings-command';
import type { MappingDirectory } from '../../src/admin/ports';
import { composeMappingAdmin, composeService, type MappingAdminRuntime, type ServiceRuntime } from '../../src/composition-root';
import { loadConfig, type Config } from '../../src/config/config';
import { ThrottledError } from '../../src/errors/app-errors';
import type { LocalAzure } from '../../src/local/local-azure';
import { DEMO_USERS, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { adminFilePath, readLocalSession } from '../../src/local/local-session';
import { createLogger, type Logger } from '../../src/observability/logger';
import { mappingSealerOf, type MappingVerdict } from '../../src/services/mapping-seal';
import { startService, type RunningService } from '../../src/server';
import { capturedIo } from '../helpers/command-io';
import { errorBody, tokenBody, userBody } from '../helpers/bodies';
import { mintGraphToken } from '../helpers/graph-tokens';
import { MAPPING_EXTENSION_NAME, mappedIdentityOf, orphanedIdentities, resetTestService } from '../helpers/invariants';
import {
  GRAPH_EXPLORER_APP_ID,
  mappingPropertiesOf,
  ORIGINAL_SAMPLE_APP_ID,
  putSealedMapping,
  withGraphExplorer,
} from '../helpers/mappings';
import { present } from '../helpers/present';
import { findLeaks } from '../helpers/secrecy';
import { type TestService, useTestService } from '../helpers/test-service';
import { graphStoreOf } from '../helpers/store-config';

/**
 * `npm run mappings -- audit|seal`: the maintenance composed by composeMappingAdmin (real msal, Graph
 * client and sealer) against the Graph emulator, then the service itself on the result; and the
 * command end to end (arguments, the local admin file, printing, exit status, a child process).
 */

const ALICE = DEMO_USERS.alice.oid;
const BOB = DEMO_USERS.bob.oid;
const CAROL = DEMO_USERS.carol.oid;
const DEMO_OIDS = [ALICE, BOB, CAROL];

/** A seal key in MAPPING_SEAL_KEYS form. */
const newKey = (): string => randomBytes(32).toString('base64');

/** Every log line the admin side (and the extra service instances) wrote, and the secrets none may hold. */
const adminLogLines: string[] = [];
const knownSecrets: string[] = [];
function adminLogger(): Logger {
  return createLogger({ level: 'info', destination: { write: (line: string) => void adminLogLines.push(line) } });
}

/** This run's secrets: the emulators' client secret and ACS access key, and the seal keys. */
function secretsOf(local: Pick<LocalAzure, 'settings' | 'acs'>, config?: Config): string[] {
  const ring = config === undefined ? present(local.settings['MAPPING_SEAL_KEYS'], 'MAPPING_SEAL_KEYS') : '';
  const keys =
    (config === undefined ? undefined : graphStoreOf(config).sealKeys.map((key) => key.secret.export().toString('base64'))) ??
    ring.split(',').map((entry) => present(entry.split(':')[1], `a key after the id in '${entry.split(':')[0]}:…'`));
  return [present(local.settings['ENTRA_CLIENT_SECRET'], 'ENTRA_CLIENT_SECRET'), local.acs.accessKey, ...keys];
}

afterAll(() => {
  expect(findLeaks({ logLines: adminLogLines, responses: [], secrets: knownSecrets })).toEqual([]);
});

/** The test service's settings with some changed: another process of the same deployment (another seal ring, SDK retries). */
function configOf(service: TestService, overrides: Readonly<Record<string, string>>): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    UPSTREAM_MAX_RETRIES: '0',
    UPSTREAM_TIMEOUT_MS: '5000',
    ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS: '0',
    RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '0',
    RATE_LIMIT_PER_USER_PER_MINUTE: '0',
    ...service.local.settings,
    ...overrides,
  });
}

/** Mappings as the original hero sample left them: the ACS id alone, no seal, written by its own app registration. */
function putLegacyMapping(service: TestService, oid: string, acsUserId: string = service.local.acs.seedIdentity()): string {
  service.local.graph.putExtension(oid, ORIGINAL_SAMPLE_APP_ID, { extensionName: MAPPING_EXTENSION_NAME, acsUserIdentity: acsUserId });
  return acsUserId;
}

function seedLegacyUsers(service: TestService, count: number): Map<string, string> {
  const seeded = new Map<string, string>();
  for (let index = 0; index < count; index += 1) {
    const oid = randomUUID();
    seeded.set(oid, putLegacyMapping(service, oid));
  }
  return seeded;
}

function snapshot(service: TestService, oids: Iterable<string>): Record<string, unknown> {
  return Object.fromEntries([...oids].map((oid) => [oid, mappingPropertiesOf(service.local, oid)]));
}

/** How the service's own sealer judges a user's mapping now. */
function verdictOf(service: { readonly local: Pick<LocalAzure, 'graph'>; readonly config: Config }, oid: string): MappingVerdict {
  const properties = mappingPropertiesOf(service.local, oid) ?? {};
  return mappingSealerOf(service.config).verify({ tid: LOCAL_TENANT_ID, oid }, properties['acsUserIdentity'], properties[SEAL_PROPERTY]);
}

/** GET /api/user as a demo user (a fresh token each time), expecting `status`. */
async function getUserAs(
  http: ReturnType<typeof supertest>,
  service: TestService,
  user: keyof typeof DEMO_USERS,
  status: number,
): Promise<supertest.Response> {
  return http
    .get('/api/user')
    .set({ Authorization: `Bearer ${await service.tokenFor(user)}` })
    .expect(status);
}

/** A demo user's request with a fresh token: `GET /api/token`, `POST /api/user`, … */
async function asUser(
  service: TestService,
  user: keyof typeof DEMO_USERS,
  request: (http: TestService['http']) => supertest.Test,
): Promise<supertest.Response> {
  return request(service.http).set({ Authorization: `Bearer ${await service.tokenFor(user)}` });
}

/** A mapping sealed under the test service's current key by this command (origin adopted), straight into the emulator. */
function putAdoptedMapping(service: TestService, oid: string, acsUserId: string): void {
  const seal = mappingSealerOf(service.config).seal({ tid: LOCAL_TENANT_ID, oid }, acsUserId, 'adopted');
  service.local.graph.putExtension(oid, service.config.entra.clientId, {
    extensionName: MAPPING_EXTENSION_NAME,
    acsUserIdentity: acsUserId,
    [SEAL_PROPERTY]: seal,
  });
}

/**
 * A maintenance on the real Graph directory of the emulator, with a minted app-only token, the test
 * service's sealer and `wrap` around the directory (to time a change against the command's requests).
 */
function maintenanceOn(
  service: TestService,
  overrides: Partial<Pick<MappingMaintenanceOptions, 'throttleRetries' | 'sleep'>> = {},
  wrap: (directory: MappingDirectory) => MappingDirectory = (directory) => directory,
): { maintenance: MappingMaintenance; close: () => Promise<void> } {
  const graph = createGraphClient({ baseUrl: service.local.graph.url, ca: service.local.caCertPem, maxRetries: 0 });
  const token = mintGraphToken(service.local.entra.keys, { oid: randomUUID(), roles: ['User.ReadWrite.All'] });
  const directory = createGraphMappingDirectory(graph, {
    extensionName: MAPPING_EXTENSION_NAME,
    baseUrl: service.local.graph.url,
    appToken: () => token,
  });
  const maintenance = createMappingMaintenance({
    directory: wrap(directory),
    sealer: mappingSealerOf(service.config),
    tenantId: LOCAL_TENANT_ID,
    extensionName: MAPPING_EXTENSION_NAME,
    keyIds: graphStoreOf(service.config).sealKeys.map((key) => key.id),
    ...overrides,
  });
  return { maintenance, close: () => graph.close() };
}

/** The adoption candidates a dry run (`seal --adopt`) lists: the plan an operator reviews. */
function candidatesOf(dryRun: SealReport): AdoptionPair[] {
  return dryRun.users
    .filter((line) => line.result === 'would_seal')
    .map(({ oid, acsUserId }) => ({ oid, acsUserId: present(acsUserId, `the identity of ${oid}`) }));
}

/**
 * Adoption as the operator runs it: `seal --adopt` (dry run), its candidates as the reviewed plan,
 * then `seal --adopt --apply --plan`. `progress` watches the second run only.
 */
async function adoptAsPlanned(
  maintenance: MappingMaintenance,
  options: { afterGoLive?: boolean; progress?: MaintenanceProgress } = {},
): Promise<SealReport> {
  const { afterGoLive = false, progress } = options;
  const plan = candidatesOf(await maintenance.seal({ apply: false, adopt: { afterGoLive } }));
  return maintenance.seal({ apply: true, adopt: { afterGoLive, plan }, ...(progress === undefined ? {} : { progress }) });
}

function sealsIn(local: Pick<LocalAzure, 'graph'>, oids: Iterable<string>): string[] {
  return [...oids]
    .map((oid) => mappingPropertiesOf(local, oid)?.[SEAL_PROPERTY])
    .filter((seal): seal is string => typeof seal === 'string');
}

describe('mapping maintenance (composeMappingAdmin on the emulators)', () => {
  const service = useTestService();
  let admin: MappingAdminRuntime;

  beforeAll(() => {
    knownSecrets.push(...secretsOf(service.local));
    admin = composeMappingAdmin(service.config, { logger: adminLogger(), trustedCaPem: service.local.caCertPem });
  });
  afterAll(async () => {
    await admin.close();
  });
  beforeEach(async () => {
    await resetTestService(service);
  });

  describe('legacy (unsealed) mappings of 250 users and alice', () => {
    // Over 500 Graph requests (a read and a write per user, and the scans), and any throttling waited out
    // (Retry-After is up to 10 s): more than the default 30 s allows when other suites share the CPU.
    it('audits them over three pages, a dry run writes nothing, --apply seals them all, the service trusts them, and a second run writes nothing', async () => {
      const seeded = seedLegacyUsers(service, 250);
      const aliceIdentity = putLegacyMapping(service, ALICE);
      const everyone = [...seeded.keys(), ALICE];
      await getUserAs(service.http, service, 'alice', 409);
      const tokenRequests = service.local.entra.counters.get('token');

      const audit = await admin.maintenance.audit();
      expect(audit).toMatchObject({
        usersScanned: 253,
        usersWithMapping: 251,
        sealed: { currentKey: { keyId: 'local', count: 0 }, olderKeys: {}, byOrigin: { service: 0, adopted: 0 } },
        unsealed: 251,
        adoptionOpen: true,
        broken: { malformed_seal: 0, unknown_key: 0, seal_mismatch: 0, malformed_identity: 0 },
        duplicates: [],
      });
      expect(service.local.graph.counters.get('users.list')).toBe(3);

      const before = snapshot(service, everyone);
      const dryRun = await admin.maintenance.seal({ apply: false, adopt: {} });
      expect(dryRun.counts).toMatchObject({ would_seal: 251, sealed: 0, skipped_duplicate: 0, skipped_broken: 0 });
      expect(dryRun.users.find((line) => line.oid === ALICE)).toEqual({
        oid: ALICE,
        acsUserId: aliceIdentity,
        result: 'would_seal',
        origin: 'adopted',
      });
      expect(snapshot(service, everyone)).toEqual(before);
      expect(service.local.graph.counters.get('extensions.update')).toBe(0);

      const reads = service.local.graph.counters.get('user.get');
      const throttledBefore = service.local.graph.counters.get('throttled');
      const throttled: number[] = [];
      const plan = candidatesOf(dryRun);
      const applied = await admin.maintenance.seal({
        apply: true,
        adopt: { plan },
        progress: { throttled: (waitMs) => throttled.push(waitMs) },
      });
      expect(applied.counts).toMatchObject({ sealed: 251, failed: 0, not_attempted: 0 });
      // Each write was preceded by a read of that one user's mapping (it may have changed since the scan):
      // 502 requests, more than Graph's 455 per 10 s, so some are throttled (429) and asked again: by the
      // Graph client itself when Retry-After is short, else by the command, which reports the wait. A
      // throttled read is sent again; a throttled write is read again first (N6), so it costs two.
      const requests = service.local.graph.counters.get('user.get') - reads + service.local.graph.counters.get('extensions.update');
      const throttledAnswers = service.local.graph.counters.get('throttled') - throttledBefore;
      // Nothing is sent twice but after a 429 (of these requests, or of the scan's pages, which are not counted here).
      expect(throttled.length).toBeLessThanOrEqual(throttledAnswers);
      expect(requests).toBeGreaterThanOrEqual(2 * 251);
      expect(requests - 2 * 251).toBeLessThanOrEqual(2 * throttledAnswers);
      const written = service.local.graph.counters.get('extensions.update');
      for (const [oid, acsUserId] of [...seeded, [ALICE, aliceIdentity] as const]) {
        expect(verdictOf(service, oid)).toEqual({ trusted: true, acsUserId, keyId: 'local', currentKey: true, origin: 'adopted' });
      }
      // One app-only token (msal's cache) for three scans and 251 writes.
      expect(service.local.entra.counters.get('token') - tokenRequests).toBe(1);

      const response = await getUserAs(service.http, service, 'alice', 200);
      expect(userBody(response).acsUserIdentity).toBe(aliceIdentity);

      const again = await admin.maintenance.seal({ apply: true });
      expect(again.alreadyCurrent).toBe(251);
      expect(again.users).toEqual([]);
      expect(service.local.graph.counters.get('extensions.update')).toBe(written);
      expect((await admin.maintenance.audit()).sealed).toMatchObject({
        currentKey: { count: 251 },
        byOrigin: { service: 0, adopted: 251 },
      });
    }, 90_000);
  });

  describe('duplicates: two users naming one ACS identity', () => {
    it('reports a forged copy of an unsealed mapping and seals neither holder, while sealing the rest', async () => {
      const shared = putLegacyMapping(service, ALICE);
      await withGraphExplorer(service.local, async (explorer) => {
        await explorer.createMapping(BOB, { acsUserIdentity: shared });
      });
      const carols = putLegacyMapping(service, CAROL);

      const audit = await admin.maintenance.audit();
      expect(audit.duplicates).toEqual([
        {
          acsUserId: shared,
          resolution: 'no_sealed_holder',
          holders: expect.arrayContaining([
            { oid: ALICE, acsUserId: shared, status: 'no_seal', sealed: false },
            { oid: BOB, acsUserId: shared, status: 'no_seal', sealed: false },
          ]),
        },
      ]);
      expect(audit.duplicates[0]?.holders).toHaveLength(2);

      const before = snapshot(service, [ALICE, BOB]);
      const applied = await adoptAsPlanned(admin.maintenance);
      expect(applied.users).toEqual(
        expect.arrayContaining([
          { oid: ALICE, acsUserId: shared, result: 'skipped_duplicate', detail: 'no_seal', resolution: 'no_sealed_holder' },
          { oid: BOB, acsUserId: shared, result: 'skipped_duplicate', detail: 'no_seal', resolution: 'no_sealed_holder' },
          { oid: CAROL, acsUserId: carols, result: 'sealed', origin: 'adopted' },
        ]),
      );
      expect(applied.counts).toMatchObject({ sealed: 1, skipped_duplicate: 2 });
      expect(snapshot(service, [ALICE, BOB])).toEqual(before);
      expect(verdictOf(service, CAROL)).toMatchObject({ trusted: true });

      const bob = await getUserAs(service.http, service, 'bob', 409);
      expect(errorBody(bob).code).toBe('mapping_untrusted');
      await getUserAs(service.http, service, 'alice', 409);
    });

    it('takes the holder whose seal verifies as the owner, leaves it as it is and reports the copy, in any letter case, as a forgery', async () => {
      const alices = service.local.acs.seedIdentity();
      putSealedMapping(service, ALICE, alices);
      const forged = `8:acs:${alices.slice('8:acs:'.length).toUpperCase()}`;
      expect(forged).not.toBe(alices);
      await withGraphExplorer(service.local, async (explorer) => {
        await explorer.createMapping(BOB, { acsUserIdentity: forged });
      });
      const before = snapshot(service, [ALICE, BOB]);

      const audit = await admin.maintenance.audit();
      expect(audit.duplicates).toEqual([
        {
          acsUserId: expect.any(String),
          resolution: 'sealed_owner',
          owner: ALICE,
          holders: expect.arrayContaining([
            { oid: ALICE, acsUserId: alices, status: 'current_key', sealed: true, origin: 'service' },
            { oid: BOB, acsUserId: forged, status: 'no_seal', sealed: false },
          ]),
        },
      ]);
      const printed = formatAudit(audit);
      expect(printed).toMatch(/^ {2}duplicates \(ACS ids named by 2\+ users\) +1 {3}held by 2 users$/m);
      expect(printed).toContain(`owner ${ALICE} (its seal verifies): maintained as usual; the others are forgeries, never sealed\n`);
      expect(printed).toContain(`\n    ${ALICE}  sealed (current key, service)`);
      expect(printed).toContain(`\n    ${BOB}  unsealed (no_seal)`);
      expect(printed).toContain(`  as ${forged}`);
      const applied = await admin.maintenance.seal({ apply: true });
      expect(applied.users).toEqual([{ oid: BOB, acsUserId: forged, result: 'skipped_forgery', detail: 'no_seal', owner: ALICE }]);
      expect(applied).toMatchObject({ alreadyCurrent: 1, counts: { sealed: 0, resealed: 0, skipped_duplicate: 0, skipped_forgery: 1 } });
      expect(service.local.graph.counters.get('extensions.update')).toBe(0);
      expect(snapshot(service, [ALICE, BOB])).toEqual(before);

      expect(errorBody(await getUserAs(service.http, service, 'bob', 409)).code).toBe('mapping_untrusted');
      expect(userBody(await getUserAs(service.http, service, 'alice', 200)).acsUserIdentity).toBe(alices);
    });
  });

  describe('broken mappings', () => {
    it('reports each kind and seals none of them', async () => {
      const carols = service.local.acs.seedIdentity();
      putSealedMapping(service, CAROL, carols);
      const carolsSeal = mappingPropertiesOf(service.local, CAROL)?.[SEAL_PROPERTY] as string;
      await withGraphExplorer(service.local, async (explorer) => {
        // Bob copies carol's seal onto his own identity: a seal made for another user and identity.
        await explorer.createMapping(BOB, { acsUserIdentity: service.local.acs.seedIdentity(), [SEAL_PROPERTY]: carolsSeal });
      });
      const unknownKey = randomUUID();
      service.local.graph.putExtension(unknownKey, ORIGINAL_SAMPLE_APP_ID, {
        extensionName: MAPPING_EXTENSION_NAME,
        acsUserIdentity: service.local.acs.seedIdentity(),
        [SEAL_PROPERTY]: carolsSeal.replace(/^v1\.([sa])\.local\./, 'v1.$1.retired.'),
      });
      const malformedSeal = randomUUID();
      service.local.graph.putExtension(malformedSeal, ORIGINAL_SAMPLE_APP_ID, {
        extensionName: MAPPING_EXTENSION_NAME,
        acsUserIdentity: service.local.acs.seedIdentity(),
        [SEAL_PROPERTY]: 'sealed-by-hand',
      });
      const malformedIdentity = randomUUID();
      service.local.graph.putExtension(malformedIdentity, ORIGINAL_SAMPLE_APP_ID, {
        extensionName: MAPPING_EXTENSION_NAME,
        acsUserIdentity: 'not an ACS id',
      });
      const broken = [BOB, unknownKey, malformedSeal, malformedIdentity];
      const before = snapshot(service, broken);

      const audit = await admin.maintenance.audit();
      expect(audit).toMatchObject({
        sealed: { currentKey: { count: 1 } },
        unsealed: 0,
        broken: { malformed_seal: 1, unknown_key: 1, seal_mismatch: 1, malformed_identity: 1 },
        duplicates: [],
      });
      const applied = await admin.maintenance.seal({ apply: true });
      expect(applied.users).toHaveLength(4);
      expect(applied.users).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ oid: BOB, result: 'skipped_broken', detail: 'seal_mismatch' }),
          expect.objectContaining({ oid: unknownKey, result: 'skipped_broken', detail: 'unknown_key' }),
          expect.objectContaining({ oid: malformedSeal, result: 'skipped_broken', detail: 'malformed_seal' }),
          { oid: malformedIdentity, acsUserId: undefined, result: 'skipped_broken', detail: 'malformed_identity' },
        ]),
      );
      expect(service.local.graph.counters.get('extensions.update')).toBe(0);
      expect(snapshot(service, broken)).toEqual(before);
      expect(errorBody(await getUserAs(service.http, service, 'bob', 409)).code).toBe('mapping_untrusted');
    });
  });

  describe('Graph throttling and failures', () => {
    it('waits out a 429 in the middle of the scan (Retry-After) and reads every user exactly once', async () => {
      const seeded = seedLegacyUsers(service, 250);
      const waits: number[] = [];
      const progress: MaintenanceProgress = {
        scanned: (users) => {
          if (users === 100) service.local.graph.faults.inject({ route: 'users.list', status: 429, retryAfterSeconds: 0.2 });
        },
        throttled: (waitMs) => waits.push(waitMs),
      };
      const audit = await admin.maintenance.audit(progress);
      expect(audit).toMatchObject({ usersScanned: 253, unsealed: seeded.size });
      // The test service's Graph client does not retry, so the maintenance waited (Retry-After, rounded up to 1 s) and asked again.
      expect(waits).toEqual([1000]);
      expect(service.local.graph.counters.get('users.list')).toBe(4);
    });

    it("lets the Graph client's own retries absorb a short 429 when UPSTREAM_MAX_RETRIES allows", async () => {
      seedLegacyUsers(service, 150);
      const retrying = composeMappingAdmin(configOf(service, { UPSTREAM_MAX_RETRIES: '2' }), {
        logger: adminLogger(),
        trustedCaPem: service.local.caCertPem,
      });
      try {
        service.local.graph.faults.inject({ route: 'users.list', status: 429, retryAfterSeconds: 0.05 });
        const waits: number[] = [];
        const audit = await retrying.maintenance.audit({ throttled: (waitMs) => waits.push(waitMs) });
        expect(audit.unsealed).toBe(150);
        expect(waits).toEqual([]);
        expect(service.local.graph.counters.get('users.list')).toBe(3);
      } finally {
        await retrying.close();
      }
    });

    it('gives up on throttling that does not end, with the throttling error, after its retries', async () => {
      seedLegacyUsers(service, 5);
      const slept: number[] = [];
      const { maintenance, close } = maintenanceOn(service, {
        throttleRetries: 2,
        sleep: (ms) => {
          slept.push(ms);
          return Promise.resolve();
        },
      });
      try {
        service.local.graph.faults.inject({ route: 'users.list', status: 429, retryAfterSeconds: 2.5, times: Infinity });
        await expect(maintenance.audit()).rejects.toBeInstanceOf(ThrottledError);
        expect(slept).toEqual([3000, 3000]);
        expect(service.local.graph.counters.get('users.list')).toBe(3);
      } finally {
        await close();
      }
    });

    it('reads the mapping again before every attempt of a throttled write (N6): a change made while waiting out Retry-After is not overwritten', async () => {
      const alicesOld = putLegacyMapping(service, ALICE);
      const alicesNew = service.local.acs.seedIdentity();
      const slept: number[] = [];
      const { maintenance, close } = maintenanceOn(service, {
        // While the command waits out the 429 on its PATCH, alice gets a new sealed identity (what POST /api/user writes).
        sleep: (ms) => {
          slept.push(ms);
          putSealedMapping(service, ALICE, alicesNew);
          return Promise.resolve();
        },
      });
      try {
        const plan = candidatesOf(await maintenance.seal({ apply: false, adopt: {} }));
        service.local.graph.faults.inject({ route: 'extensions.update', status: 429, retryAfterSeconds: 1 });
        const applied = await maintenance.seal({ apply: true, adopt: { plan } });
        expect(slept).toEqual([1000]);
        expect(applied.users).toEqual([
          { oid: ALICE, acsUserId: alicesOld, result: 'changed', now: { acsUserId: alicesNew, status: 'current_key' } },
        ]);
        expect(service.local.graph.counters.get('user.get')).toBe(2);
        expect(service.local.graph.counters.get('extensions.update')).toBe(1);
      } finally {
        await close();
      }
      expect(verdictOf(service, ALICE)).toMatchObject({ trusted: true, acsUserId: alicesNew, origin: 'service' });
    });

    it('stops writing after 10 failures in a row (a missing permission fails them all) and lists the rest as not attempted', async () => {
      seedLegacyUsers(service, 12);
      service.local.graph.faults.inject({ route: 'extensions.update', status: 403, code: 'Authorization_RequestDenied', times: Infinity });
      const applied = await adoptAsPlanned(admin.maintenance);
      expect(applied.counts).toMatchObject({ sealed: 0, failed: 10, not_attempted: 2 });
      expect(applied.stoppedBecause).toMatch(
        /^10 writes in a row failed \(last: Microsoft Graph: refused the request \(403 Authorization_RequestDenied\)/,
      );
      expect(service.local.graph.counters.get('extensions.update')).toBe(10);
    });

    it('counts a mapping deleted between the scan and the write as gone, not failed', async () => {
      seedLegacyUsers(service, 2);
      service.local.graph.faults.inject({
        route: 'extensions.update',
        status: 404,
        code: 'ResourceNotFound',
        message: 'Extension with given id not found.',
      });
      const applied = await adoptAsPlanned(admin.maintenance);
      expect(applied.counts).toMatchObject({ gone: 1, sealed: 1, failed: 0 });
    });
  });

  describe('adoption of unsealed mappings: only the pairs of a reviewed plan', () => {
    it('adopts the plan of a dry run (origin adopted), resumes an interrupted adoption with the same plan, and lists the pairs done since as stale', async () => {
      const seeded = seedLegacyUsers(service, 4);
      expect(await admin.maintenance.audit()).toMatchObject({
        adoptionOpen: true,
        unsealed: 4,
        sealed: { byOrigin: { service: 0, adopted: 0 } },
      });
      const plan = candidatesOf(await admin.maintenance.seal({ apply: false, adopt: {} }));
      expect(plan).toEqual(expect.arrayContaining([...seeded].map(([oid, acsUserId]) => ({ oid, acsUserId }))));
      expect(plan).toHaveLength(4);
      service.local.graph.faults.inject({ route: 'extensions.update', status: 500 });

      const interrupted = await admin.maintenance.seal({ apply: true, adopt: { plan } });
      expect(interrupted.counts).toMatchObject({ sealed: 3, failed: 1, not_in_plan: 0, skipped_unsealed: 0 });
      const failed = present(
        interrupted.users.find((line) => line.result === 'failed'),
        'a failed line',
      );

      const resumed = await admin.maintenance.seal({ apply: true, adopt: { plan } });
      expect(resumed.users).toEqual([{ oid: failed.oid, acsUserId: seeded.get(failed.oid), result: 'sealed', origin: 'adopted' }]);
      expect(resumed.stalePlan).toHaveLength(3);
      expect(resumed.stalePlan).toContainEqual(expect.objectContaining({ now: { acsUserId: expect.any(String), status: 'current_key' } }));
      expect(formatSealSummary(resumed)).toMatch(/^ {2}plan entries no longer unsealed \(not adopted\) +3$/m);
      for (const [oid, acsUserId] of seeded) expect(verdictOf(service, oid)).toMatchObject({ trusted: true, acsUserId, origin: 'adopted' });
    });

    it('adopts exactly the reviewed pairs (N2): a claim written after the dry run is not in the plan, nor a planned mapping pointed elsewhere since', async () => {
      const alices = putLegacyMapping(service, ALICE);
      const carols = putLegacyMapping(service, CAROL);
      const plan = candidatesOf(await admin.maintenance.seal({ apply: false, adopt: {} }));
      expect(plan).toEqual(
        expect.arrayContaining([
          { oid: ALICE, acsUserId: alices },
          { oid: CAROL, acsUserId: carols },
        ]),
      );
      expect(plan).toHaveLength(2);

      // After the review: bob claims an identity nobody maps (a departed user's), carol's mapping names another.
      const unmapped = service.local.acs.seedIdentity();
      const carolsOther = service.local.acs.seedIdentity();
      await withGraphExplorer(service.local, async (explorer) => {
        await explorer.createMapping(BOB, { acsUserIdentity: unmapped });
        await explorer.patchMapping(CAROL, { acsUserIdentity: carolsOther });
      });
      const updates = service.local.graph.counters.get('extensions.update');
      const applied = await admin.maintenance.seal({ apply: true, adopt: { plan } });
      expect(applied.users).toHaveLength(3);
      expect(applied.users).toEqual(
        expect.arrayContaining([
          { oid: ALICE, acsUserId: alices, result: 'sealed', origin: 'adopted' },
          { oid: BOB, acsUserId: unmapped, result: 'not_in_plan', detail: 'no_seal' },
          { oid: CAROL, acsUserId: carolsOther, result: 'not_in_plan', detail: 'no_seal', planned: carols },
        ]),
      );
      const lines = applied.users.map(formatSealLine).join('');
      expect(lines).toContain(`not in plan   ${BOB}  ${unmapped}  unsealed: not adopted, the plan does not list it\n`);
      expect(lines).toContain(`not in plan   ${CAROL}  ${carolsOther}  unsealed: not adopted, the plan lists this user with ${carols}\n`);
      expect(formatSealSummary(applied)).toMatch(/^ {2}not adopted: unsealed, not in the plan +2$/m);
      expect(service.local.graph.counters.get('extensions.update') - updates).toBe(1);
      const refused = await asUser(service, 'bob', (http) => http.get('/api/token'));
      expect({ status: refused.status, code: errorBody(refused).code }).toEqual({ status: 409, code: 'mapping_untrusted' });
    });

    it('once the service made an identity, adopts a plan only with --after-go-live (the claim on an identity it left unmapped stays 409 without it)', async () => {
      // Cut-over: alice's legacy mapping, and bob's copy of her id (every chat participant sees it).
      const alicesOld = putLegacyMapping(service, ALICE);
      await withGraphExplorer(service.local, (explorer) => explorer.createMapping(BOB, { acsUserIdentity: alicesOld }));
      expect((await adoptAsPlanned(admin.maintenance)).counts).toMatchObject({ sealed: 0, skipped_duplicate: 2 });

      // Alice is refused and asks for a new identity, as documented: the service seals the new one and
      // leaves her old one alive and unmapped. Bob's copy is no longer a duplicate.
      expect(errorBody(await asUser(service, 'alice', (http) => http.get('/api/user'))).code).toBe('mapping_untrusted');
      const fresh = await asUser(service, 'alice', (http) => http.post('/api/user'));
      expect(fresh.status).toBe(201);
      expect(userBody(fresh).acsUserIdentity).not.toBe(alicesOld);
      expect(service.local.acs.isAlive(alicesOld)).toBe(true);

      const audit = await admin.maintenance.audit();
      expect(audit).toMatchObject({ adoptionOpen: false, unsealed: 1, duplicates: [], sealed: { byOrigin: { service: 1, adopted: 0 } } });
      expect(formatAudit(audit)).toContain('\n1 mapping carries a service seal (the service is live): an unsealed mapping may be');

      const before = snapshot(service, [BOB]);
      const plain = await admin.maintenance.seal({ apply: true });
      expect(plain.users).toEqual([{ oid: BOB, acsUserId: alicesOld, result: 'skipped_unsealed', detail: 'no_seal' }]);
      const dryRun = await admin.maintenance.seal({ apply: false, adopt: {} });
      expect(dryRun.users).toEqual([{ oid: BOB, acsUserId: alicesOld, result: 'skipped_live', detail: 'no_seal' }]);
      expect(candidatesOf(dryRun)).toEqual([]);
      expect(formatSealLine(present(dryRun.users[0], 'a line'))).toBe(
        `not adopted   ${BOB}  ${alicesOld}  unsealed: not adopted, the service is live (a user may have written it; see --after-go-live); they get a new identity with POST /api/user\n`,
      );
      // A plan that lists him (reviewed with the override) is still not adopted without the override.
      const plan = candidatesOf(await admin.maintenance.seal({ apply: false, adopt: { afterGoLive: true } }));
      expect(plan).toEqual([{ oid: BOB, acsUserId: alicesOld }]);
      expect((await admin.maintenance.seal({ apply: true, adopt: { plan } })).users).toEqual([dryRun.users[0]]);
      expect(service.local.graph.counters.get('extensions.update')).toBe(0);
      expect(snapshot(service, [BOB])).toEqual(before);
      const refused = await asUser(service, 'bob', (http) => http.get('/api/token'));
      expect({ status: refused.status, code: errorBody(refused).code }).toEqual({ status: 409, code: 'mapping_untrusted' });

      // The override does what its usage text warns about: bob gets alice's old identity.
      const forced = await admin.maintenance.seal({ apply: true, adopt: { plan, afterGoLive: true } });
      expect(forced.users).toEqual([{ oid: BOB, acsUserId: alicesOld, result: 'sealed', origin: 'adopted' }]);
      expect(formatSealSummary(forced)).toContain(
        "1 mapping carries a service seal (the service is live), but --after-go-live overrides it: the plan's pairs are adopted anyway.",
      );
      const stolen = await asUser(service, 'bob', (http) => http.get('/api/token'));
      expect({ status: stolen.status, user: tokenBody(stolen).user?.communicationUserId }).toEqual({ status: 201, user: alicesOld });
    });
  });

  describe('mappings that change between the scan and the write', () => {
    it('reads each mapping again right before writing it, and leaves one that changed since the scan as it is now', async () => {
      const bobs = putLegacyMapping(service, BOB);
      const carols = putLegacyMapping(service, CAROL);
      putLegacyMapping(service, ALICE);
      const alicesNew = service.local.acs.seedIdentity();
      const progress: MaintenanceProgress = {
        // After the last page, before any write: alice got a new sealed identity (what POST /api/user
        // leaves), and another run of this command sealed carol's.
        scanned: () => {
          putSealedMapping(service, ALICE, alicesNew);
          putAdoptedMapping(service, CAROL, carols);
        },
      };
      const applied = await adoptAsPlanned(admin.maintenance, { progress });
      expect(applied.users).toEqual(
        expect.arrayContaining([
          { oid: ALICE, acsUserId: expect.any(String), result: 'changed', now: { acsUserId: alicesNew, status: 'current_key' } },
          { oid: CAROL, acsUserId: carols, result: 'changed', now: { acsUserId: carols, status: 'current_key' } },
          { oid: BOB, acsUserId: bobs, result: 'sealed', origin: 'adopted' },
        ]),
      );
      expect(applied.counts).toMatchObject({ sealed: 1, changed: 2, failed: 0 });
      expect(service.local.graph.counters.get('user.get')).toBe(3);
      expect(service.local.graph.counters.get('extensions.update')).toBe(1);
      expect(verdictOf(service, ALICE)).toMatchObject({ trusted: true, acsUserId: alicesNew, origin: 'service' });
      const alicesLine = present(
        applied.users.find((line) => line.oid === ALICE),
        "alice's line",
      );
      expect(formatSealLine(alicesLine)).toBe(
        `changed       ${ALICE}  ${alicesLine.acsUserId}  the mapping changed since the scan; not written (now sealed (current key) naming ${alicesNew})\n`,
      );
      expect(formatSealSummary(applied)).toMatch(/^ {2}changed since the scan \(not written\) +2$/m);
    });

    it("does not overwrite the identity a POST /api/user made after the scan while the command was busy writing another user's seal", async () => {
      // Written before alice (the emulator lists users by id), so its write is under way when the POST lands.
      const first = '00000000-0000-4000-8000-000000000001';
      putLegacyMapping(service, first);
      const alicesOld = putLegacyMapping(service, ALICE);
      let posted: Promise<supertest.Response> | undefined;
      const holdWritesUntilPosted = (directory: MappingDirectory): MappingDirectory => ({
        ...directory,
        reseal: async (oid, mapping) => {
          await posted;
          return directory.reseal(oid, mapping);
        },
      });
      const { maintenance, close } = maintenanceOn(service, {}, holdWritesUntilPosted);
      try {
        const applied = await adoptAsPlanned(maintenance, {
          progress: { scanned: () => void (posted ??= asUser(service, 'alice', (http) => http.post('/api/user'))) },
        });
        const fresh = present(await posted, 'the POST /api/user made while scanning');
        expect(fresh.status).toBe(201);
        expect(applied.users).toEqual([
          { oid: first, acsUserId: expect.any(String), result: 'sealed', origin: 'adopted' },
          {
            oid: ALICE,
            acsUserId: alicesOld,
            result: 'changed',
            now: { acsUserId: userBody(fresh).acsUserIdentity, status: 'current_key' },
          },
        ]);
      } finally {
        await close();
      }
      const alicesNew = mappedIdentityOf(service.local, ALICE);
      expect(verdictOf(service, ALICE)).toMatchObject({ trusted: true, acsUserId: alicesNew, origin: 'service' });
      // Her old identity was untrusted, so POST /api/user left it alive on purpose; the new one is mapped, not orphaned.
      expect(orphanedIdentities(service.local, [...DEMO_OIDS, first])).toEqual([alicesOld]);
      expect(userBody(await getUserAs(service.http, service, 'alice', 200)).acsUserIdentity).toBe(alicesNew);
    });
  });

  describe('paging links', () => {
    it.each([
      ['another origin', () => 'https://graph.evil.example/v1.0/users?$skiptoken=X%2701%27'],
      ['plain http on the same host', () => `${service.local.graph.url.replace('https:', 'http:')}/v1.0/users?$skiptoken=X%2701%27`],
      ['another path on the Graph host', () => `${service.local.graph.url}/v1.0/me?$skiptoken=X%2701%27`],
      ['a user-info prefix', () => `https://evil.example@${service.local.graph.url.slice('https://'.length)}/v1.0/users?$top=1`],
      ['a tab in the host', () => `${service.local.graph.url.replace('127.0.0.1', '127.0.\t0.1')}/v1.0/users?$top=1`],
    ])('refuses to follow an @odata.nextLink to %s', async (_case, link) => {
      service.local.graph.faults.inject({
        route: 'users.list',
        status: 200,
        body: { value: [{ id: ALICE, extensions: [] }], '@odata.nextLink': link() },
      });
      await expect(admin.maintenance.audit()).rejects.toThrow(/refusing to follow it/);
      // Nothing else reached Graph: the link was refused before any request (and its token) went anywhere.
      expect(service.local.graph.counters.total()).toBe(1);
    });
  });
});

describe('key rotation (MAPPING_SEAL_KEYS a → b,a → b)', () => {
  const keyA = newKey();
  const keyB = newKey();
  const service = useTestService({ env: { MAPPING_SEAL_KEYS: `a:${keyA}` } });
  let configWithKeyB: Config;
  let adminWithKeyA: MappingAdminRuntime;
  let adminWithKeysBA: MappingAdminRuntime;
  let serviceWithKeysBA: ServiceRuntime;
  let serviceWithKeyB: ServiceRuntime;

  beforeAll(() => {
    knownSecrets.push(...secretsOf(service.local, service.config), keyB);
    const logger = adminLogger();
    const ca = { trustedCaPem: service.local.caCertPem };
    const configWithKeysBA = configOf(service, { MAPPING_SEAL_KEYS: `b:${keyB},a:${keyA}` });
    configWithKeyB = configOf(service, { MAPPING_SEAL_KEYS: `b:${keyB}` });
    adminWithKeyA = composeMappingAdmin(service.config, { logger, ...ca });
    adminWithKeysBA = composeMappingAdmin(configWithKeysBA, { logger, ...ca });
    serviceWithKeysBA = composeService(configWithKeysBA, { logger, ...ca });
    serviceWithKeyB = composeService(configWithKeyB, { logger, ...ca });
  });
  afterAll(async () => {
    await Promise.all([adminWithKeyA.close(), adminWithKeysBA.close(), serviceWithKeysBA.close(), serviceWithKeyB.close()]);
  });
  beforeEach(async () => {
    await resetTestService(service);
  });

  it('audits seals under the older key, the service still trusts them, seal re-seals under the new key, and the new key alone then trusts them', async () => {
    const seeded = seedLegacyUsers(service, 5);
    const alices = putLegacyMapping(service, ALICE);
    expect((await adoptAsPlanned(adminWithKeyA.maintenance)).counts.sealed).toBe(6);
    expect(verdictOf(service, ALICE)).toMatchObject({ trusted: true, keyId: 'a' });

    expect(await adminWithKeysBA.maintenance.audit()).toMatchObject({
      sealed: { currentKey: { keyId: 'b', count: 0 }, olderKeys: { a: 6 } },
      unsealed: 0,
    });
    expect(userBody(await getUserAs(supertest(serviceWithKeysBA.app), service, 'alice', 200)).acsUserIdentity).toBe(alices);
    await getUserAs(supertest(serviceWithKeyB.app), service, 'alice', 409);

    const dryRun = await adminWithKeysBA.maintenance.seal({ apply: false });
    expect(dryRun.counts.would_reseal).toBe(6);
    const resealed = await adminWithKeysBA.maintenance.seal({ apply: true });
    expect(resealed.counts).toMatchObject({ resealed: 6, sealed: 0, failed: 0 });
    expect(resealed.users).toContainEqual({ oid: ALICE, acsUserId: alices, result: 'resealed', origin: 'adopted' });
    expect(await adminWithKeysBA.maintenance.audit()).toMatchObject({
      sealed: { currentKey: { keyId: 'b', count: 6 }, olderKeys: { a: 0 } },
    });
    // A re-seal keeps the origin: what this command adopted stays adopted.
    for (const oid of seeded.keys())
      expect(verdictOf({ local: service.local, config: configWithKeyB }, oid)).toMatchObject({
        trusted: true,
        keyId: 'b',
        origin: 'adopted',
      });

    expect(userBody(await getUserAs(supertest(serviceWithKeyB.app), service, 'alice', 200)).acsUserIdentity).toBe(alices);
    expect(errorBody(await getUserAs(service.http, service, 'alice', 409)).code).toBe('mapping_untrusted');
  });

  it('re-seals and adopts nothing in a rotation run (N1), in a tenant adopted whole at the cut-over and after the only service seal was overwritten', async () => {
    const alices = putLegacyMapping(service, ALICE);
    expect((await adoptAsPlanned(adminWithKeyA.maintenance)).counts.sealed).toBe(1);
    // Carol signs up after go-live: the tenant's only service seal.
    expect((await asUser(service, 'carol', (http) => http.post('/api/user'))).status).toBe(201);
    // Later bob and carol claim identities nobody maps (departed users'); carol's write removes that only service seal.
    const [bobsClaim, carolsClaim] = [service.local.acs.seedIdentity(), service.local.acs.seedIdentity()];
    await withGraphExplorer(service.local, async (explorer) => {
      await explorer.createMapping(BOB, { acsUserIdentity: bobsClaim });
      await explorer.patchMapping(CAROL, { acsUserIdentity: carolsClaim });
    });

    const rotation = await adminWithKeysBA.maintenance.seal({ apply: true });
    expect(rotation.audit).toMatchObject({ adoptionOpen: true, sealed: { byOrigin: { service: 0, adopted: 1 } } });
    expect(rotation.users).toHaveLength(3);
    expect(rotation.users).toEqual(
      expect.arrayContaining([
        { oid: ALICE, acsUserId: alices, result: 'resealed', origin: 'adopted' },
        { oid: BOB, acsUserId: bobsClaim, result: 'skipped_unsealed', detail: 'no_seal' },
        { oid: CAROL, acsUserId: carolsClaim, result: 'skipped_unsealed', detail: 'no_seal' },
      ]),
    );
    expect(
      formatSealLine(
        present(
          rotation.users.find((line) => line.oid === BOB),
          "bob's line",
        ),
      ),
    ).toBe(`not adopted   ${BOB}  ${bobsClaim}  unsealed: not adopted (adopting takes seal --adopt and a reviewed plan)\n`);
    expect(formatSealSummary(rotation)).toContain('\nNo mapping carries a service seal. That is no proof the service is not live');
    for (const user of ['bob', 'carol'] as const)
      expect(errorBody(await getUserAs(supertest(serviceWithKeysBA.app), service, user, 409)).code).toBe('mapping_untrusted');
  });

  it('audit lists the users an older key still seals (N8), all in JSON and the first 50 as text, so the operator sees who keeps it alive', async () => {
    expect((await asUser(service, 'bob', (http) => http.post('/api/user'))).status).toBe(201);
    const saved = { ...(mappingPropertiesOf(service.local, BOB) ?? {}) };
    expect((await adminWithKeysBA.maintenance.seal({ apply: true })).counts.resealed).toBe(1);
    // Bob puts his saved extension, sealed under 'a', back: now only he keeps 'a' alive.
    await withGraphExplorer(service.local, (explorer) => explorer.patchMapping(BOB, saved));

    const audit = await adminWithKeysBA.maintenance.audit();
    expect(audit.sealed).toMatchObject({ olderKeys: { a: 1 }, olderKeyUsers: { a: [BOB] } });
    expect(formatAudit(audit)).toContain(
      `\nUsers whose mapping the older key 'a' still seals (seal --apply re-seals them):\n    ${BOB}\n\n`,
    );

    for (let index = 0; index < 55; index += 1) putSealedMapping(service, randomUUID(), service.local.acs.seedIdentity());
    const many = await adminWithKeysBA.maintenance.audit();
    // What --json prints: the whole list, not the 50 the text shows.
    expect((JSON.parse(JSON.stringify(many)) as typeof many).sealed.olderKeyUsers['a']).toHaveLength(56);
    const text = formatAudit(many);
    expect(text.match(/^ {4}[0-9a-f-]{36}$/gm)).toHaveLength(50);
    expect(text).toContain('\n    … and 6 more (--json lists them all)\n');
  });

  it('re-seals a victim under the older key whose id other users copied (in any letter case) and reports the copies as forgeries, so the old key reaches 0', async () => {
    const alices = userBody(await asUser(service, 'alice', (http) => http.post('/api/user'))).acsUserIdentity;
    const otherCase = `8:acs:${alices.slice('8:acs:'.length).toUpperCase()}`;
    await withGraphExplorer(service.local, async (explorer) => {
      await explorer.createMapping(BOB, { acsUserIdentity: alices });
      await explorer.createMapping(CAROL, { acsUserIdentity: otherCase });
    });

    const audit = await adminWithKeysBA.maintenance.audit();
    expect(audit).toMatchObject({
      sealed: { olderKeys: { a: 1 }, byOrigin: { service: 1, adopted: 0 } },
      duplicates: [{ resolution: 'sealed_owner', owner: ALICE }],
    });
    expect(audit.duplicates[0]?.holders).toHaveLength(3);

    const applied = await adminWithKeysBA.maintenance.seal({ apply: true });
    expect(applied.users).toHaveLength(3);
    expect(applied.users).toEqual(
      expect.arrayContaining([
        { oid: ALICE, acsUserId: alices, result: 'resealed', origin: 'service' },
        { oid: BOB, acsUserId: alices, result: 'skipped_forgery', detail: 'no_seal', owner: ALICE },
        { oid: CAROL, acsUserId: otherCase, result: 'skipped_forgery', detail: 'no_seal', owner: ALICE },
      ]),
    );
    const bobsLine = present(
      applied.users.find((line) => line.oid === BOB),
      "bob's line",
    );
    expect(formatSealLine(bobsLine)).toBe(
      `skipped       ${BOB}  ${alices}  forgery: ${ALICE} holds this identity under a verifying seal; unsealed (no_seal)\n`,
    );
    expect(await adminWithKeysBA.maintenance.audit()).toMatchObject({
      sealed: { currentKey: { keyId: 'b', count: 1 }, olderKeys: { a: 0 } },
    });

    expect(userBody(await getUserAs(supertest(serviceWithKeyB.app), service, 'alice', 200)).acsUserIdentity).toBe(alices);
    expect(errorBody(await getUserAs(supertest(serviceWithKeyB.app), service, 'bob', 409)).code).toBe('mapping_untrusted');
  });

  it("skips every holder when several holders' seals verify for one identity (a bug or a leaked key), and says so", async () => {
    const shared = service.local.acs.seedIdentity();
    putSealedMapping(service, ALICE, shared);
    putSealedMapping(service, BOB, shared);

    const applied = await adminWithKeysBA.maintenance.seal({ apply: true });
    expect(applied.audit.duplicates).toEqual([expect.objectContaining({ resolution: 'several_sealed_holders' })]);
    expect(applied.users).toEqual(
      expect.arrayContaining(
        [ALICE, BOB].map((oid) => ({
          oid,
          acsUserId: shared,
          result: 'skipped_duplicate',
          detail: 'older_key',
          resolution: 'several_sealed_holders',
        })),
      ),
    );
    expect(formatSealLine(present(applied.users[0], 'a line'))).toContain(
      "duplicate: another user names this identity too, and several holders' seals verify; sealed (older key)",
    );
    expect(formatAudit(applied.audit)).toContain(
      `  ${shared}  several holders' seals verify (a bug, or a leaked key: rotate it): none is sealed\n`,
    );
    expect(service.local.graph.counters.get('extensions.update')).toBe(0);
  });
});

describe('the mappings command', () => {
  describe('arguments', () => {
    it.each([
      [['audit'], { verb: 'audit', json: false }],
      [['audit', '--json'], { verb: 'audit', json: true }],
      [['seal'], { verb: 'seal', json: false, apply: false, adopt: false, plan: undefined, afterGoLive: false }],
      [['seal', '--apply', '--json'], { verb: 'seal', json: true, apply: true, adopt: false, plan: undefined, afterGoLive: false }],
      [['seal', '--adopt'], { verb: 'seal', json: false, apply: false, adopt: true, plan: undefined, afterGoLive: false }],
      [
        ['seal', '--adopt', '--plan', 'plan.json'],
        { verb: 'seal', json: false, apply: false, adopt: true, plan: 'plan.json', afterGoLive: false },
      ],
      [
        ['seal', '--adopt', '--apply', '--plan=p.json', '--after-go-live'],
        { verb: 'seal', json: false, apply: true, adopt: true, plan: 'p.json', afterGoLive: true },
      ],
      [['--help'], { verb: 'help', asked: true }],
      [['seal', '-h'], { verb: 'help', asked: true }],
      [[], { verb: 'help', asked: false }],
    ])('parses %j', (argv, expected) => {
      expect(parseMappingsArguments(argv)).toEqual(expected);
    });

    it.each([
      [['audit', '--apply'], /^unknown option '--apply' for audit/],
      [['audit', '--adopt'], /^unknown option '--adopt' for audit/],
      [['purge'], /^unknown command 'purge'/],
      [['seal', 'now'], /^unexpected argument 'now'/],
      [['--json'], /^no command given/],
      [['seal', '--force'], /^unknown option '--force' for seal/],
      // Adoption is never implicit: writing it takes the plan a reviewed dry run wrote.
      [['seal', '--adopt', '--apply'], /^seal --adopt --apply needs --plan <file>/],
      [['seal', '--apply', '--plan', 'p.json'], /^--plan goes with --adopt/],
      [['seal', '--apply', '--after-go-live'], /^--after-go-live goes with --adopt/],
      [['seal', '--adopt', '--plan'], /^--plan needs a file name/],
      [['seal', '--adopt', '--plan', '--apply'], /^--plan needs a file name/],
      [['seal', '--apply', '--adopt-unsealed-after-cutover'], /^--adopt-unsealed-after-cutover is gone: adopting takes a reviewed plan/],
    ])('refuses %j with the usage', (argv, problem) => {
      expect(() => parseMappingsArguments(argv)).toThrow(UsageError);
      expect(() => parseMappingsArguments(argv)).toThrow(problem);
      expect(() => parseMappingsArguments(argv)).toThrow(/usage: npm run -s mappings/);
    });
  });

  describe('end to end in local mode (npm start in a folder, the command in that folder)', () => {
    let folder: string;
    let running: RunningService;
    let sessionFile: string;

    const capture = capturedIo;

    function local(): NonNullable<RunningService['local']> {
      if (running.local === undefined) throw new Error('expected local mode');
      return running.local;
    }

    beforeAll(async () => {
      folder = await mkdtemp(join(tmpdir(), 'acs-auth-mappings-'));
      sessionFile = join(folder, '.local-azure', 'session.json');
      running = await startService(
        { PORT: '0', NODE_ENV: 'test', LOG_LEVEL: 'silent', RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '0', RATE_LIMIT_PER_USER_PER_MINUTE: '0' },
        { sessionFile },
      );
    });
    afterAll(async () => {
      await running.stop();
      await rm(folder, { recursive: true, force: true });
    });

    it("writes admin.json (mode 0600) next to the session file with this run's settings, which the session file does not hold", async () => {
      const file = adminFilePath(sessionFile);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const admin = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      expect(admin).toEqual({ settings: { ...local().settings }, caCertPem: local().caCertPem, pid: process.pid });
      expect(Object.keys(admin['settings'] as object).sort()).toEqual(
        [
          'ACS_CONNECTION_STRING',
          'ENTRA_AUTHORITY_HOST',
          'ENTRA_CLIENT_ID',
          'ENTRA_CLIENT_SECRET',
          'ENTRA_TENANT_ID',
          'GRAPH_BASE_URL',
          'MAPPING_SEAL_KEYS',
          'TEAMS_CLIENT_ID',
        ].sort(),
      );
      const session = JSON.stringify(await readLocalSession(sessionFile));
      for (const secret of secretsOf(local())) expect(session).not.toContain(secret);
    });

    it('audits, dry-runs and seals through the command, printing ids but no secret or seal', async () => {
      const alices = local().acs.seedIdentity();
      local().graph.putExtension(ALICE, ORIGINAL_SAMPLE_APP_ID, { extensionName: MAPPING_EXTENSION_NAME, acsUserIdentity: alices });

      const audit = capture(folder);
      expect(await runMappingsCommand(['audit'], audit)).toBe(EXIT.ok);
      expect(audit.out()).toMatch(/^ {2}unsealed \(no_seal\) +1 {3}refused by the service until adopted \(seal --adopt\)$/m);
      expect(audit.out()).toMatch(/^ {2}sealed under the current key 'local' +0$/m);

      const json = capture(folder);
      expect(await runMappingsCommand(['audit', '--json'], json)).toBe(EXIT.ok);
      expect(JSON.parse(json.out())).toMatchObject({ usersScanned: 3, usersWithMapping: 1, unsealed: 1 });

      const plain = capture(folder);
      expect(await runMappingsCommand(['seal', '--apply'], plain)).toBe(EXIT.ok);
      expect(plain.out()).toMatch(/^ {2}not adopted: unsealed, no --adopt +1$/m);

      const dryRun = capture(folder);
      expect(await runMappingsCommand(['seal', '--adopt', '--plan', 'plan.json'], dryRun)).toBe(EXIT.ok);
      expect(dryRun.out()).toContain(`would seal    ${ALICE}  ${alices}  was unsealed; adopted\n`);
      expect(dryRun.out()).toContain('Dry run: nothing was written.');
      expect(dryRun.out()).toContain(
        '\nPlan written to plan.json: 1 mapping(s) to adopt. Review every pair, then run: npm run -s mappings -- seal --adopt --apply --plan plan.json\n',
      );
      const planText = await readFile(join(folder, 'plan.json'), 'utf8');
      expect(JSON.parse(planText)).toEqual({
        kind: 'acs-auth-server mapping adoption plan',
        version: 1,
        tenantId: LOCAL_TENANT_ID,
        extensionName: MAPPING_EXTENSION_NAME,
        createdAt: expect.any(String),
        adopt: [{ oid: ALICE, acsUserId: alices }],
      });
      expect(local().graph.counters.get('extensions.update')).toBe(0);

      const applied = capture(folder);
      expect(await runMappingsCommand(['seal', '--adopt', '--apply', '--plan', 'plan.json'], applied)).toBe(EXIT.ok);
      expect(applied.out()).toContain(`sealed        ${ALICE}  ${alices}  was unsealed; adopted\n`);
      expect(applied.out()).toMatch(/^ {2}sealed \(were unsealed: adopted, as planned\) +1$/m);

      const printed = [audit, json, plain, dryRun, applied].map((io) => io.out() + io.err()).concat(planText);
      const seals = sealsIn(local(), DEMO_OIDS);
      expect(seals).toHaveLength(1);
      expect(findLeaks({ logLines: printed, responses: [], secrets: [...secretsOf(local()), ...seals] })).toEqual([]);
    });

    it('counts a failed write, exits 3, and a second run finishes the job', async () => {
      const users = [BOB, CAROL].map((oid) => {
        const acsUserId = local().acs.seedIdentity();
        local().graph.putExtension(oid, ORIGINAL_SAMPLE_APP_ID, { extensionName: MAPPING_EXTENSION_NAME, acsUserIdentity: acsUserId });
        return oid;
      });
      expect(await runMappingsCommand(['seal', '--adopt', '--plan', 'plan.json'], capture(folder))).toBe(EXIT.ok);
      local().graph.faults.inject({ route: 'extensions.update', status: 500 });

      const first = capture(folder);
      expect(await runMappingsCommand(['seal', '--adopt', '--apply', '--plan', 'plan.json'], first)).toBe(EXIT.incomplete);
      expect(first.out()).toMatch(/^FAILED {8}\S+ {2}8:acs:\S+ {2}Microsoft Graph: answered 500$/m);
      expect(first.out()).toMatch(/^ {2}failed +1$/m);
      expect(first.out()).toContain('run the same command again');
      expect(sealsIn(local(), users)).toHaveLength(1);

      const second = capture(folder);
      expect(await runMappingsCommand(['seal', '--adopt', '--apply', '--plan', 'plan.json'], second)).toBe(EXIT.ok);
      expect(second.out()).toMatch(/^ {2}sealed \(were unsealed: adopted, as planned\) +1$/m);
      expect(sealsIn(local(), users)).toHaveLength(2);
    });

    it('runs as a child process (the entry point) and prints the audit as JSON', async () => {
      const entry = resolve(__dirname, '../../src/cli/mappings.ts');
      const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>((done) => {
        const child = execFile(
          process.execPath,
          ['-r', require.resolve('ts-node/register/transpile-only'), entry, 'audit', '--json'],
          // No Azure setting in its environment: local mode, found through the admin file in its working folder.
          {
            cwd: folder,
            env: { PATH: process.env['PATH'] ?? '', TS_NODE_PROJECT: resolve(__dirname, '../../tsconfig.json') },
            timeout: 60_000,
          },
          (_error, out, err) => done({ stdout: out, stderr: err, code: child.exitCode }),
        );
      });
      expect({ code, stderr }).toEqual({ code: EXIT.ok, stderr: '' });
      expect(JSON.parse(stdout)).toMatchObject({
        tenantId: LOCAL_TENANT_ID,
        usersScanned: 3,
        sealed: { currentKey: { keyId: 'local', count: 3 } },
      });
    }, 60_000);

    it('once a service seal exists, prints it, adopts nothing without --after-go-live, and adopts the reviewed plan with it (JSON)', async () => {
      const config = loadConfig({ NODE_ENV: 'test', ...local().settings });
      putSealedMapping({ local: local(), config }, randomUUID(), local().acs.seedIdentity());
      const claimant = randomUUID();
      const claimed = local().acs.seedIdentity();
      local().graph.putExtension(claimant, GRAPH_EXPLORER_APP_ID, { extensionName: MAPPING_EXTENSION_NAME, acsUserIdentity: claimed });
      const updates = local().graph.counters.get('extensions.update');

      const audit = capture(folder);
      expect(await runMappingsCommand(['audit'], audit)).toBe(EXIT.ok);
      expect(audit.out()).toMatch(/^ {2}sealed by the service \(origin service\) +1$/m);
      expect(audit.out()).toMatch(/^ {2}adopted by this command \(origin adopted\) +3$/m);
      expect(audit.out()).toMatch(/^ {2}unsealed \(no_seal\) +1 {3}refused by the service; the service is live$/m);
      expect(audit.out()).toMatch(/^1 mapping carries a service seal \(the service is live\): an unsealed mapping may be/m);
      const json = capture(folder);
      expect(await runMappingsCommand(['audit', '--json'], json)).toBe(EXIT.ok);
      expect(JSON.parse(json.out())).toMatchObject({ adoptionOpen: false, unsealed: 1, sealed: { byOrigin: { service: 1, adopted: 3 } } });

      const live = capture(folder);
      expect(await runMappingsCommand(['seal', '--adopt', '--plan', 'live.json'], live)).toBe(EXIT.ok);
      expect(live.out()).toContain(`not adopted   ${claimant}  ${claimed}  unsealed: not adopted, the service is live`);
      expect(live.out()).toMatch(/^ {2}not adopted: unsealed, the service is live +1$/m);
      expect(live.out()).toContain('Plan written to live.json: 0 mapping(s) to adopt.');

      const reviewed = capture(folder);
      expect(await runMappingsCommand(['seal', '--adopt', '--after-go-live', '--plan=plan.json', '--json'], reviewed)).toBe(EXIT.ok);
      expect(JSON.parse(reviewed.out())).toMatchObject({ apply: false, adopt: true, afterGoLive: true, counts: { would_seal: 1 } });
      expect(reviewed.err()).toContain('Plan written to plan.json: 1 mapping(s) to adopt.');
      expect((JSON.parse(await readFile(join(folder, 'plan.json'), 'utf8')) as { adopt?: unknown }).adopt).toEqual([
        { oid: claimant, acsUserId: claimed },
      ]);
      expect(local().graph.counters.get('extensions.update')).toBe(updates);

      const forced = capture(folder);
      expect(await runMappingsCommand(['seal', '--adopt', '--apply', '--plan', 'plan.json', '--after-go-live', '--json'], forced)).toBe(
        EXIT.ok,
      );
      expect(JSON.parse(forced.out())).toMatchObject({
        apply: true,
        adopt: true,
        afterGoLive: true,
        audit: { adoptionOpen: false },
        counts: { sealed: 1, skipped_live: 0, not_in_plan: 0 },
        users: [{ oid: claimant, acsUserId: claimed, result: 'sealed', origin: 'adopted' }],
      });
    });

    it('refuses a plan file it cannot use with a usage error naming the problem, and writes nothing', async () => {
      const valid = JSON.parse(await readFile(join(folder, 'plan.json'), 'utf8')) as Record<string, unknown>;
      const plans: readonly (readonly [string, string])[] = [
        ['not json', 'it is not JSON'],
        [JSON.stringify({ ...valid, kind: 'something else' }), 'it is not an adoption plan'],
        [
          JSON.stringify({ ...valid, tenantId: '00000000-0000-4000-8000-00000000dead' }),
          'it was made for tenant "00000000-0000-4000-8000-00000000dead", not ',
        ],
        [JSON.stringify({ ...valid, adopt: [{ oid: ALICE }] }), 'adopt[0].acsUserId is not a non-empty string'],
        [
          JSON.stringify({
            ...valid,
            adopt: [
              { oid: ALICE, acsUserId: '8:acs:x' },
              { oid: ALICE, acsUserId: '8:acs:y' },
            ],
          }),
          `it lists the user ${ALICE} twice`,
        ],
      ];
      const updates = local().graph.counters.get('extensions.update');
      for (const [text, problem] of plans) {
        await writeFile(join(folder, 'bad.json'), text);
        const io = capture(folder);
        expect(await runMappingsCommand(['seal', '--adopt', '--apply', '--plan', 'bad.json'], io)).toBe(EXIT.usage);
        expect(io.err()).toMatch(/^invalid plan bad\.json: /);
        expect(io.err()).toContain(problem);
        expect(io.err()).toContain('usage: npm run -s mappings');
      }
      const missing = capture(folder);
      expect(await runMappingsCommand(['seal', '--adopt', '--apply', '--plan', 'missing.json'], missing)).toBe(EXIT.usage);
      expect(missing.err()).toMatch(/^cannot read the plan missing\.json: ENOENT/);
      expect(local().graph.counters.get('extensions.update')).toBe(updates);
    });

    it('says to start the service when its pid is gone, or its admin file is', async () => {
      const file = adminFilePath(sessionFile);
      const text = await readFile(file, 'utf8');
      const exited = spawnSync(process.execPath, ['-e', '']).pid;
      await rm(file);
      await writeFile(file, text.replace(`"pid": ${process.pid}`, `"pid": ${exited}`), { mode: 0o600 });
      const stale = capture(folder);
      expect(await runMappingsCommand(['audit'], stale)).toBe(EXIT.error);
      expect(stale.err()).toContain(`(pid ${exited}) is not running any more: start the service with 'npm start' in this folder first`);
      await writeFile(file, text);

      await running.stop();
      expect(existsSync(file)).toBe(false);
      expect(existsSync(sessionFile)).toBe(false);
      const missing = capture(folder);
      expect(await runMappingsCommand(['audit'], missing)).toBe(EXIT.error);
      expect(missing.err()).toBe(
        `mappings: no local mode is running here (${file} not found): start the service with 'npm start' in this folder first\n`,
      );
    });

    it('prints the usage for --help, and exits 2 with it for no command or a wrong one', async () => {
      const help = capture(folder);
      expect(await runMappingsCommand(['--help'], help)).toBe(EXIT.ok);
      expect(help.out()).toMatch(
        /^usage: npm run -s mappings -- audit \[--json\]\n {7}npm run -s mappings -- seal \[--apply\] \[--json\]\n/,
      );
      expect(help.out()).toContain('npm run -s mappings -- seal --adopt --apply --plan <file> [--after-go-live] [--json]\n');
      const none = capture(folder);
      expect(await runMappingsCommand([], none)).toBe(EXIT.usage);
      expect(none.err()).toMatch(/^usage:/);
      const wrong = capture(folder);
      expect(await runMappingsCommand(['purge'], wrong)).toBe(EXIT.usage);
      expect(wrong.err()).toMatch(/^unknown command 'purge'/);
    });

    it('prints the configuration problem as the server does, in Azure mode with a bad setting', async () => {
      const io = capture(folder, { ENTRA_TENANT_ID: 'not-a-guid', NODE_ENV: 'test' });
      expect(await runMappingsCommand(['audit'], io)).toBe(EXIT.error);
      expect(io.err()).toMatch(/^Invalid configuration:\n {2}- /);
      expect(io.err()).toContain('ENTRA_TENANT_ID must be a GUID');
      expect(io.err()).toContain('See .env.sample and docs/configuration.md.');
    });
  });
});
