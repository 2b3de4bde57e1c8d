import { expect } from '@jest/globals';

import { errorBody } from '../helpers/bodies';
import { resetTestService } from '../helpers/invariants';
import { useTestService } from '../helpers/test-service';

/**
 * What every response shares: unknown routes answer JSON 404s, malformed bodies answer 400s, and
 * every response names its request (`x-request-id`, echoing a well-formed client-chosen id).
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('routing and request ids', () => {
  const service = useTestService();
  beforeEach(async () => {
    await resetTestService(service);
  });

  async function auth(): Promise<{ Authorization: string }> {
    return { Authorization: `Bearer ${await service.tokenFor('alice')}` };
  }

  describe('unknown routes', () => {
    it('/api/nope with a valid token: answers 404 JSON not_found', async () => {
      const response = await service.http
        .get('/api/nope')
        .set(await auth())
        .expect(404);

      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.body).toEqual({ code: 'not_found', message: expect.any(String), requestId: expect.any(String) });
      expect(service.upstreamCalls().graph + service.upstreamCalls().acs).toBe(0);
    });

    it('/nope: answers 404 JSON not_found', async () => {
      const response = await service.http.get('/nope').expect(404);

      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.body).toMatchObject({ code: 'not_found' });
    });

    it('an unsupported method on a known path: answers 404 JSON, not an HTML page', async () => {
      const response = await service.http
        .put('/api/user')
        .set(await auth())
        .expect(404);

      expect(response.body).toMatchObject({ code: 'not_found' });
    });
  });

  describe('malformed request bodies', () => {
    it('invalid JSON: answers 400 bad_request, never 500', async () => {
      const response = await service.http
        .post('/api/token/teams')
        .set(await auth())
        .set('Content-Type', 'application/json')
        .send('{"teamsUserAadToken": ')
        .expect(400);

      expect(response.body).toMatchObject({ code: 'bad_request' });
    });

    const teamsBody = JSON.stringify({ teamsUserAadToken: 'not-a-real-teams-token' });
    it.each([
      ['UTF-8 labelled utf-16', Buffer.from(teamsBody, 'utf8')],
      ['really UTF-16 (with a byte order mark)', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(teamsBody, 'utf16le')])],
    ])('a JSON body with charset=utf-16, %s: answers 415 unsupported_media_type', async (_name, body) => {
      const response = await service.http
        .post('/api/token/teams')
        .set(await auth())
        .set('Content-Type', 'application/json; charset=utf-16')
        .send(body)
        .expect(415);

      expect(response.body).toMatchObject({ code: 'unsupported_media_type' });
      expect(service.upstreamCalls().acs).toBe(0);
    });
  });

  describe('absurdly long URLs', () => {
    const limit = 8192;

    it('answer 414 with the JSON error shape before anything else runs, on any path; a URL at the limit is served', async () => {
      // The request of issue 11: 15.6 KB of `eyJ` repeated, which the old log redaction scanned in quadratic time.
      const refused = await service.http.get(`/x/${'eyJ'.repeat(5200)}`).expect(414);
      const refusedUnderApi = await service.http.get(`/api/user?padding=${'a'.repeat(limit)}`).expect(414);
      const atLimit = await service.http.get(`/nope/${'a'.repeat(limit - '/nope/'.length)}`).expect(404);

      expect(refused.headers['content-type']).toMatch(/^application\/json/);
      expect(refused.body).toEqual({
        code: 'uri_too_long',
        message: expect.stringMatching(/8192/),
        requestId: refused.headers['x-request-id'],
      });
      // Refused before authentication: no challenge, no token verified.
      expect(refusedUnderApi.body).toMatchObject({ code: 'uri_too_long' });
      expect(refusedUnderApi.headers['www-authenticate']).toBeUndefined();
      expect(atLimit.body).toMatchObject({ code: 'not_found' });
      await service.http.get('/health').expect(200);
    });
  });

  describe('tokens in the path', () => {
    it('are masked where the length cut goes through them, in the log line and in the 404 message', async () => {
      const token = await service.tokenFor('alice');
      const [header = '', payload = ''] = token.split('.');
      // Puts the 256-character cut 20 characters into the payload: what is left of the token has one dot, not two.
      const filler = 'a'.repeat(256 - '/nope//'.length - header.length - 1 - 20);
      const path = `/nope/${filler}/${token}`;

      const response = await service.http.get(path).expect(404);

      const logged = service.logs.find((line) => line['msg'] === 'request' && line['requestId'] === response.headers['x-request-id']);
      const tokenStart = `${header}.${payload.slice(0, 10)}`;
      expect(String(logged?.['path'])).toContain('[redacted]');
      expect(String(logged?.['path'])).not.toContain(header);
      expect(errorBody(response).message).toContain('[redacted]');
      expect(errorBody(response).message).not.toContain(tokenStart);
    });

    it('are not echoed in the 400 of admin erasure, which quotes the start of a bad user id', async () => {
      const admin = await service.tokenFor('carol', { roles: [service.config.entra.adminRole] });

      const response = await service.http.delete(`/api/user/${admin}`).set('Authorization', `Bearer ${admin}`).expect(400);

      expect(response.body).toMatchObject({ code: 'bad_request', message: expect.stringContaining('[redacted]') });
      expect(errorBody(response).message).not.toContain(admin.slice(0, 20));
    });
  });

  describe('HEAD requests', () => {
    async function withIdentity(): Promise<{ Authorization: string }> {
      const headers = await auth();
      await service.http.post('/api/user').set(headers).expect(201);
      // Verify the token once, so the keys download is not counted below.
      await service.http.get('/api/nope').set(headers).expect(404);
      return headers;
    }

    it.each([
      ['/api/user', 'GET, POST, DELETE'],
      ['/api/token', 'GET, POST, DELETE'],
      ['/api/token/teams', 'GET, POST'],
    ] as const)('HEAD %s: answers 405 with Allow: %s, and calls no upstream', async (path, allow) => {
      const headers = await withIdentity();
      // What a GET /api/token/teams would exchange, so that the refusal is the only reason nothing happens.
      const teams = await service.local.entra.mintTeamsToken({ user: 'alice', appId: service.config.entra.teamsClientId });
      const before = service.upstreamCalls();

      const response = await service.http.head(path).set(headers).set('teams-user-aad-token', teams).expect(405);

      expect(response.headers['allow']).toBe(allow);
      expect(response.headers['x-request-id']).toMatch(UUID);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(service.upstreamCalls()).toEqual(before);
    });
  });

  describe('x-request-id', () => {
    it.each([
      ['GET /health (200)', () => service.http.get('/health'), 200],
      ['GET /api/user without a token (401)', () => service.http.get('/api/user'), 401],
      ['GET /nope (404)', () => service.http.get('/nope'), 404],
    ] as const)('is on %s', async (_name, send, status) => {
      const response = await send().expect(status);

      expect(response.headers['x-request-id']).toMatch(UUID);
    });

    it('is on a 201 and on an upstream failure, and differs per request', async () => {
      const created = await service.http
        .post('/api/user')
        .set(await auth())
        .expect(201);
      service.local.graph.faults.inject({ route: 'user.get', status: 503 });
      const failed = await service.http
        .get('/api/user')
        .set(await auth())
        .expect(503);

      expect(created.headers['x-request-id']).toMatch(UUID);
      expect(failed.headers['x-request-id']).toMatch(UUID);
      expect(errorBody(failed).requestId).toBe(failed.headers['x-request-id']);
      expect(failed.headers['x-request-id']).not.toBe(created.headers['x-request-id']);
    });

    it('echoes a well-formed x-ms-client-request-id in both headers and the error body', async () => {
      const clientId = 'c0ffee00-1234-4abc-9def-0123456789ab';

      const response = await service.http
        .get('/api/user')
        .set(await auth())
        .set('x-ms-client-request-id', clientId)
        .expect(404);

      expect(response.headers['x-request-id']).toBe(clientId);
      expect(response.headers['x-ms-client-request-id']).toBe(clientId);
      expect(errorBody(response).requestId).toBe(clientId);
    });

    it('echoes a well-formed x-request-id', async () => {
      const response = await service.http.get('/health').set('x-request-id', 'trace.42:abc').expect(200);

      expect(response.headers['x-request-id']).toBe('trace.42:abc');
    });

    it.each([
      ['with spaces and markup', 'id <script>'],
      ['too long', 'a'.repeat(200)],
      ['starting with a symbol', '-leading-dash'],
    ])('replaces a client id %s with a fresh one', async (_name, offered) => {
      const response = await service.http.get('/health').set('x-ms-client-request-id', offered).expect(200);

      expect(response.headers['x-request-id']).toMatch(UUID);
      expect(response.headers['x-ms-client-request-id']).toBe(response.headers['x-request-id']);
    });
  });
});
