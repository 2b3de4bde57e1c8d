import supertest from 'supertest';

import { composeService, type ServiceRuntime } from '../../src/composition-root';
import { createLogger } from '../../src/observability/logger';
import { startTestRedis, type TestRedis } from '../helpers/redis-server';
import { startTestService, type TestService } from '../helpers/test-service';

/**
 * Two instances of the service on the same emulators and one real redis-server (REDIS_URL), as a scaled-out App
 * Service runs: the per-user limit is counted across both; when Redis dies each instance counts for itself and
 * keeps answering; when Redis is back the count is shared again. No mock of the Redis client.
 */
const LIMIT = 5;

describe('shared state on Redis: two instances', () => {
  let redis: TestRedis;
  let first: TestService;
  let second: ServiceRuntime;

  beforeAll(async () => {
    redis = await startTestRedis();
    first = await startTestService({ env: { REDIS_URL: redis.url, RATE_LIMIT_PER_USER_PER_MINUTE: String(LIMIT) } });
    // The second instance: the same settings and emulators, its own process state (caches, Redis connection).
    second = composeService(first.config, { logger: createLogger({ level: 'silent' }), trustedCaPem: first.local.caCertPem });
    await Promise.all([waitForRedis(first.http), waitForRedis(supertest(second.app))]);
  }, 30_000);
  afterAll(async () => {
    await second?.close();
    await first?.close();
    await redis?.stop();
  });

  /** GET /api/user as `user` on an instance: 404 (no identity yet) while under the limit, 429 past it. */
  async function statusOn(instance: 'first' | 'second', user: 'alice' | 'bob' | 'carol'): Promise<number> {
    const http = instance === 'first' ? first.http : supertest(second.app);
    return (await http.get('/api/user').set('Authorization', `Bearer ${await first.tokenFor(user)}`)).status;
  }

  it('says in /health that the counts are shared', async () => {
    await first.http.get('/health').expect(200, { status: 'ok', redis: 'connected' });
  });

  it("counts a user's requests on both instances against one limit", async () => {
    const statuses: number[] = [];
    for (let request = 0; request < LIMIT; request += 1) statuses.push(await statusOn(request % 2 === 0 ? 'first' : 'second', 'alice'));
    expect(statuses).toEqual(Array.from({ length: LIMIT }, () => 404));
    const refused = await supertest(second.app)
      .get('/api/user')
      .set('Authorization', `Bearer ${await first.tokenFor('alice')}`);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'too_many_requests' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Another user has a count of their own.
    await expect(statusOn('first', 'bob')).resolves.toBe(404);
  });

  it('keeps answering when Redis dies (each instance counting for itself), and shares again once it is back', async () => {
    await redis.kill();
    const outage: number[] = [];
    for (let request = 0; request < LIMIT; request += 1) outage.push(await statusOn('first', 'carol'), await statusOn('second', 'carol'));
    // Per instance now: 5 on each, where the shared count would have refused the 6th.
    expect(outage).toEqual(Array.from({ length: LIMIT * 2 }, () => 404));
    await expect(statusOn('first', 'carol')).resolves.toBe(429);
    await first.http.get('/health').expect(200, { status: 'ok', redis: 'unavailable' });
    expect(
      first.logs.filter((line) => line['msg'] === 'shared state: Redis unavailable; each instance counts for itself until it is back'),
    ).toHaveLength(1);

    await redis.start();
    await Promise.all([waitForRedis(first.http), waitForRedis(supertest(second.app))]);
    // A fresh Redis: bob's count starts again, shared by both instances.
    const shared: number[] = [];
    for (let request = 0; request < LIMIT; request += 1) shared.push(await statusOn(request % 2 === 0 ? 'second' : 'first', 'bob'));
    expect(shared).toEqual(Array.from({ length: LIMIT }, () => 404));
    await expect(statusOn('first', 'bob')).resolves.toBe(429);
  }, 30_000);
});

/** Until the instance's /health says Redis is connected (it reconnects by itself, backing off up to 2 s). */
async function waitForRedis(http: ReturnType<typeof supertest>): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const health = (await http.get('/health')).body as { redis?: string };
    if (health.redis === 'connected') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the instance did not reconnect to Redis within 10 s');
}
