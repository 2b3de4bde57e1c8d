import { expect } from '@jest/globals';
import type { Response } from 'supertest';

import type { FaultSpec } from '../../src/local/kit/faults';
import { DEMO_USERS } from '../../src/local/local-directory';
import { errorBody, userBody } from '../helpers/bodies';
import { expectInvariants, resetTestService } from '../helpers/invariants';
import { startTestService, type TestService, useTestService } from '../helpers/test-service';

/**
 * Upstream throttling, outages, timeouts and dropped connections, on each of the three upstreams:
 * every one becomes a deliberate status with a stable code (503 + Retry-After for throttling, 502,
 * 503, 504), never a 500, and 5xx bodies carry a generic message without upstream detail or stack.
 */

const ALICE = DEMO_USERS.alice.oid;
/** The test service's deadline for any upstream call; faults hold requests far longer than this. */
const TIMEOUT_ENV = { UPSTREAM_TIMEOUT_MS: '300' } as const;
const HELD_MS = 3_000;

/** The generic texts of `publicMessage`: what a 5xx may say, and nothing else. */
const GENERIC_MESSAGES = [
  'An upstream service did not answer in time. Try again later.',
  'An upstream service is unavailable or throttling. Try again later.',
  'An upstream service failed to complete the request.',
];

function expectGenericFailure(response: Response, status: number, code: string): void {
  expect(response.status).toBe(status);
  expect(response.body).toEqual({ code, message: expect.any(String), requestId: expect.any(String) });
  expect(GENERIC_MESSAGES).toContain(errorBody(response).message);
  expect(response.headers['x-request-id']).toBe(errorBody(response).requestId);
}

function retryAfterOf(response: Response): number {
  const value = response.headers['retry-after'];
  expect(value).toMatch(/^\d+$/);
  return Number(value);
}

describe('upstream failures', () => {
  describe('Microsoft Graph and ACS (one service)', () => {
    const service = useTestService();
    beforeEach(async () => {
      await resetTestService(service);
    });

    async function auth(): Promise<{ Authorization: string }> {
      return { Authorization: `Bearer ${await service.tokenFor('alice')}` };
    }

    describe('when Graph fails reading the mapping (GET /api/user)', () => {
      it.each<[string, number, string, FaultSpec]>([
        ['429 with Retry-After 7', 503, 'upstream_throttled', { route: 'user.get', status: 429, retryAfterSeconds: 7 }],
        ['500', 502, 'upstream_error', { route: 'user.get', status: 500 }],
        ['503', 503, 'upstream_unavailable', { route: 'user.get', status: 503 }],
        ['504', 504, 'upstream_timeout', { route: 'user.get', status: 504 }],
        ['a dropped connection', 503, 'upstream_unavailable', { route: 'user.get', status: 500, dropConnection: true }],
      ])('%s: answers %i %s', async (_name, status, code, fault) => {
        service.local.graph.faults.inject(fault);

        const response = await service.http.get('/api/user').set(await auth());

        expectGenericFailure(response, status, code);
      });

      it('passes Graph Retry-After on (at least 7 s) with the 503', async () => {
        service.local.graph.faults.inject({ route: 'user.get', status: 429, retryAfterSeconds: 7 });

        const response = await service.http
          .get('/api/user')
          .set(await auth())
          .expect(503);

        expect(retryAfterOf(response)).toBeGreaterThanOrEqual(7);
      });
    });

    describe('when Graph throttles or drops the mapping write (POST /api/user)', () => {
      it.each<[string, number, string, FaultSpec]>([
        ['429', 503, 'upstream_throttled', { route: 'extensions.create', status: 429, retryAfterSeconds: 3 }],
        ['a dropped connection', 503, 'upstream_unavailable', { route: 'extensions.create', status: 500, dropConnection: true }],
      ])('%s: answers %i %s and leaves no orphan', async (_name, status, code, fault) => {
        service.local.graph.faults.inject(fault);

        const response = await service.http.post('/api/user').set(await auth());

        expectGenericFailure(response, status, code);
        expect(service.local.acs.counters.get('identities.create')).toBe(1);
        expect(service.local.acs.aliveIdentityIds()).toEqual([]);
        expectInvariants(service.local);
      });
    });

    describe('when ACS fails creating the identity (POST /api/user)', () => {
      it.each<[string, number, string, FaultSpec]>([
        ['429 with Retry-After 5', 503, 'upstream_throttled', { route: 'identities.create', status: 429, retryAfterSeconds: 5 }],
        ['500', 502, 'upstream_error', { route: 'identities.create', status: 500 }],
        ['503', 503, 'upstream_unavailable', { route: 'identities.create', status: 503 }],
        ['a dropped connection', 503, 'upstream_unavailable', { route: 'identities.create', status: 500, dropConnection: true }],
      ])('%s: answers %i %s and writes nothing to Graph', async (_name, status, code, fault) => {
        service.local.acs.faults.inject(fault);

        const response = await service.http.post('/api/user').set(await auth());

        expectGenericFailure(response, status, code);
        expect(service.local.graph.counters.get('extensions.create')).toBe(0);
        expect(service.local.graph.extensionsOf(ALICE)).toEqual([]);
        expectInvariants(service.local);
      });

      it('passes ACS Retry-After on with the 503', async () => {
        service.local.acs.faults.inject({ route: 'identities.create', status: 429, retryAfterSeconds: 5 });

        const response = await service.http
          .post('/api/user')
          .set(await auth())
          .expect(503);

        expect(retryAfterOf(response)).toBeGreaterThanOrEqual(5);
      });
    });

    describe('when ACS fails issuing a token (GET /api/token)', () => {
      it.each<[string, number, string, FaultSpec]>([
        ['429', 503, 'upstream_throttled', { route: 'identities.issueToken', status: 429, retryAfterSeconds: 2 }],
        ['500', 502, 'upstream_error', { route: 'identities.issueToken', status: 500 }],
        ['503', 503, 'upstream_unavailable', { route: 'identities.issueToken', status: 503 }],
        ['a dropped connection', 503, 'upstream_unavailable', { route: 'identities.issueToken', status: 500, dropConnection: true }],
      ])('%s: answers %i %s and keeps the mapping', async (_name, status, code, fault) => {
        const created = await service.http
          .post('/api/user')
          .set(await auth())
          .expect(201);
        service.local.acs.faults.inject(fault);

        const response = await service.http.get('/api/token').set(await auth());

        expectGenericFailure(response, status, code);
        expect(service.local.acs.isAlive(userBody(created).acsUserIdentity)).toBe(true);
        expectInvariants(service.local);
      });
    });

    describe('when ACS fails the Teams exchange', () => {
      it('answers 503 upstream_unavailable, not invalid_teams_token', async () => {
        service.local.acs.faults.inject({ route: 'teams.exchange', status: 503 });
        const teamsToken = await service.local.entra.mintTeamsToken({ user: 'alice', appId: service.config.entra.teamsClientId });

        const response = await service.http
          .get('/api/token/teams')
          .set(await auth())
          .set('teams-user-aad-token', teamsToken);

        expectGenericFailure(response, 503, 'upstream_unavailable');
      });
    });

    describe('a 5xx answer', () => {
      it('carries no upstream detail, no stack and no upstream error code', async () => {
        service.local.graph.faults.inject({ route: 'user.get', status: 500, code: 'generalException', message: 'secret upstream detail' });

        const response = await service.http
          .get('/api/user')
          .set(await auth())
          .expect(502);

        expect(response.body).not.toHaveProperty('stack');
        expect(JSON.stringify(response.body)).not.toMatch(/secret upstream detail|generalException|Graph|answered/);
      });

      it('is logged with its detail for the operator', async () => {
        service.local.graph.faults.inject({ route: 'user.get', status: 500 });
        const logStart = service.logs.length;

        const response = await service.http
          .get('/api/user')
          .set(await auth())
          .expect(502);

        const logged = service.logs
          .slice(logStart)
          .find((line) => line['requestId'] === errorBody(response).requestId && line['code'] === 'upstream_error');
        expect(logged).toMatchObject({ level: 'error', msg: expect.stringContaining('Microsoft Graph') });
      });
    });
  });

  describe('timeouts of Graph and ACS (one service, UPSTREAM_TIMEOUT_MS=300)', () => {
    let service: TestService;
    beforeAll(async () => {
      service = await startTestService({ env: TIMEOUT_ENV });
      // A cold service fetches signing keys and Entra metadata and opens its TLS connections first;
      // with other suites running alongside, that can outlast 300 ms. These tests are about held requests, not cold starts.
      for (let attempt = 0; attempt < 5; attempt += 1) {
        const response = await service.http.get('/api/user').set({ Authorization: `Bearer ${await service.tokenFor('alice')}` });
        if (response.status === 404) break;
      }
    });
    afterAll(async () => {
      await service.close();
    });
    beforeEach(async () => {
      await resetTestService(service);
    });

    async function auth(): Promise<{ Authorization: string }> {
      return { Authorization: `Bearer ${await service.tokenFor('alice')}` };
    }

    it('Graph reading the mapping: answers 504 upstream_timeout', async () => {
      service.local.graph.faults.inject({ route: 'user.get', status: 200, delayMs: HELD_MS });

      const response = await service.http.get('/api/user').set(await auth());

      expectGenericFailure(response, 504, 'upstream_timeout');
    });

    it('Graph writing the mapping: answers 504 upstream_timeout and deletes the identity it created', async () => {
      service.local.graph.faults.inject({ route: 'extensions.create', status: 201, delayMs: HELD_MS });

      const response = await service.http.post('/api/user').set(await auth());

      expectGenericFailure(response, 504, 'upstream_timeout');
      expect(service.local.acs.counters.get('identities.create')).toBe(1);
      expect(service.local.acs.aliveIdentityIds()).toEqual([]);
      expectInvariants(service.local);
    });

    it('ACS creating the identity: answers 504 upstream_timeout and writes nothing to Graph', async () => {
      service.local.acs.faults.inject({ route: 'identities.create', status: 201, delayMs: HELD_MS });

      const response = await service.http.post('/api/user').set(await auth());

      expectGenericFailure(response, 504, 'upstream_timeout');
      expect(service.local.graph.counters.get('extensions.create')).toBe(0);
      expectInvariants(service.local);
    });

    it('ACS issuing a token: answers 504 upstream_timeout and keeps the mapping', async () => {
      const created = await service.http
        .post('/api/user')
        .set(await auth())
        .expect(201);
      service.local.acs.faults.inject({ route: 'identities.issueToken', status: 200, delayMs: HELD_MS });

      const response = await service.http.get('/api/token').set(await auth());

      expectGenericFailure(response, 504, 'upstream_timeout');
      expect(service.local.acs.isAlive(userBody(created).acsUserIdentity)).toBe(true);
      expectInvariants(service.local);
    });

    it('ACS deleting the identity: answers 504 upstream_timeout, keeps the mapping, and a retry finishes', async () => {
      const created = await service.http
        .post('/api/user')
        .set(await auth())
        .expect(201);
      service.local.acs.faults.inject({ route: 'identities.delete', status: 204, delayMs: HELD_MS });

      const response = await service.http.delete('/api/user').set(await auth());

      expectGenericFailure(response, 504, 'upstream_timeout');
      expect(service.local.acs.isAlive(userBody(created).acsUserIdentity)).toBe(true);
      expectInvariants(service.local);
      await service.http
        .delete('/api/user')
        .set(await auth())
        .expect(204);
      expect(service.local.acs.aliveIdentityIds()).toEqual([]);
      expectInvariants(service.local);
    });
  });

  describe('Microsoft Entra ID token endpoint (a fresh service per test: msal pauses after a 429/5xx)', () => {
    let service: TestService | undefined;
    afterEach(async () => {
      await service?.close();
      service = undefined;
    });

    async function start(env: Readonly<Record<string, string>> = {}): Promise<TestService> {
      service = await startTestService({ env });
      return service;
    }

    it.each<[string, FaultSpec]>([
      ['429 with Retry-After 7', { route: 'token', status: 429, retryAfterSeconds: 7 }],
      ['503', { route: 'token', status: 503, retryAfterSeconds: 7 }],
      ['500', { route: 'token', status: 500 }],
    ])('%s: answers 503 upstream_throttled with Retry-After, and the next request too, without reaching Entra', async (_name, fault) => {
      const { local, http, tokenFor } = await start();
      local.entra.faults.inject(fault);

      const first = await http.get('/api/user').set({ Authorization: `Bearer ${await tokenFor('alice')}` });

      expectGenericFailure(first, 503, 'upstream_throttled');
      expect(retryAfterOf(first)).toBeGreaterThanOrEqual(1);
      expect(local.entra.counters.get('token')).toBe(1);

      // The fault is used up; msal itself now refuses within the window, before any request is sent.
      const second = await http.get('/api/user').set({ Authorization: `Bearer ${await tokenFor('alice')}` });

      expectGenericFailure(second, 503, 'upstream_throttled');
      expect(retryAfterOf(second)).toBeGreaterThanOrEqual(1);
      expect(local.entra.counters.get('token')).toBe(1);
      expect(local.graph.counters.total()).toBe(0);
    });

    it('no answer in time (UPSTREAM_TIMEOUT_MS=300): answers 504 upstream_timeout', async () => {
      const { local, http, tokenFor } = await start(TIMEOUT_ENV);
      local.entra.faults.inject({ route: 'token', status: 200, delayMs: HELD_MS });

      const response = await http.post('/api/user').set({ Authorization: `Bearer ${await tokenFor('alice')}` });

      expectGenericFailure(response, 504, 'upstream_timeout');
      expect(local.acs.counters.total()).toBe(0);
    });

    it('a dropped connection: answers 503 upstream_unavailable', async () => {
      const { local, http, tokenFor } = await start();
      local.entra.faults.inject({ route: 'token', status: 500, dropConnection: true });

      const response = await http.post('/api/user').set({ Authorization: `Bearer ${await tokenFor('alice')}` });

      expectGenericFailure(response, 503, 'upstream_unavailable');
      expect(local.acs.counters.total()).toBe(0);
    });

    it('admin erasure with the app-only token throttled: answers 503 and erases nothing', async () => {
      const { local, http, tokenFor } = await start();
      const created = await http
        .post('/api/user')
        .set({ Authorization: `Bearer ${await tokenFor('bob')}` })
        .expect(201);
      local.entra.faults.inject({ route: 'token', status: 429, retryAfterSeconds: 7 });

      const response = await http
        .delete(`/api/user/${DEMO_USERS.bob.oid}`)
        .set({ Authorization: `Bearer ${await tokenFor('alice', { roles: ['AcsAuth.Admin'] })}` });

      expectGenericFailure(response, 503, 'upstream_throttled');
      expect(local.acs.isAlive(userBody(created).acsUserIdentity)).toBe(true);
      expectInvariants(local);
    });
  });
});
