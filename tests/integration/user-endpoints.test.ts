import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';

import { expect } from '@jest/globals';
import supertest from 'supertest';

import { composeService, type ServiceRuntime } from '../../src/composition-root';
import { DEMO_USERS } from '../../src/local/local-directory';
import { createLogger } from '../../src/observability/logger';
import { issuedTokenBody, tokenBody, userBody } from '../helpers/bodies';
import { expectInvariants, mappedIdentityOf, MAPPING_EXTENSION_NAME, orphanedIdentities, resetTestService } from '../helpers/invariants';
import { ORIGINAL_SAMPLE_APP_ID, putSealedMapping } from '../helpers/mappings';
import { present } from '../helpers/present';
import { ACS_ID, type TestService, useTestService } from '../helpers/test-service';

/**
 * `/api/user`: reading, creating (under concurrency, across instances and with partial upstream
 * failures), deleting (retry-safe), admin erasure and the claims challenge. After every scenario
 * that can go wrong half way, the emulators' state is checked against the service's invariants.
 */

const ALICE = DEMO_USERS.alice.oid;
const BOB = DEMO_USERS.bob.oid;

describe('/api/user', () => {
  const service = useTestService();
  beforeEach(async () => {
    await resetTestService(service);
  });

  /** A fresh token per call: msal caches OBO results per assertion, and tests must reach Entra afresh. */
  async function authAs(
    user: keyof typeof DEMO_USERS = 'alice',
    mint: Parameters<TestService['tokenFor']>[1] = {},
  ): Promise<{ Authorization: string }> {
    return { Authorization: `Bearer ${await service.tokenFor(user, mint)}` };
  }

  describe('GET /api/user', () => {
    describe('when the user has no mapping', () => {
      it('answers 404 identity_not_found with a message', async () => {
        const response = await service.http
          .get('/api/user')
          .set(await authAs())
          .expect(404);
        expect(response.body).toMatchObject({ code: 'identity_not_found', message: expect.stringContaining('POST /api/user') });
      });
    });

    describe('when the original hero sample wrote the mapping (no seal)', () => {
      it('answers 409 mapping_untrusted, calls ACS not at all, and logs why', async () => {
        const acsUserId = service.local.acs.seedIdentity();
        service.local.graph.putExtension(ALICE, ORIGINAL_SAMPLE_APP_ID, {
          extensionName: MAPPING_EXTENSION_NAME,
          acsUserIdentity: acsUserId,
        });

        const response = await service.http
          .get('/api/user')
          .set(await authAs())
          .expect(409);

        expect(response.body).toMatchObject({ code: 'mapping_untrusted', message: expect.stringContaining('POST /api/user') });
        expect(JSON.stringify(response.body)).not.toContain(acsUserId);
        expect(service.local.acs.counters.total()).toBe(0);
        expect(service.logs).toContainEqual(expect.objectContaining({ level: 'warn', oid: ALICE, reason: 'no_seal', action: 'refused' }));
      });

      it('replaces it on POST with a new identity of its own, leaving the old identity alive and unused', async () => {
        const legacy = service.local.acs.seedIdentity();
        service.local.graph.putExtension(ALICE, ORIGINAL_SAMPLE_APP_ID, { extensionName: MAPPING_EXTENSION_NAME, acsUserIdentity: legacy });

        const response = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(201);

        expect(userBody(response).acsUserIdentity).toMatch(ACS_ID);
        expect(userBody(response).acsUserIdentity).not.toBe(legacy);
        expect(mappedIdentityOf(service.local, ALICE)).toBe(userBody(response).acsUserIdentity);
        expect(service.local.acs.isAlive(legacy)).toBe(true);
        expect(service.logs).toContainEqual(
          expect.objectContaining({ level: 'warn', oid: ALICE, reason: 'no_seal', action: 'replaced', storedAcsUserId: legacy }),
        );
        await service.http
          .get('/api/user')
          .set(await authAs())
          .expect(200, { acsUserIdentity: userBody(response).acsUserIdentity });
      });
    });

    describe('when the mapping is sealed (by this service, or by `npm run mappings -- seal`)', () => {
      it('answers 200 with the identity, calling ACS not at all', async () => {
        const acsUserId = service.local.acs.seedIdentity();
        putSealedMapping(service, ALICE, acsUserId, ORIGINAL_SAMPLE_APP_ID);

        const response = await service.http
          .get('/api/user')
          .set(await authAs())
          .expect(200);

        expect(response.body).toEqual({ acsUserIdentity: acsUserId });
        expect(service.local.acs.counters.total()).toBe(0);
      });

      it('answers POST with 200 and the same identity, creating nothing', async () => {
        const acsUserId = service.local.acs.seedIdentity();
        putSealedMapping(service, ALICE, acsUserId, ORIGINAL_SAMPLE_APP_ID);

        const response = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(200);

        expect(response.body).toEqual({ acsUserIdentity: acsUserId });
        expect(service.local.acs.counters.get('identities.create')).toBe(0);
        expect(service.local.graph.counters.get('extensions.create')).toBe(0);
      });
    });
  });

  describe('POST /api/user', () => {
    describe('when the user has no identity', () => {
      it('answers 201 and stores the mapping in the hero sample format', async () => {
        const response = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(201);

        expect(response.body).toEqual({ acsUserIdentity: expect.stringMatching(ACS_ID) });
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([
          {
            id: MAPPING_EXTENSION_NAME,
            extensionName: MAPPING_EXTENSION_NAME,
            appId: service.config.entra.clientId,
            properties: {
              acsUserIdentity: userBody(response).acsUserIdentity,
              acsUserIdentitySeal: expect.stringMatching(/^v1\.s\.local\.[\w-]{43}$/),
            },
          },
        ]);
        expect(service.local.acs.aliveIdentityIds()).toEqual([userBody(response).acsUserIdentity]);
        expectInvariants(service.local);
      });
    });

    describe('when the user already has an identity', () => {
      it('answers 200 with the same identity', async () => {
        const first = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(201);
        const second = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(200);

        expect(second.body).toEqual(first.body);
        expect(service.local.acs.counters.get('identities.create')).toBe(1);
      });
    });

    describe('when 50 requests for one user arrive at once', () => {
      it('maps exactly one identity, answers every caller with it, and answers 201 exactly once', async () => {
        const auth = await authAs();
        const responses = await Promise.all(Array.from({ length: 50 }, () => service.http.post('/api/user').set(auth)));

        const statuses = responses.map((response) => response.status);
        expect(statuses.filter((status) => status === 201)).toHaveLength(1);
        expect(statuses.filter((status) => status === 200)).toHaveLength(49);
        const ids = new Set(responses.map((response) => userBody(response).acsUserIdentity));
        expect(ids.size).toBe(1);
        const [acsUserId] = [...ids];
        expect(mappedIdentityOf(service.local, ALICE)).toBe(acsUserId);
        expect(service.local.acs.aliveIdentityIds()).toEqual([acsUserId]);
        // Within one process the creates share one flight: ACS is asked once.
        expect(service.local.acs.counters.get('identities.create')).toBe(1);
        expectInvariants(service.local);
      });
    });

    describe('when two service instances create the same user at once', () => {
      let second: ServiceRuntime;
      const secondLogs: string[] = [];
      beforeAll(() => {
        const destination = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            secondLogs.push(
              ...chunk
                .toString('utf8')
                .split('\n')
                .filter((line) => line.trim() !== ''),
            );
            callback();
          },
        });
        second = composeService(service.config, {
          logger: createLogger({ level: 'info', destination }),
          trustedCaPem: service.local.caCertPem,
        });
      });
      afterAll(async () => {
        await second.close();
      });

      it('ends with one identity, the same answer everywhere and no orphan: the loser deletes what it made', async () => {
        const auth = await authAs();
        const instances = [service.http, supertest(second.app)] as const;
        // Warm both instances' OBO caches, then hold every mapping write long enough that both
        // instances have read "no mapping" and created an identity before either write lands.
        for (const http of instances) await http.get('/api/user').set(auth).expect(404);
        service.local.graph.faults.setLatency(400, 'extensions.create');
        const logStarts = [service.rawLogs.length, secondLogs.length] as const;

        const responses = await Promise.all(
          Array.from({ length: 10 }, (_unused, index) => instances[index % 2 === 0 ? 0 : 1].post('/api/user').set(auth)),
        );

        const statuses = responses.map((response) => response.status);
        expect(statuses.filter((status) => status === 201)).toHaveLength(1);
        expect(statuses.filter((status) => status === 200)).toHaveLength(9);
        const ids = new Set(responses.map((response) => userBody(response).acsUserIdentity));
        expect(ids.size).toBe(1);
        // Both instances really created an identity (the race happened) and the loser's is gone.
        expect(service.local.acs.counters.get('identities.create')).toBe(2);
        expect(service.local.acs.counters.get('identities.delete')).toBe(1);
        expect(service.local.acs.aliveIdentityIds()).toEqual([...ids]);
        // Whichever instance lost says so in its log (an operator can count races).
        const newLines = [...service.rawLogs.slice(logStarts[0]), ...secondLogs.slice(logStarts[1])];
        expect(newLines.filter((line) => line.includes('another request mapped the user first'))).toHaveLength(1);
        expectInvariants(service.local);
      });

      it('POST /api/token through both: one identity, and every token is valid for it', async () => {
        const auth = await authAs();
        const instances = [service.http, supertest(second.app)] as const;
        for (const http of instances) await http.get('/api/user').set(auth).expect(404);
        service.local.graph.faults.setLatency(400, 'extensions.create');

        const responses = await Promise.all(
          Array.from({ length: 10 }, (_unused, index) => instances[index % 2 === 0 ? 0 : 1].post('/api/token').set(auth)),
        );

        expect(responses.map((response) => response.status)).toEqual(Array<number>(10).fill(201));
        const ids = new Set(responses.map((response) => tokenBody(response).user.communicationUserId));
        expect(ids.size).toBe(1);
        expect(service.local.acs.counters.get('identities.create')).toBe(2);
        const verdicts = await Promise.all(
          responses.map((response) => service.local.acs.verifyAccessToken(issuedTokenBody(response).token)),
        );
        expect(verdicts.map((verdict) => verdict.valid)).toEqual(Array<boolean>(10).fill(true));
        expect(service.local.acs.aliveIdentityIds()).toEqual([...ids]);
        expectInvariants(service.local);
      });
    });

    describe('when one instance deletes what another has served', () => {
      let second: ServiceRuntime;
      beforeAll(() => {
        second = composeService(service.config, { logger: createLogger({ level: 'silent' }), trustedCaPem: service.local.caCertPem });
      });
      afterAll(async () => {
        await second.close();
      });

      it('the other instance never serves the deleted identity, and serves the next one', async () => {
        const auth = await authAs();
        const [first, other] = [service.http, supertest(second.app)];
        const created = await first.post('/api/user').set(auth).expect(201);
        const served = await other.get('/api/token').set(auth).expect(201);
        expect(tokenBody(served).user.communicationUserId).toBe(userBody(created).acsUserIdentity);

        await first.delete('/api/user').set(auth).expect(204);

        const afterDelete = await other.get('/api/token').set(auth).expect(404);
        expect(afterDelete.body).toMatchObject({ code: 'identity_not_found' });
        await other.delete('/api/token').set(auth).expect(404);
        const recreated = await other.post('/api/token').set(auth).expect(201);
        expect(tokenBody(recreated).user.communicationUserId).not.toBe(userBody(created).acsUserIdentity);
        const fromFirst = await first.get('/api/token').set(auth).expect(201);
        expect(tokenBody(fromFirst).user.communicationUserId).toBe(tokenBody(recreated).user.communicationUserId);
        expectInvariants(service.local);
      });
    });

    describe('when the mapping write fails after the identity was created', () => {
      it.each([
        [500, 502, 'upstream_error'],
        [503, 503, 'upstream_unavailable'],
      ])('Graph %i: answers %i %s and deletes the identity it created', async (graphStatus, status, code) => {
        service.local.graph.faults.inject({ route: 'extensions.create', status: graphStatus });

        const response = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(status);

        expect(response.body).toMatchObject({ code, message: expect.any(String) });
        expect(service.local.acs.counters.get('identities.create')).toBe(1);
        expect(service.local.acs.aliveIdentityIds()).toEqual([]);
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);
        expectInvariants(service.local);
      });

      it('then succeeds on retry with a fresh identity', async () => {
        service.local.graph.faults.inject({ route: 'extensions.create', status: 500 });
        await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(502);

        const retry = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(201);

        expect(mappedIdentityOf(service.local, ALICE)).toBe(userBody(retry).acsUserIdentity);
        expectInvariants(service.local);
      });
    });

    describe('when the mapping write lands but its answer is lost', () => {
      it.each([
        ['a 500 answer', { status: 500 }],
        ['a dropped connection', { status: 500, dropConnection: true }],
      ])('(%s) sees the mapping is its own and answers 201', async (_name, fault) => {
        service.local.graph.faults.inject({ route: 'extensions.create', afterHandler: true, ...fault });

        const response = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(201);

        expect(mappedIdentityOf(service.local, ALICE)).toBe(userBody(response).acsUserIdentity);
        expect(service.local.acs.aliveIdentityIds()).toEqual([userBody(response).acsUserIdentity]);
        expectInvariants(service.local);
      });
    });

    describe('when ACS fails to create the identity', () => {
      it.each([
        [500, 502, 'upstream_error'],
        [503, 503, 'upstream_unavailable'],
      ])('ACS %i: answers %i %s and writes nothing to Graph', async (acsStatus, status, code) => {
        service.local.acs.faults.inject({ route: 'identities.create', status: acsStatus });

        const response = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(status);

        expect(response.body).toMatchObject({ code });
        expect(service.local.graph.counters.get('extensions.create')).toBe(0);
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);
        expectInvariants(service.local);
      });
    });

    describe('when the user already has two extensions from this app', () => {
      it('answers 409 mapping_limit_reached and deletes the identity it created for the mapping', async () => {
        const appId = service.config.entra.clientId;
        service.local.graph.putExtension(ALICE, appId, { extensionName: 'com.contoso.preferences', theme: 'dark' });
        service.local.graph.putExtension(ALICE, appId, { extensionName: 'com.contoso.settings', locale: 'en' });

        const response = await service.http
          .post('/api/user')
          .set(await authAs())
          .expect(409);

        expect(response.body).toMatchObject({ code: 'mapping_limit_reached', message: expect.any(String) });
        expect(service.local.acs.counters.get('identities.create')).toBe(1);
        expect(service.local.acs.aliveIdentityIds()).toEqual([]);
        expect(service.local.graph.extensionsOf(ALICE).map((extension) => extension.extensionName)).toEqual([
          'com.contoso.preferences',
          'com.contoso.settings',
        ]);
        expectInvariants(service.local);
      });
    });
  });

  describe('when a trusted mapping replaces an untrusted one while DELETE /api/user removes it', () => {
    it('answers 409 mapping_changed, deletes nothing and keeps the new mapping', async () => {
      const unsealed = service.local.acs.seedIdentity();
      service.local.graph.putExtension(BOB, ORIGINAL_SAMPLE_APP_ID, { extensionName: MAPPING_EXTENSION_NAME, acsUserIdentity: unsealed });
      const auth = await authAs('bob');
      await service.http.get('/api/user').set(auth).expect(409); // untrusted; also warms the On-Behalf-Of cache
      const reads = service.local.graph.counters.get('user.get');
      service.local.graph.faults.setLatency(200, 'user.get');
      const newer = service.local.acs.seedIdentity();

      const deleting = service.http
        .delete('/api/user')
        .set(auth)
        .then((response) => response);
      // The second read is the removal's own check; each read looks at the mapping after its delay.
      while (service.local.graph.counters.get('user.get') < reads + 2) await new Promise((resolve) => setTimeout(resolve, 5));
      // The user's POST /api/user on another instance replaces the untrusted mapping meanwhile.
      service.local.graph.reset();
      putSealedMapping(service, BOB, newer);
      const response = await deleting;

      expect(response.status).toBe(409);
      expect(response.body).toMatchObject({ code: 'mapping_changed', message: expect.stringContaining('nothing was deleted') });
      expect(mappedIdentityOf(service.local, BOB)).toBe(newer);
      expect(service.local.acs.isAlive(unsealed)).toBe(true);
      expect(service.local.acs.isAlive(newer)).toBe(true);
    });
  });

  describe('when another mapping is written while the identity is being deleted', () => {
    it('answers 409 mapping_changed and keeps the new mapping; the deleted identity is gone', async () => {
      const old = await service.http
        .post('/api/user')
        .set(await authAs('bob'))
        .expect(201);
      service.local.acs.faults.setLatency(300, 'identities.delete');
      const newer = service.local.acs.seedIdentity();

      const deleting = service.http
        .delete('/api/user')
        .set(await authAs('bob'))
        .then((response) => response);
      while (service.local.acs.counters.get('identities.delete') === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      // Another instance (or the user, putting a saved mapping back) writes a sealed mapping meanwhile.
      service.local.graph.reset();
      putSealedMapping(service, BOB, newer);
      const response = await deleting;

      expect(response.status).toBe(409);
      expect(response.body).toMatchObject({ code: 'mapping_changed' });
      expect(service.local.acs.isAlive(userBody(old).acsUserIdentity)).toBe(false);
      expect(mappedIdentityOf(service.local, BOB)).toBe(newer);
    });
  });

  describe('when POST /api/token and POST /api/user of one user with an untrusted mapping overlap', () => {
    it('lets POST /api/user replace it (201) instead of sharing the refusal of the get-or-create', async () => {
      service.local.graph.putExtension(BOB, ORIGINAL_SAMPLE_APP_ID, {
        extensionName: MAPPING_EXTENSION_NAME,
        acsUserIdentity: service.local.acs.seedIdentity(),
      });
      const auth = await authAs('bob');
      await service.http.get('/api/user').set(auth).expect(409); // warms the On-Behalf-Of cache: both start at once below
      service.local.graph.faults.setLatency(100, 'user.get');

      const [token, user] = await Promise.all([service.http.post('/api/token').set(auth), service.http.post('/api/user').set(auth)]);

      expect(user.status).toBe(201);
      expect(userBody(user).acsUserIdentity).toMatch(ACS_ID);
      expect([409, 201]).toContain(token.status);
    });
  });

  describe('when a replacement and a delete of one user overlap on one instance', () => {
    it('runs them one after the other: the delete finds the new mapping and deletes its identity, leaving no orphan', async () => {
      const legacy = service.local.acs.seedIdentity();
      service.local.graph.putExtension(BOB, ORIGINAL_SAMPLE_APP_ID, { extensionName: MAPPING_EXTENSION_NAME, acsUserIdentity: legacy });
      const auth = await authAs('bob');
      // Slow deletes, so the delete's own read and removal fall inside the replacement's (found by the review).
      service.local.graph.faults.setLatency(150, 'extensions.delete');
      service.local.acs.faults.setLatency(50, 'identities.create');

      const replacing = service.http
        .post('/api/user')
        .set(auth)
        .then((response) => response);
      while (service.local.graph.counters.get('extensions.delete') === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      await new Promise((resolve) => setTimeout(resolve, 80));
      const deleted = await service.http.delete('/api/user').set(auth);
      const replaced = await replacing;

      expect([replaced.status, deleted.status]).toEqual([201, 204]);
      expect(service.local.graph.extensionsOf(BOB)).toEqual([]);
      expect(service.local.acs.isAlive(userBody(replaced).acsUserIdentity)).toBe(false);
      // The legacy identity is left alone on purpose (an untrusted mapping's identity may be anyone's); nothing else lives.
      expect(orphanedIdentities(service.local).filter((id) => id !== legacy)).toEqual([]);
    });
  });

  describe('DELETE /api/user', () => {
    async function createFor(user: keyof typeof DEMO_USERS = 'alice'): Promise<string> {
      const response = await service.http
        .post('/api/user')
        .set(await authAs(user))
        .expect(201);
      return userBody(response).acsUserIdentity;
    }

    describe('when the user has an identity', () => {
      it('answers 204, deletes the ACS identity and removes the mapping', async () => {
        const acsUserId = await createFor();

        await service.http
          .delete('/api/user')
          .set(await authAs())
          .expect(204);

        expect(service.local.acs.isAlive(acsUserId)).toBe(false);
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);
        await service.http
          .get('/api/user')
          .set(await authAs())
          .expect(404);
        expectInvariants(service.local);
      });

      it('leaves other extensions on the user alone', async () => {
        service.local.graph.putExtension(ALICE, ORIGINAL_SAMPLE_APP_ID, { extensionName: 'com.contoso.preferences', theme: 'dark' });
        await createFor();

        await service.http
          .delete('/api/user')
          .set(await authAs())
          .expect(204);

        expect(service.local.graph.extensionsOf(ALICE).map((extension) => extension.extensionName)).toEqual(['com.contoso.preferences']);
      });
    });

    describe('when the user has no mapping', () => {
      it('answers 204 without touching ACS', async () => {
        await service.http
          .delete('/api/user')
          .set(await authAs())
          .expect(204);
        expect(service.local.acs.counters.total()).toBe(0);
      });
    });

    describe('when ACS fails to delete the identity', () => {
      it('answers a deliberate error, keeps mapping and identity, and a retry removes both', async () => {
        const acsUserId = await createFor();
        service.local.acs.faults.inject({ route: 'identities.delete', status: 500 });

        const failed = await service.http
          .delete('/api/user')
          .set(await authAs())
          .expect(502);

        expect(failed.body).toMatchObject({ code: 'upstream_error' });
        expect(service.local.acs.isAlive(acsUserId)).toBe(true);
        expect(mappedIdentityOf(service.local, ALICE)).toBe(acsUserId);
        expectInvariants(service.local);

        await service.http
          .delete('/api/user')
          .set(await authAs())
          .expect(204);
        expect(service.local.acs.isAlive(acsUserId)).toBe(false);
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);
        expectInvariants(service.local);
      });
    });

    describe('when ACS deletes the identity but its answer is lost', () => {
      it('answers a deliberate error, and a retry treats the gone identity as deleted and removes the mapping', async () => {
        const acsUserId = await createFor();
        service.local.acs.faults.inject({ route: 'identities.delete', status: 500, afterHandler: true });

        await service.http
          .delete('/api/user')
          .set(await authAs())
          .expect(502);
        expect(service.local.acs.isAlive(acsUserId)).toBe(false);
        expect(orphanedIdentities(service.local)).toEqual([]);

        await service.http
          .delete('/api/user')
          .set(await authAs())
          .expect(204);
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);
        expectInvariants(service.local);
      });
    });

    describe('when removing the mapping fails after the identity was deleted', () => {
      it('answers a deliberate error, never leaves an identity without mapping, and a retry finishes the job', async () => {
        const acsUserId = await createFor();
        service.local.graph.faults.inject({ route: 'extensions.delete', status: 503 });

        const failed = await service.http
          .delete('/api/user')
          .set(await authAs())
          .expect(503);

        expect(failed.body).toMatchObject({ code: 'upstream_unavailable' });
        expect(service.local.acs.isAlive(acsUserId)).toBe(false);
        // The mapping is left to retry with: it points to a deleted identity, never the reverse.
        expect(mappedIdentityOf(service.local, ALICE)).toBe(acsUserId);
        expect(orphanedIdentities(service.local)).toEqual([]);

        await service.http
          .delete('/api/user')
          .set(await authAs())
          .expect(204);
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);
        expect(service.local.acs.aliveIdentityIds()).toEqual([]);
        expectInvariants(service.local);
      });
    });

    describe('when the mapped identity belongs to another ACS resource', () => {
      it('answers 409 identity_not_owned and keeps the mapping', async () => {
        const foreign = `8:acs:${randomUUID()}_${randomUUID()}`;
        putSealedMapping(service, ALICE, foreign, ORIGINAL_SAMPLE_APP_ID);

        const response = await service.http
          .delete('/api/user')
          .set(await authAs())
          .expect(409);

        expect(response.body).toMatchObject({ code: 'identity_not_owned' });
        expect(mappedIdentityOf(service.local, ALICE)).toBe(foreign);
      });
    });
  });

  describe('DELETE /api/user/{userObjectId} (admin erasure)', () => {
    const adminAuth = (): Promise<{ Authorization: string }> => authAs('alice', { roles: ['AcsAuth.Admin'] });

    describe('when the target user has an identity', () => {
      it("answers 204, deletes the user's ACS identity and mapping with the app's own Graph access", async () => {
        const bobs = await service.http
          .post('/api/user')
          .set(await authAs('bob'))
          .expect(201);
        const alices = await service.http
          .post('/api/user')
          .set(await authAs('alice'))
          .expect(201);
        const admin = await adminAuth();

        await service.http.delete(`/api/user/${BOB}`).set(admin).expect(204);

        expect(service.local.acs.isAlive(userBody(bobs).acsUserIdentity)).toBe(false);
        expect(service.local.graph.extensionsOf(BOB)).toEqual([]);
        expect(service.local.acs.isAlive(userBody(alices).acsUserIdentity)).toBe(true);
        expect(mappedIdentityOf(service.local, ALICE)).toBe(userBody(alices).acsUserIdentity);
        expectInvariants(service.local);
      });

      it('logs the admin and the target, and no token', async () => {
        await service.http
          .post('/api/user')
          .set(await authAs('bob'))
          .expect(201);
        const admin = await adminAuth();
        const bearer = admin.Authorization.slice('Bearer '.length);
        const logStart = service.rawLogs.length;

        await service.http.delete(`/api/user/${BOB}`).set(admin).expect(204);

        const lines = service.rawLogs.slice(logStart);
        const erasure = service.logs
          .slice(logStart)
          .find((line) => typeof line['msg'] === 'string' && line['msg'].startsWith('admin erasure'));
        expect(erasure).toMatchObject({ adminOid: ALICE, targetOid: BOB, acsUserId: expect.stringMatching(ACS_ID) });
        expect(lines.some((line) => line.includes(bearer))).toBe(false);
        // No JWT of any kind (the caller's, the OBO or the app-only Graph token) reaches the log.
        expect(lines.filter((line) => /eyJ[\w-]+\.eyJ[\w-]+\./.test(line))).toEqual([]);
      });
    });

    describe('when the target user has no mapping', () => {
      it('answers 204', async () => {
        await service.http
          .delete(`/api/user/${BOB}`)
          .set(await adminAuth())
          .expect(204);
        expect(service.local.acs.counters.total()).toBe(0);
      });
    });

    describe('when the target user does not exist in the directory', () => {
      it('answers 204 (nothing is mapped)', async () => {
        await service.http
          .delete(`/api/user/${randomUUID()}`)
          .set(await adminAuth())
          .expect(204);
        expect(service.local.acs.counters.total()).toBe(0);
      });
    });

    describe("when the target user's mapping is stale", () => {
      it('answers 204 and removes the mapping', async () => {
        const bobs = await service.http
          .post('/api/user')
          .set(await authAs('bob'))
          .expect(201);
        service.local.acs.deleteIdentityDirectly(userBody(bobs).acsUserIdentity);

        await service.http
          .delete(`/api/user/${BOB.toUpperCase()}`)
          .set(await adminAuth())
          .expect(204);

        expect(service.local.graph.extensionsOf(BOB)).toEqual([]);
        expectInvariants(service.local);
      });
    });

    describe('when the id is not a GUID', () => {
      it('answers 400 bad_request without calling any upstream', async () => {
        const admin = await adminAuth();
        const before = service.upstreamCalls().total;

        const response = await service.http.delete('/api/user/not-a-guid').set(admin).expect(400);

        expect(response.body).toMatchObject({ code: 'bad_request' });
        expect(service.upstreamCalls().total).toBe(before);
      });
    });

    describe('when the caller does not hold the admin role', () => {
      it('answers 403 forbidden and erases nothing', async () => {
        const bobs = await service.http
          .post('/api/user')
          .set(await authAs('bob'))
          .expect(201);

        const response = await service.http
          .delete(`/api/user/${BOB}`)
          .set(await authAs('alice'))
          .expect(403);

        expect(response.body).toMatchObject({ code: 'forbidden' });
        expect(service.local.acs.isAlive(userBody(bobs).acsUserIdentity)).toBe(true);
      });
    });
  });

  describe('when Entra ID requires interaction before Graph can be reached', () => {
    it('MFA: answers 401 interaction_required with the claims challenge', async () => {
      service.local.entra.requireInteraction(ALICE, 'mfa');

      const response = await service.http
        .get('/api/user')
        .set(await authAs())
        .expect(401);

      expect(response.body).toMatchObject({ code: 'interaction_required' });
      const challenge = present(response.headers['www-authenticate'], 'a WWW-Authenticate header');
      expect(challenge).toContain('error="insufficient_claims"');
      const claims = present(/claims="([^"]+)"/.exec(challenge)?.[1], 'a claims parameter in the challenge');
      const decoded = JSON.parse(Buffer.from(claims, 'base64').toString('utf8')) as unknown;
      expect(decoded).toEqual({ access_token: { capolids: { essential: true, values: [expect.any(String)] } } });
      expect(service.local.graph.counters.total()).toBe(0);
    });

    it('consent: answers 401 interaction_required', async () => {
      service.local.entra.requireInteraction(ALICE, 'consent');

      const response = await service.http
        .post('/api/user')
        .set(await authAs())
        .expect(401);

      expect(response.body).toMatchObject({ code: 'interaction_required' });
      expect(response.headers['www-authenticate']).toContain('error="insufficient_claims"');
      expect(service.local.acs.counters.total()).toBe(0);
    });
  });
});
