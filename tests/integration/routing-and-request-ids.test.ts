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
      const response = await service.http.get('/api/nope').set(await auth()).expect(404);

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
      const response = await service.http.put('/api/user').set(await auth()).expect(404);

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
      const created = await service.http.post('/api/user').set(await auth()).expect(201);
      service.local.graph.faults.inject({ route: 'user.get', status: 503 });
      const failed = await service.http.get('/api/user').set(await auth()).expect(503);

      expect(created.headers['x-request-id']).toMatch(UUID);
      expect(failed.headers['x-request-id']).toMatch(UUID);
      expect(failed.body.requestId).toBe(failed.headers['x-request-id']);
      expect(failed.headers['x-request-id']).not.toBe(created.headers['x-request-id']);
    });

    it('echoes a well-formed x-ms-client-request-id in both headers and the error body', async () => {
      const clientId = 'c0ffee00-1234-4abc-9def-0123456789ab';

      const response = await service.http.get('/api/user').set(await auth()).set('x-ms-client-request-id', clientId).expect(404);

      expect(response.headers['x-request-id']).toBe(clientId);
      expect(response.headers['x-ms-client-request-id']).toBe(clientId);
      expect(response.body.requestId).toBe(clientId);
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
