import { errorBody, issuedTokenBody } from '../helpers/bodies';
import { useTestService } from '../helpers/test-service';

/**
 * msal-node refuses every On-Behalf-Of call for a while after one 429/5xx from Entra ID, whatever
 * the user. Users whose mapping is cached need no On-Behalf-Of for a token, so they keep working.
 */
describe('while Entra ID throttles token requests', () => {
  const service = useTestService();

  it('keeps issuing tokens to users with a cached mapping, and answers 503 with Retry-After to the rest', async () => {
    const alice = { Authorization: `Bearer ${await service.tokenFor('alice')}` };
    const bob = { Authorization: `Bearer ${await service.tokenFor('bob')}` };
    await service.http.post('/api/user').set(alice).expect(201);
    await service.http.get('/api/token').set(alice).expect(201);

    service.local.entra.faults.inject({ route: 'token', status: 429, retryAfterSeconds: 30, times: Infinity });
    const throttled = await service.http.post('/api/user').set(bob).expect(503);
    expect(errorBody(throttled).code).toBe('upstream_throttled');
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    // msal now blocks On-Behalf-Of for everyone without asking Entra again...
    const oboRequests = service.local.entra.counters.get('token');
    await service.http.get('/api/user').set(bob).expect(503);
    expect(service.local.entra.counters.get('token')).toBe(oboRequests);

    // ...but alice's token needs no On-Behalf-Of: only the ACS issue call.
    const graphCalls = service.local.graph.counters.total();
    for (let request = 0; request < 3; request += 1) {
      const issued = await service.http.get('/api/token').set(alice).expect(201);
      expect((await service.local.acs.verifyAccessToken(issuedTokenBody(issued).token)).valid).toBe(true);
    }
    expect(service.local.entra.counters.get('token')).toBe(oboRequests);
    expect(service.local.graph.counters.total()).toBe(graphCalls);
  });
});
