import { createClient } from '@redis/client';
import supertest from 'supertest';

import { composeService, type ServiceRuntime } from '../../src/composition-root';
import { DEMO_USERS, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { createLogger } from '../../src/observability/logger';
import { mappingKey } from '../../src/services/mapping-cache';
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
    ({ redis, first, second } = await startTwoInstances({ RATE_LIMIT_PER_USER_PER_MINUTE: String(LIMIT) }));
  }, 30_000);
  afterAll(() => stopTwoInstances({ redis, first, second }));

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

  it('keeps answering when Redis hangs with its connection open, and uses it again once it answers', async () => {
    redis.pause();
    try {
      // Each command has the service's own deadline (250 ms); after a miss Redis is left alone for a second.
      await expect(statusOn('first', 'bob')).resolves.toBe(404);
      await first.http.get('/health').expect(200, { status: 'ok', redis: 'unavailable' });
      await expect(statusOn('second', 'bob')).resolves.toBe(404);
    } finally {
      redis.resume();
    }
    await Promise.all([waitForRedis(first.http), waitForRedis(supertest(second.app))]);
  });

  it('does not believe a count in Redis that could lock a user out (anyone with access to the Redis can write one)', async () => {
    const writer = createClient({ url: redis.url });
    await writer.connect();
    const key = `acs-auth:rl:per-user:${mappingKey(LOCAL_TENANT_ID, DEMO_USERS.alice.oid)}`;
    await writer.sendCommand(['SET', key, '99999', 'PX', '9000000000000000']);
    await writer.close();
    // The instance's own count answers instead: alice has not been counted there.
    await expect(statusOn('first', 'alice')).resolves.toBe(404);
  });

  it('keeps answering when Redis dies (each instance counting for itself), and shares again once it is back', async () => {
    const logsBefore = first.logs.length;
    await redis.kill();
    const outage: number[] = [];
    for (let request = 0; request < LIMIT; request += 1) outage.push(await statusOn('first', 'carol'), await statusOn('second', 'carol'));
    // Per instance now: 5 on each, where the shared count would have refused the 6th.
    expect(outage).toEqual(Array.from({ length: LIMIT * 2 }, () => 404));
    await expect(statusOn('first', 'carol')).resolves.toBe(429);
    await first.http.get('/health').expect(200, { status: 'ok', redis: 'unavailable' });
    expect(
      first.logs
        .slice(logsBefore)
        .filter((line) => line['msg'] === 'shared state: Redis unavailable; each instance counts for itself until it is back'),
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

interface TwoInstances {
  readonly redis: TestRedis;
  readonly first: TestService;
  /** The second instance: the same settings and emulators, its own process state (caches, Redis connection). */
  readonly second: ServiceRuntime;
}

async function startTwoInstances(env: Readonly<Record<string, string>>): Promise<TwoInstances> {
  const redis = await startTestRedis();
  const first = await startTestService({ env: { REDIS_URL: redis.url, ...env } });
  const second = composeService(first.config, { logger: createLogger({ level: 'silent' }), trustedCaPem: first.local.caCertPem });
  await Promise.all([waitForRedis(first.http), waitForRedis(supertest(second.app))]);
  return { redis, first, second };
}

async function stopTwoInstances(fleet: Partial<TwoInstances>): Promise<void> {
  await fleet.second?.close();
  await fleet.first?.close();
  await fleet.redis?.stop();
}

/** Until the instance's /health says Redis is connected (it reconnects by itself, backing off up to 2 s). */
async function waitForRedis(http: ReturnType<typeof supertest>): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const health = (await http.get('/health')).body as { redis?: string };
    if (health.redis === 'connected') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the instance did not reconnect to Redis within 10 s');
}

describe("shared state on Redis: a delete on one instance reaches the other instance's mapping cache", () => {
  let redis: TestRedis;
  let first: TestService;
  let second: ServiceRuntime;

  beforeAll(async () => {
    ({ redis, first, second } = await startTwoInstances({}));
  }, 30_000);
  afterAll(() => stopTwoInstances({ redis, first, second }));

  /** alice gets a token on both instances, so both cache her mapping; returns her identity. */
  async function cachedOnBoth(): Promise<string> {
    const token = await first.tokenFor('alice');
    const created = await first.http.post('/api/token').set('Authorization', `Bearer ${token}`).expect(201);
    await supertest(second.app).get('/api/token').set('Authorization', `Bearer ${token}`).expect(201);
    expect(second.identities.cachedMappings()).toBe(1);
    return (created.body as { user: { communicationUserId: string } }).user.communicationUserId;
  }

  it('drops the deleted identity from the other instance at once: its next token request never asks ACS for it', async () => {
    await cachedOnBoth();
    const token = await first.tokenFor('alice');
    await first.http.delete('/api/user').set('Authorization', `Bearer ${token}`).expect(204);
    await until(() => second.identities.cachedMappings() === 0);

    const acsCalls = first.upstreamCalls().acs;
    const answer = await supertest(second.app).get('/api/token').set('Authorization', `Bearer ${token}`);
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({ code: 'identity_not_found' });
    // Read from the store, not from a stale cache: no token was asked of ACS for the deleted identity.
    expect(first.upstreamCalls().acs).toBe(acsCalls);
  });

  it('stays correct without Redis: the other instance learns of the delete from ACS, as without shared state', async () => {
    await cachedOnBoth();
    await redis.kill();
    const token = await first.tokenFor('alice');
    await first.http.delete('/api/user').set('Authorization', `Bearer ${token}`).expect(204);
    expect(second.identities.cachedMappings()).toBe(1);

    const answer = await supertest(second.app).get('/api/token').set('Authorization', `Bearer ${token}`);
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({ code: 'identity_not_found' });
    expect(second.identities.cachedMappings()).toBe(0);
    await redis.start();
  }, 30_000);

  it('ignores messages on the channel that are not mapping keys (anyone with access to the Redis can publish)', async () => {
    await Promise.all([waitForRedis(first.http), waitForRedis(supertest(second.app))]);
    await cachedOnBoth();
    const bob = await first.tokenFor('bob');
    await supertest(second.app).post('/api/token').set('Authorization', `Bearer ${bob}`).expect(201);
    expect(second.identities.cachedMappings()).toBe(2);

    const publisher = createClient({ url: redis.url });
    await publisher.connect();
    const channel = 'acs-auth:mapping-deleted';
    const alice = mappingKey(LOCAL_TENANT_ID, DEMO_USERS.alice.oid);
    for (const junk of ['', alice, `other ${alice}/more`, `other ${alice.toUpperCase()}`, `other ${alice} ${'x'.repeat(120)}`]) {
      await publisher.publish(channel, junk);
    }
    // Then a real one for bob: Redis delivers in order, so once bob is gone every message before it was read.
    await publisher.publish(channel, `other ${mappingKey(LOCAL_TENANT_ID, DEMO_USERS.bob.oid)}`);
    await until(() => second.identities.cachedMappings() === 1);
    await publisher.close();
    // alice's entry is the one left: her token comes from the cache, without a store read.
    const storeReads = first.upstreamCalls().graph;
    await supertest(second.app)
      .get('/api/token')
      .set('Authorization', `Bearer ${await first.tokenFor('alice')}`)
      .expect(201);
    expect(first.upstreamCalls().graph).toBe(storeReads);
  });

  it('serves a burst of token requests with one ACS issue (ACS_TOKEN_REUSE_SECONDS, 10 s by default with Redis)', async () => {
    expect(first.config.acs.tokenReuseSeconds).toBe(10);
    const carol = await first.tokenFor('carol');
    await first.http.post('/api/user').set('Authorization', `Bearer ${carol}`).expect(201);
    const issuesBefore = first.local.acs.counters.get('identities.issueToken');
    const burst = await Promise.all(Array.from({ length: 20 }, () => first.http.get('/api/token').set('Authorization', `Bearer ${carol}`)));
    expect(burst.map((answer) => answer.status)).toEqual(burst.map(() => 201));
    expect(new Set(burst.map((answer) => (answer.body as { token: string }).token)).size).toBe(1);
    expect(first.local.acs.counters.get('identities.issueToken') - issuesBefore).toBe(1);
  });

  it('never hands out a token revoked on the other instance', async () => {
    const carol = await first.tokenFor('carol');
    const kept = (await supertest(second.app).get('/api/token').set('Authorization', `Bearer ${carol}`).expect(201)).body as {
      token: string;
    };
    await expect(supertest(second.app).get('/api/token').set('Authorization', `Bearer ${carol}`)).resolves.toMatchObject({
      body: { token: kept.token },
    });

    await first.http.delete('/api/token').set('Authorization', `Bearer ${carol}`).expect(204);
    // The revoke reaches the other instance through Redis; until it has, that instance may still hold the old token.
    await untilAsync(async () => {
      const answer = await supertest(second.app).get('/api/token').set('Authorization', `Bearer ${carol}`).expect(201);
      return (answer.body as { token: string }).token !== kept.token;
    });
    // What it hands out now is a token ACS accepts, issued after the revoke.
    const fresh = (await supertest(second.app).get('/api/token').set('Authorization', `Bearer ${carol}`).expect(201)).body as {
      token: string;
    };
    await expect(first.local.acs.verifyAccessToken(fresh.token)).resolves.toMatchObject({ valid: true });
    await expect(first.local.acs.verifyAccessToken(kept.token)).resolves.toMatchObject({ valid: false });
  });
});

/** Until `condition` resolves true (polled every 25 ms, for at most 5 s). */
async function untilAsync(condition: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the condition did not hold within 5 s');
}

/** Until `condition` holds (polled every 25 ms, for at most 5 s). */
async function until(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 200 && !condition(); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 25));
  expect(condition()).toBe(true);
}
