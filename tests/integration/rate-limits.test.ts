import { expect } from '@jest/globals';

import { errorBody } from '../helpers/bodies';
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

  // App Service's front end writes the client into X-Forwarded-For as `ip:port`, a new port per
  // connection; IPv6 clients in brackets. One client must stay one key, whatever the port or notation.
  describe('behind App Service (TRUST_PROXY=1), X-Forwarded-For with the source port', () => {
    const service = useTestService({ env: { RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '3', TRUST_PROXY: '1' } });

    it.each([
      [
        'IPv4 with a new port each time',
        ['203.0.113.20:50001', '203.0.113.20:50002', '203.0.113.20:50003'],
        '203.0.113.20:50004',
        '203.0.113.30:50001',
      ],
      [
        'IPv6 in brackets with a port, and bare',
        ['[2001:db8:20::1]:50001', '[2001:db8:20::1]:443', '2001:db8:20::1'],
        '[2001:db8:20::1]:50002',
        '[2001:db8:30::1]:50001',
      ],
      [
        'IPv4-mapped IPv6 and IPv4, with and without a port',
        ['::ffff:203.0.113.21', '[::ffff:203.0.113.21]:50001', '203.0.113.21'],
        '203.0.113.21:50002',
        '203.0.113.31',
      ],
    ])('%s: counts one client, and another client apart', async (_shape, within, over, another) => {
      for (const address of within) await service.http.get('/api/user').set('X-Forwarded-For', address).expect(401);

      const refused = await service.http.get('/api/user').set('X-Forwarded-For', over).expect(429);

      expect(refused.body).toMatchObject({ code: 'too_many_requests' });
      await service.http.get('/api/user').set('X-Forwarded-For', another).expect(401);
    });
  });

  // Front Door appends the address it saw (no port) to whatever X-Forwarded-For the client sent, and
  // App Service then appends Front Door's `ip:port`: two trusted hops, and X-Azure-ClientIP is ignored.
  describe('behind Front Door and App Service (TRUST_PROXY=2)', () => {
    const service = useTestService({ env: { RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '2', TRUST_PROXY: '2' } });

    it('counts the client Front Door saw, whatever it forged and whichever edge and port forwarded it', async () => {
      const send = (forwardedFor: string, clientIp: string) =>
        service.http
          .get('/api/user')
          .set('X-Forwarded-For', forwardedFor)
          .set('X-Azure-ClientIP', clientIp)
          .set('X-Azure-SocketIP', '198.51.100.30');
      await send('198.51.100.30, 147.243.10.1:50001', '198.51.100.30').expect(401);
      await send('10.0.0.1, 198.51.100.30, 147.243.10.2:50002', '10.0.0.1').expect(401);

      await send('10.0.0.2, 198.51.100.30, 147.243.10.1:50003', '10.0.0.2').expect(429);
      await send('198.51.100.31, 147.243.10.1:50004', '198.51.100.31').expect(401);
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
      expect(errorBody(refused).code).toBe('too_many_requests');
      // Seconds until the user's one-minute window frees a request.
      expect(refused.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
      expect(service.upstreamCalls()).toEqual(before);
      await service.http.get('/api/user').set(bob).expect(404);
    });
  });
});
