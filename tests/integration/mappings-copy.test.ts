import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { TableClient } from '@azure/data-tables';
import { expect } from '@jest/globals';
import supertest from 'supertest';

import { createMappingTableClient } from '../../src/adapters/table/table-client';
import { createTableMappingStore } from '../../src/adapters/table/table-mapping-store';
import { SEAL_PROPERTY } from '../../src/adapters/graph/graph-mapping-store';
import type { CopyLine, CopyReport } from '../../src/admin/mapping-copy';
import { copyIncomplete, formatCopyReport } from '../../src/admin/mapping-report';
import { EXIT, parseMappingsArguments, runMappingsCommand, UsageError, type CommandIo } from '../../src/admin/mappings-command';
import { composeMappingAdmin, composeService, type ServiceRuntime } from '../../src/composition-root';
import { loadConfig, type Config } from '../../src/config/config';
import { startAzuriteTables, type AzuriteTables } from '../../src/local/azurite/azurite-tables';
import { DEMO_USERS, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { adminFilePath, sessionFilePath, writeLocalAdmin } from '../../src/local/local-session';
import { createLogger } from '../../src/observability/logger';
import { acsResourceOf, createMappingSealer } from '../../src/services/mapping-seal';
import type { MappingStore } from '../../src/services/ports';
import { capturedIo, type CapturedIo } from '../helpers/command-io';
import { tokenBody, userBody } from '../helpers/bodies';
import { MAPPING_EXTENSION_NAME, resetTestService } from '../helpers/invariants';
import { mappingPropertiesOf, ORIGINAL_SAMPLE_APP_ID, putSealedMapping, withGraphExplorer } from '../helpers/mappings';
import { present } from '../helpers/present';
import { findLeaks } from '../helpers/secrecy';
import { graphStoreOf } from '../helpers/store-config';
import { startTableFaultProxy, type TableFaultProxy } from '../helpers/table-fault-proxy';
import { testCertificates, useTestService } from '../helpers/test-service';

/**
 * `npm run mappings -- copy --to table`: the Graph store's sealed mappings into the table store. The
 * command runs in-process as an operator runs it in local mode (the admin file of a running local mode
 * in its folder: here, the test service's emulators), with MAPPING_TABLE_CONNECTION_STRING naming an
 * Azurite (TLS from the same CA) behind the fault proxy; then a service composed with
 * MAPPING_STORE=table on the same ACS emulator and Azurite serves the copied users.
 */

const ALICE = DEMO_USERS.alice.oid;
const BOB = DEMO_USERS.bob.oid;
const CAROL = DEMO_USERS.carol.oid;
const TABLE_NAME = 'AcsIdentityMappings';
/** A batch (`POST /<account>/$batch`): the table store's insert of a user row and an identity row. */
const BATCH = { method: 'POST', path: /\/\$batch$/ };

type Captured = CapturedIo;

interface TableRow {
  readonly rowKey: string;
  readonly acsUserId?: unknown;
  readonly acsResource?: unknown;
  readonly oid?: unknown;
}

describe('copy --to table (the mappings command, from the Graph store onto Azurite)', () => {
  const service = useTestService();
  let azurite: AzuriteTables;
  let proxy: TableFaultProxy;
  let folder: string;
  let rows: TableClient;
  /** The table store on Azurite (past the proxy), writing rows as the service does. */
  let tableStore: MappingStore;
  /** Everything the command printed, and what the table-mode service logged, for the secrecy check. */
  const printed: string[] = [];
  /** Every seal this file wrote into Graph: none may be printed. */
  const seals: string[] = [];

  /** The settings of a service of this deployment on the table store: same Entra, same ACS resource, Azurite. */
  function tableServiceConfig(): Config {
    const { ENTRA_TENANT_ID, ENTRA_CLIENT_ID, ENTRA_AUTHORITY_HOST, ACS_CONNECTION_STRING } = service.local.settings;
    return loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      UPSTREAM_MAX_RETRIES: '0',
      UPSTREAM_TIMEOUT_MS: '5000',
      RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '0',
      RATE_LIMIT_PER_USER_PER_MINUTE: '0',
      ENTRA_TENANT_ID: present(ENTRA_TENANT_ID, 'ENTRA_TENANT_ID'),
      ENTRA_CLIENT_ID: present(ENTRA_CLIENT_ID, 'ENTRA_CLIENT_ID'),
      ENTRA_AUTHORITY_HOST: present(ENTRA_AUTHORITY_HOST, 'ENTRA_AUTHORITY_HOST'),
      ACS_CONNECTION_STRING: present(ACS_CONNECTION_STRING, 'ACS_CONNECTION_STRING'),
      MAPPING_STORE: 'table',
      MAPPING_TABLE_CONNECTION_STRING: azurite.connectionString,
    });
  }

  /** What the command is run with: the table, through the proxy, on top of the local mode's settings. */
  function copyEnv(): Record<string, string> {
    return {
      MAPPING_TABLE_CONNECTION_STRING: azurite.connectionString.replace(azurite.url, proxy.url),
      UPSTREAM_MAX_RETRIES: '0',
      UPSTREAM_TIMEOUT_MS: '5000',
    };
  }

  function capture(env: CommandIo['env'] = copyEnv(), cwd = folder): Captured {
    return capturedIo(cwd, env);
  }

  async function run(argv: readonly string[], io: Captured = capture()): Promise<{ code: number; out: string; err: string }> {
    const code = await runMappingsCommand(argv, io);
    printed.push(io.out(), io.err());
    return { code, out: io.out(), err: io.err() };
  }

  async function runJson(argv: readonly string[]): Promise<{ code: number; report: CopyReport }> {
    const { code, out } = await run([...argv, '--json']);
    return { code, report: JSON.parse(out) as CopyReport };
  }

  async function tableRows(): Promise<Map<string, TableRow>> {
    const found = new Map<string, TableRow>();
    try {
      for await (const entity of rows.listEntities<TableRow>()) found.set(present(entity.rowKey, 'a row key'), entity);
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
    return found;
  }

  async function clearTable(): Promise<void> {
    for (const [rowKey] of await tableRows()) await rows.deleteEntity(LOCAL_TENANT_ID, rowKey);
  }

  /** A user's table row as the service writes it (both rows, one transaction), for the configured ACS resource or another. */
  async function putTableMapping(oid: string, acsUserId: string, acsResource = acsResourceOf(service.config.acs.auth.endpoint)) {
    expect(await tableStore.create(await tableStore.targetOfUser(LOCAL_TENANT_ID, oid), { acsUserId, seal: acsResource })).toBe('created');
  }

  function sealedUser(oid: string = randomUUID()): { oid: string; acsUserId: string } {
    const acsUserId = service.local.acs.seedIdentity();
    putSealedMapping(service, oid, acsUserId);
    seals.push(String(mappingPropertiesOf(service.local, oid)?.[SEAL_PROPERTY]));
    return { oid, acsUserId };
  }

  const batches = (from: number): number =>
    proxy.seen.slice(from).filter((request) => request.method === 'POST' && request.path.endsWith('$batch')).length;

  const byOid = (lines: readonly CopyLine[]): CopyLine[] => [...lines].sort((a, b) => a.oid.localeCompare(b.oid));

  beforeAll(async () => {
    const certificates = testCertificates();
    azurite = await startAzuriteTables({ tls: certificates });
    proxy = await startTableFaultProxy({ target: azurite.url, tls: certificates, caCertPem: service.local.caCertPem });
    folder = await mkdtemp(join(tmpdir(), 'acs-auth-copy-'));
    // What `npm start` in this folder writes: the command finds the running local mode through it.
    await writeLocalAdmin(
      { settings: service.local.settings, caCertPem: service.local.caCertPem, pid: process.pid },
      adminFilePath(sessionFilePath(folder)),
    );
    rows = TableClient.fromConnectionString(azurite.connectionString, TABLE_NAME, {
      tlsOptions: { ca: service.local.caCertPem },
      retryOptions: { maxRetries: 0 },
    });
    const table = present(tableServiceConfig().mappings.table, 'the table settings');
    tableStore = createTableMappingStore(
      createMappingTableClient({ table, maxRetries: 0, maxRetryWaitMs: 0, ca: service.local.caCertPem }),
      {
        timeoutMs: 5000,
      },
    );
  });

  afterAll(async () => {
    await proxy?.close();
    await azurite?.close();
    if (folder !== undefined) await rm(folder, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await resetTestService(service);
    proxy.clear();
    await clearTable();
  });

  afterAll(() => {
    const secrets = [
      azurite.accountKey,
      azurite.connectionString,
      service.local.acs.accessKey,
      present(service.local.settings['ENTRA_CLIENT_SECRET'], 'ENTRA_CLIENT_SECRET'),
      ...graphStoreOf(service.config).sealKeys.map((key) => key.secret.export().toString('base64')),
      ...seals,
    ];
    expect(findLeaks({ logLines: printed, responses: [], secrets })).toEqual([]);
  });

  describe('arguments and settings', () => {
    it.each([
      [['copy', '--to', 'table'], { verb: 'copy', json: false, apply: false, to: 'table' }],
      [['copy', '--to=table', '--apply', '--json'], { verb: 'copy', json: true, apply: true, to: 'table' }],
    ])('parses %j', (argv, expected) => {
      expect(parseMappingsArguments(argv)).toEqual(expected);
    });

    it.each([
      [['copy'], /^copy needs --to table/],
      [['copy', '--apply'], /^copy needs --to table/],
      [['copy', '--to', 'graph'], /^unknown --to 'graph': copy copies the Graph store's mappings to table/],
      [['copy', '--to'], /^--to needs a store: table/],
      [['copy', '--to', 'table', '--to', 'table'], /^--to given twice/],
      [['copy', '--to', 'table', '--plan', 'p.json'], /^unknown option '--plan' for copy/],
      [['copy', '--to', 'table', '--adopt'], /^unknown option '--adopt' for copy/],
      [['seal', '--to', 'table'], /^unknown option '--to' for seal/],
      [['copy', 'table'], /^unexpected argument 'table'/],
    ])('refuses %j with the usage', (argv, problem) => {
      expect(() => parseMappingsArguments(argv)).toThrow(UsageError);
      expect(() => parseMappingsArguments(argv)).toThrow(problem);
      expect(() => parseMappingsArguments(argv)).toThrow(/usage: npm run -s mappings/);
    });

    it('prints copy in the help, and exits 2 for an unknown --to', async () => {
      const help = await run(['--help']);
      expect(help.code).toBe(EXIT.ok);
      expect(help.out).toContain('npm run -s mappings -- copy --to table [--apply] [--json]\n');
      const wrong = await run(['copy', '--to', 'cosmos']);
      expect(wrong.code).toBe(EXIT.usage);
      expect(wrong.err).toMatch(/^unknown --to 'cosmos'/);
    });

    it('refuses to run without a table to copy into, naming MAPPING_TABLE_ENDPOINT and MAPPING_TABLE_CONNECTION_STRING, before reading Graph', async () => {
      sealedUser(ALICE);
      const { code, err } = await run(['copy', '--to', 'table', '--apply'], capture({ UPSTREAM_MAX_RETRIES: '0' }));
      expect(code).toBe(EXIT.error);
      expect(err).toMatch(/^Invalid configuration:\n {2}- copy --to table needs the table to copy into: set MAPPING_TABLE_ENDPOINT /);
      expect(err).toContain('or MAPPING_TABLE_CONNECTION_STRING');
      expect(service.local.graph.counters.get('users.list')).toBe(0);
    });

    it('in local mode, copies only to a table on this machine', async () => {
      const env = { MAPPING_TABLE_ENDPOINT: 'https://contoso.table.core.windows.net' };
      const { code, err } = await run(['copy', '--to', 'table'], capture(env));
      expect(code).toBe(EXIT.error);
      expect(err).toBe(
        'mappings: local mode copies only to a table on this machine (Azurite), not https://contoso.table.core.windows.net: to copy from Azure, set the Azure settings\n',
      );
    });

    it('with a table setting and no local mode running, says to start one or to set the Azure settings', async () => {
      const empty = await mkdtemp(join(tmpdir(), 'acs-auth-copy-none-'));
      try {
        const { code, err } = await run(['copy', '--to', 'table'], capture(copyEnv(), empty));
        expect(code).toBe(EXIT.error);
        expect(err).toContain('no local mode is running here (');
        expect(err).toContain("start the service with 'npm start' in this folder first, or set the Azure settings");
      } finally {
        await rm(empty, { recursive: true, force: true });
      }
    });
  });

  describe('what is copied, and what is not', () => {
    /** Alice and bob sealed; carol and four others holding every kind of untrusted mapping. */
    async function seedMixed(): Promise<{ alice: string; bob: string; untrusted: Record<string, string> }> {
      const alice = sealedUser(ALICE).acsUserId;
      const bob = sealedUser(BOB).acsUserId;
      // Carol copies bob's whole sealed extension onto her own /me, as any user can with Graph Explorer.
      const bobs = present(mappingPropertiesOf(service.local, BOB), "bob's mapping");
      await withGraphExplorer(service.local, (explorer) =>
        explorer.createMapping(CAROL, { acsUserIdentity: bobs['acsUserIdentity'], [SEAL_PROPERTY]: bobs[SEAL_PROPERTY] }),
      );
      const resource = acsResourceOf(service.config.acs.auth.endpoint);
      const retired = createMappingSealer([{ id: 'retired', secret: createSecretKey(randomBytes(32)) }], resource);
      const untrusted = {
        no_seal: randomUUID(),
        malformed_seal: randomUUID(),
        unknown_key: randomUUID(),
        malformed_identity: randomUUID(),
      };
      const put = (oid: string, properties: Record<string, unknown>): void => {
        service.local.graph.putExtension(oid, ORIGINAL_SAMPLE_APP_ID, { extensionName: MAPPING_EXTENSION_NAME, ...properties });
      };
      put(untrusted.no_seal, { acsUserIdentity: service.local.acs.seedIdentity() });
      put(untrusted.malformed_seal, { acsUserIdentity: service.local.acs.seedIdentity(), [SEAL_PROPERTY]: 'v1.s.local.short' });
      const id = service.local.acs.seedIdentity();
      put(untrusted.unknown_key, {
        acsUserIdentity: id,
        [SEAL_PROPERTY]: retired.seal({ tid: LOCAL_TENANT_ID, oid: untrusted.unknown_key }, id),
      });
      put(untrusted.malformed_identity, { acsUserIdentity: 'not an ACS id', [SEAL_PROPERTY]: 'v1.s.local.x' });
      return { alice, bob, untrusted: { ...untrusted, seal_mismatch: CAROL } };
    }

    it('a dry run reports what it would copy and why it skips the rest, and writes no row', async () => {
      const { untrusted } = await seedMixed();
      const seenBefore = proxy.seen.length;
      const text = await run(['copy', '--to', 'table']);
      expect(text.code).toBe(EXIT.ok);
      expect(text.out).toContain('Dry run: nothing was written. Run again with --apply');
      expect(text.out).toMatch(/^ {2}users with a mapping +7$/m);
      expect(text.out).toMatch(/^ {2}would copy \(sealed, not in the table yet\) +2$/m);
      for (const reason of ['no_seal', 'malformed_seal', 'unknown_key', 'seal_mismatch', 'malformed_identity'])
        expect(text.out).toMatch(new RegExp(`^ {2}not copied: untrusted \\(${reason}\\) +1$`, 'm'));
      expect(text.out).toContain('Not copied: the seal does not verify (the service refuses these mappings too):\n');
      expect(text.out).toContain(`    ${CAROL}  seal_mismatch\n`);

      const { code, report } = await runJson(['copy', '--to', 'table']);
      expect(code).toBe(EXIT.ok);
      expect(report).toMatchObject({
        apply: false,
        target: { store: 'table', tableName: TABLE_NAME, acsResource: acsResourceOf(service.config.acs.auth.endpoint) },
        tenantId: LOCAL_TENANT_ID,
        usersScanned: 7,
        usersWithMapping: 7,
        scanComplete: true,
        counts: { would_copy: 2, copied: 0, already_copied: 0, untrusted: 5, conflict: 0, identity_mapped_elsewhere: 0, failed: 0 },
        untrusted: { no_seal: 1, malformed_seal: 1, unknown_key: 1, seal_mismatch: 1, malformed_identity: 1 },
      });
      // Oid and reason for each; the identity too, except where the mapping names no valid ACS id.
      expect(report.skipped.map(({ oid, result, reason }) => `${oid} ${result} ${reason}`).sort()).toEqual(
        Object.entries(untrusted)
          .map(([reason, oid]) => `${oid} untrusted ${reason}`)
          .sort(),
      );
      for (const line of report.skipped) {
        if (line.reason === 'malformed_identity') expect(line).not.toHaveProperty('acsUserId');
        else expect(line.acsUserId).toMatch(/^8:acs:/);
      }
      expect([...(await tableRows()).keys()]).toEqual([]);
      expect(batches(seenBefore)).toBe(0);
    });

    it('--apply copies the sealed mappings bound to the ACS resource; a rerun writes nothing; a service on the table serves the copied users', async () => {
      const { alice, bob } = await seedMixed();
      const applied = await run(['copy', '--to', 'table', '--apply']);
      expect(applied.code).toBe(EXIT.ok);
      expect(applied.out).toContain('Copy done:');
      expect(applied.out).toMatch(/^ {2}copied +2$/m);
      const resource = acsResourceOf(service.config.acs.auth.endpoint);
      const stored = await tableRows();
      expect([...stored.keys()].sort()).toEqual([`identity:${alice}`, `identity:${bob}`, `user:${ALICE}`, `user:${BOB}`].sort());
      expect(stored.get(`user:${ALICE}`)).toMatchObject({ acsUserId: alice, acsResource: resource });
      expect(stored.get(`identity:${bob}`)).toMatchObject({ oid: BOB });

      const seenBefore = proxy.seen.length;
      const { code, report } = await runJson(['copy', '--to', 'table', '--apply']);
      expect(code).toBe(EXIT.ok);
      expect(report.counts).toMatchObject({ copied: 0, already_copied: 2, untrusted: 5, failed: 0 });
      // One read per sealed mapping, nothing written.
      expect(proxy.seen.slice(seenBefore).map((request) => request.method)).toEqual(['GET', 'GET']);

      const logLines: string[] = [];
      const config = tableServiceConfig();
      const logger = createLogger({ level: 'info', destination: { write: (line: string) => void logLines.push(line) } });
      const runtime: ServiceRuntime = composeService(config, { logger, trustedCaPem: service.local.caCertPem });
      try {
        const http = supertest(runtime.app);
        const as = async (user: keyof typeof DEMO_USERS) => ({ Authorization: `Bearer ${await service.tokenFor(user)}` });
        expect(
          userBody(
            await http
              .get('/api/user')
              .set(await as('alice'))
              .expect(200),
          ),
        ).toEqual({ acsUserIdentity: alice });
        expect(
          tokenBody(
            await http
              .get('/api/token')
              .set(await as('alice'))
              .expect(201),
          ).user,
        ).toEqual({ communicationUserId: alice });
        expect(
          userBody(
            await http
              .get('/api/user')
              .set(await as('bob'))
              .expect(200),
          ),
        ).toEqual({ acsUserIdentity: bob });
        // Carol's forged copy of bob's mapping was not copied: she has no identity on the table store.
        await http
          .get('/api/user')
          .set(await as('carol'))
          .expect(404);
      } finally {
        await runtime.close();
        printed.push(...logLines);
      }
    });

    it('never overwrites: a row naming another identity or ACS resource is kept (conflict); an identity the table maps to another user is refused', async () => {
      const resource = acsResourceOf(service.config.acs.auth.endpoint);
      const elsewhere = 'https://another-resource.communication.azure.com';
      const differs = sealedUser();
      const tables = service.local.acs.seedIdentity();
      await putTableMapping(differs.oid, tables);
      const otherResource = sealedUser();
      await putTableMapping(otherResource.oid, otherResource.acsUserId, elsewhere);
      const taken = sealedUser();
      const holder = randomUUID();
      await putTableMapping(holder, taken.acsUserId);
      // Two users whose sealed mappings name one identity (adopted twice): the table takes one of them.
      const twins = [randomUUID(), randomUUID()];
      const shared = service.local.acs.seedIdentity();
      for (const oid of twins) {
        putSealedMapping(service, oid, shared);
        seals.push(String(mappingPropertiesOf(service.local, oid)?.[SEAL_PROPERTY]));
      }

      const { code, report } = await runJson(['copy', '--to', 'table', '--apply']);
      expect(code).toBe(EXIT.ok);
      expect(report.counts).toMatchObject({ copied: 1, conflict: 2, identity_mapped_elsewhere: 2, failed: 0, not_attempted: 0 });
      expect(byOid(report.skipped.filter((line) => line.result === 'conflict'))).toEqual(
        byOid([
          { oid: differs.oid, acsUserId: differs.acsUserId, result: 'conflict', reason: 'other_identity', tableAcsUserId: tables },
          {
            oid: otherResource.oid,
            acsUserId: otherResource.acsUserId,
            result: 'conflict',
            reason: 'other_acs_resource',
            tableAcsUserId: otherResource.acsUserId,
          },
        ]),
      );
      const refused = report.skipped.filter((line) => line.result === 'identity_mapped_elsewhere').map((line) => line.oid);
      expect(refused).toContain(taken.oid);
      expect(twins.filter((oid) => refused.includes(oid))).toHaveLength(1);

      const stored = await tableRows();
      expect(stored.get(`user:${differs.oid}`)).toMatchObject({ acsUserId: tables, acsResource: resource });
      expect(stored.get(`user:${otherResource.oid}`)).toMatchObject({ acsUserId: otherResource.acsUserId, acsResource: elsewhere });
      expect(stored.get(`identity:${taken.acsUserId}`)).toMatchObject({ oid: holder });
      expect(stored.has(`user:${taken.oid}`)).toBe(false);
      expect(twins.filter((oid) => stored.has(`user:${oid}`))).toHaveLength(1);
      expect(stored.get(`identity:${shared}`)).toMatchObject({ oid: twins.find((oid) => !refused.includes(oid)) });

      // Run again: the refused ones are tried again (only a write finds out), and refused again.
      const text = await run(['copy', '--to', 'table', '--apply']);
      expect(text.code).toBe(EXIT.ok);
      expect(text.out).toContain(`    ${differs.oid}  the table has ${tables}, Graph ${differs.acsUserId}\n`);
      expect(text.out).toContain(
        `    ${otherResource.oid}  the table maps ${otherResource.acsUserId} to this user for another ACS resource\n`,
      );
      expect(text.out).toContain(`    ${taken.oid}  ${taken.acsUserId}\n`);
      expect(text.out).toMatch(/^ {2}already in the table \(same identity\) +1$/m);
      expect(text.out).toMatch(/^ {2}not copied: identity mapped to another user +2$/m);
      expect((await tableRows()).size).toBe(stored.size);
    });
  });

  describe('failures, throttling and resuming', () => {
    it('reports a failed write by its code, exits 3, and a rerun finishes the job', async () => {
      const users = [sealedUser(ALICE), sealedUser(BOB)];
      proxy.fail(BATCH, { status: 500, times: 1 });
      const first = await run(['copy', '--to', 'table', '--apply']);
      expect(first.code).toBe(EXIT.incomplete);
      expect(first.out).toMatch(/^ {2}copied +1$/m);
      expect(first.out).toMatch(/^ {2}failed +1$/m);
      expect(first.out).toMatch(/^Failed \(run the same command again\):\n {4}\S+ {2}upstream_error: Azure Table Storage: answered 500$/m);
      expect(first.out).toContain('Not every mapping was copied: run the same command again');

      const second = await runJson(['copy', '--to', 'table', '--apply']);
      expect(second.code).toBe(EXIT.ok);
      expect(second.report.counts).toMatchObject({ copied: 1, already_copied: 1, failed: 0 });
      const stored = await tableRows();
      for (const { oid, acsUserId } of users) expect(stored.get(`user:${oid}`)).toMatchObject({ acsUserId });
    });

    it('stops after 10 failures in a row (the table refuses every write) and lists the rest as not attempted', async () => {
      Array.from({ length: 12 }, () => sealedUser());
      proxy.fail(BATCH, { status: 500 });
      const seenBefore = proxy.seen.length;
      const { code, report } = await runJson(['copy', '--to', 'table', '--apply']);
      expect(code).toBe(EXIT.incomplete);
      expect(report).toMatchObject({ scanComplete: false, counts: { copied: 0, failed: 10, not_attempted: 2 } });
      expect(report.stoppedBecause).toBe('10 users in a row could not be copied (last: upstream_error: Azure Table Storage: answered 500)');
      expect(report.skipped.find((line) => line.result === 'failed')).toMatchObject({
        reason: 'upstream_error',
        detail: 'Azure Table Storage: answered 500',
      });
      expect(batches(seenBefore)).toBe(10);
      expect((await tableRows()).size).toBe(0);
    });

    it('waits out a throttled write (Retry-After) and reads the row again before the next attempt', async () => {
      const { acsUserId } = sealedUser(ALICE);
      proxy.fail(BATCH, { status: 429, retryAfterSeconds: 0, times: 1 });
      const seenBefore = proxy.seen.length;
      const { code, out, err } = await run(['copy', '--to', 'table', '--apply']);
      expect(code).toBe(EXIT.ok);
      expect(out).toMatch(/^ {2}copied +1$/m);
      expect(err).toBe('Microsoft Graph or the table is throttling: waiting 1.0 s\n');
      const requests = proxy.seen.slice(seenBefore).map(({ method, action }) => `${method} ${action}`);
      // The throttled batch, then the whole unit again: the row read first, then the batch.
      expect(requests.slice(-3)).toEqual(['POST failed 429', 'GET forwarded', 'POST forwarded']);
      expect((await tableRows()).get(`user:${ALICE}`)).toMatchObject({ acsUserId });
    });

    it('a Graph failure in the middle of the scan stops the run with what it copied so far; the rerun copies the rest', async () => {
      const seeded = Array.from({ length: 150 }, () => sealedUser());
      const config = loadConfig({
        NODE_ENV: 'test',
        UPSTREAM_MAX_RETRIES: '0',
        UPSTREAM_TIMEOUT_MS: '5000',
        ...service.local.settings,
        MAPPING_TABLE_CONNECTION_STRING: azurite.connectionString,
      });
      const admin = composeMappingAdmin(config, { logger: createLogger({ level: 'silent' }), trustedCaPem: service.local.caCertPem });
      try {
        const copy = present(admin.copy, 'the copy, with MAPPING_TABLE_CONNECTION_STRING set');
        const first = await copy.copy({
          apply: true,
          progress: {
            scanned: (users) => {
              if (users === 100) service.local.graph.faults.inject({ route: 'users.list', status: 500 });
            },
          },
        });
        expect(first).toMatchObject({ scanComplete: false, usersScanned: 100, counts: { failed: 0, not_attempted: 0 } });
        expect(first.stoppedBecause).toBe('reading the directory failed after 100 users (upstream_error: Microsoft Graph: answered 500)');
        expect(first.counts.copied).toBe(first.usersWithMapping);
        expect(first.counts.copied).toBeGreaterThan(90);
        expect(copyIncomplete(first)).toBe(true);
        expect(formatCopyReport(first)).toContain(
          '\nStopped: reading the directory failed after 100 users (upstream_error: Microsoft Graph: answered 500).\nNot every mapping was copied: run the same command again',
        );
        expect(formatCopyReport(first)).toMatch(/^ {2}users scanned +100 {3}the scan stopped before the end$/m);
        const userRows = [...(await tableRows()).keys()].filter((key) => key.startsWith('user:'));
        expect(userRows).toHaveLength(first.counts.copied);

        const second = await copy.copy({ apply: true });
        expect(second).toMatchObject({ scanComplete: true, usersScanned: 153, usersWithMapping: 150, stoppedBecause: undefined });
        expect(second.counts).toMatchObject({ already_copied: first.counts.copied, copied: 150 - first.counts.copied, failed: 0 });
        expect(copyIncomplete(second)).toBe(false);
        const stored = await tableRows();
        for (const { oid, acsUserId } of seeded) expect(stored.get(`user:${oid}`)).toMatchObject({ acsUserId });
      } finally {
        await admin.close();
      }
    });
  });
});
