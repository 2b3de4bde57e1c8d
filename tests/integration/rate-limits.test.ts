import { useTestService } from '../helpers/test-service';

describe('rate limits', () => {
  describe('per client address, before authentication', () => {
    const service = useTestService({ env: { RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '5', TRUST_PROXY: '1' } });

    it('answers 429 too_many_requests with Retry-After and RateLimit headers once the address is over its limit', async () => {
      const address = '203.0.113.10';
      for (let request = 0; request < 5; request += 1) {
        const response = await service.http.get('/api/user').set('X-Forwarded-For', address);
        expect(response.status).toBe(401);
        expect(response.headers['ratelimit']).toMatch(/"per-address"; r=\d+; t=\d+/);
      }
      const refused = await service.http.get('/api/user').set('X-Forwarded-For', address).expect(429);
      expect(refused.body).toMatchObject({ code: 'too_many_requests', message: expect.stringMatching(/address/) });
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(refused.headers['ratelimit-policy']).toMatch(/"per-address"; q=5; w=60/);
    });

    it('counts another client address (as App Service forwards it) separately', async () => {
      await service.http.get('/api/user').set('X-Forwarded-For', '203.0.113.11').expect(401);
    });

    it('does not limit the health check', async () => {
      for (let request = 0; request < 8; request += 1) await service.http.get('/health').set('X-Forwarded-For', '203.0.113.12').expect(200);
    });
  });

  describe('without TRUST_PROXY', () => {
    const service = useTestService({ env: { RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '3' } });

    it('ignores X-Forwarded-For, so a client cannot escape its limit by forging it', async () => {
      for (let request = 0; request < 3; request += 1) {
        await service.http.get('/api/user').set('X-Forwarded-For', `198.51.100.${request}`).expect(401);
      }
      await service.http.get('/api/user').set('X-Forwarded-For', '198.51.100.99').expect(429);
    });
  });

  describe('per user, after authentication', () => {
    const service = useTestService({ env: { RATE_LIMIT_PER_USER_PER_MINUTE: '3' } });

    it('limits each user on their own and makes no upstream call for a refused request', async () => {
      const alice = { Authorization: `Bearer ${await service.tokenFor('alice')}` };
      const bob = { Authorization: `Bearer ${await service.tokenFor('bob')}` };
      for (let request = 0; request < 3; request += 1) await service.http.get('/api/user').set(alice).expect(404);
      const before = service.upstreamCalls();
      const refused = await service.http.get('/api/user').set(alice).expect(429);
      expect(refused.body.code).toBe('too_many_requests');
      expect(refused.headers['retry-after']).toBeDefined();
      expect(service.upstreamCalls()).toEqual(before);
      await service.http.get('/api/user').set(bob).expect(404);
    });
  });
});
