import { errorBody } from '../helpers/bodies';
import { storeFaultsOf } from '../helpers/store-faults';
import { MAPPING_STORES, startTestService, type TestService } from '../helpers/test-service';

/**
 * Retries are bounded and honour Retry-After, but a request is never held for a long Retry-After:
 * the caller gets 503 with that Retry-After at once and decides itself.
 */
describe('upstream retries (UPSTREAM_MAX_RETRIES=2)', () => {
  let service: TestService;
  let alice: Record<string, string>;

  beforeAll(async () => {
    service = await startTestService({ env: { UPSTREAM_MAX_RETRIES: '2', UPSTREAM_TIMEOUT_MS: '8000' } });
    alice = { Authorization: `Bearer ${await service.tokenFor('alice')}` };
    await service.http.post('/api/user').set(alice).expect(201);
  });
  afterEach(() => {
    service.local.acs.faults.clear();
  });
  afterAll(async () => {
    await service.close();
  });

  describe('when ACS throttles', () => {
    it('retries a short Retry-After and succeeds', async () => {
      const before = service.local.acs.counters.get('identities.issueToken');
      service.local.acs.faults.inject({ route: 'identities.issueToken', status: 429, retryAfterSeconds: 1, times: 1 });
      await service.http.get('/api/token').set(alice).expect(201);
      expect(service.local.acs.counters.get('identities.issueToken') - before).toBe(2);
    });

    it('answers 503 with the long Retry-After at once, without retrying', async () => {
      const before = service.local.acs.counters.get('identities.issueToken');
      service.local.acs.faults.inject({ route: 'identities.issueToken', status: 429, retryAfterSeconds: 30, times: Infinity });
      const response = await service.http.get('/api/token').set(alice).expect(503);
      expect(errorBody(response).code).toBe('upstream_throttled');
      expect(response.headers['retry-after']).toBe('30');
      expect(service.local.acs.counters.get('identities.issueToken') - before).toBe(1);
    });

    it('gives up after the retry count when ACS stays unavailable', async () => {
      const before = service.local.acs.counters.get('identities.issueToken');
      service.local.acs.faults.inject({ route: 'identities.issueToken', status: 429, retryAfterSeconds: 0, times: Infinity });
      await service.http.get('/api/token').set(alice).expect(503);
      expect(service.local.acs.counters.get('identities.issueToken') - before).toBe(3);
    });
  });
});

describe.each(MAPPING_STORES)('the %s store throttling (UPSTREAM_MAX_RETRIES=2)', (store) => {
  let service: TestService;
  let alice: Record<string, string>;
  const faults = () => storeFaultsOf(service);

  beforeAll(async () => {
    service = await startTestService({ store, env: { UPSTREAM_MAX_RETRIES: '2', UPSTREAM_TIMEOUT_MS: '8000' } });
    alice = { Authorization: `Bearer ${await service.tokenFor('alice')}` };
    await service.http.post('/api/user').set(alice).expect(201);
  });
  afterEach(() => faults().clear());
  afterAll(async () => {
    await service.close();
  });

  it('retries a short Retry-After and succeeds', async () => {
    const before = faults().reads();
    faults().throttleReads(429, 1, 1);
    await service.http.get('/api/user').set(alice).expect(200);
    expect(faults().reads() - before).toBe(2);
  });

  it('answers 503 with the long Retry-After at once, without retrying', async () => {
    const before = faults().reads();
    faults().throttleReads(429, 45, Infinity);
    const response = await service.http.get('/api/user').set(alice).expect(503);
    expect(errorBody(response).code).toBe('upstream_throttled');
    expect(response.headers['retry-after']).toBe('45');
    expect(faults().reads() - before).toBe(1);
  });
});
