import type { FaultSpec } from '../../src/local/kit/faults';
import { LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { expectErrorBody, INVALID_TOKEN_CHALLENGE, keyFetches, upstreamWork } from '../helpers/auth-assertions';
import { errorBody } from '../helpers/bodies';
import { decodeToken, signedByForeignKey } from '../helpers/forged-tokens';
import { type TestService, useTestService } from '../helpers/test-service';

/**
 * The signing keys behind token validation: the tenant's JWKS is cached, re-fetched when a token
 * names an unknown `kid` (at most once per cool-down), and a keys endpoint that cannot be read makes
 * the service unavailable (503) rather than calling every token invalid (401).
 *
 * Authentication is observed on an unknown /api route: it answers 404 `not_found` once the token has
 * passed, and calls no upstream, so the only Entra traffic is the keys documents.
 */

const PROBE = '/api/no-such-route';

function probe(service: TestService, token: string): ReturnType<TestService['http']['get']> {
  return service.http.get(PROBE).set('Authorization', `Bearer ${token}`);
}

describe('signing key rotation (ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS=0)', () => {
  // Shared: each story rolls from whatever key is current, so they do not depend on each other.
  const service = useTestService();

  describe.each([1, 2] as const)('with v%s tokens', (version) => {
    describe('when Entra rolls to a new key', () => {
      it('accepts a token signed by the new key, re-fetching the keys once', async () => {
        const route = version === 1 ? 'keys.v1' : 'keys.v2';
        await probe(service, await service.tokenFor('alice', { version })).expect(404);
        const fetched = service.local.entra.counters.get(route);

        const newKid = await service.local.entra.keys.roll();
        const token = await service.tokenFor('alice', { version });
        expect(decodeToken(token).header['kid']).toBe(newKid);

        const response = await probe(service, token);

        expect(response.status).toBe(404);
        expect(errorBody(response).code).toBe('not_found');
        expect(service.local.entra.counters.get(route)).toBe(fetched + 1);
      });
    });

    describe('when Entra retires the old key', () => {
      it('refuses a token signed by the retired key once the cache has been refreshed', async () => {
        const seenToken = await service.tokenFor('alice', { version });
        const unseenToken = await service.tokenFor('bob', { version });
        await probe(service, seenToken).expect(404);

        await service.local.entra.keys.roll();
        service.local.entra.keys.retire();
        // A token with the new kid makes the service re-fetch the keys, which no longer list the old one.
        await probe(service, await service.tokenFor('alice', { version })).expect(404);
        const before = upstreamWork(service);

        const response = await probe(service, unseenToken);

        expect(response.status).toBe(401);
        expectErrorBody(response, 'invalid_token', /unknown key/);
        expect(response.headers['www-authenticate']).toMatch(INVALID_TOKEN_CHALLENGE);
        expect(upstreamWork(service)).toEqual(before);
      });

      it('keeps a token it validated before the retirement for at most the validation cache time (5 minutes)', async () => {
        // Documented trade-off (docs/security.md): the exact token string already validated is
        // remembered for up to 5 minutes, less than the hour a key itself is cached.
        const seenToken = await service.tokenFor('carol', { version });
        await probe(service, seenToken).expect(404);
        await service.local.entra.keys.roll();
        service.local.entra.keys.retire();
        await probe(service, await service.tokenFor('alice', { version })).expect(404);

        await probe(service, seenToken).expect(404);
      });
    });
  });
});

describe('tokens with unknown kids (ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS=60)', () => {
  const service = useTestService({ env: { ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS: '60' } });

  it('refuses 20 of them with 401 and fetches the keys at most once more', async () => {
    const valid = await service.tokenFor('alice');
    await probe(service, valid).expect(404);
    const fetched = keyFetches(service);
    const before = upstreamWork(service);

    for (let i = 0; i < 20; i += 1) {
      const response = await probe(service, signedByForeignKey(valid));
      expect(response.status).toBe(401);
      expectErrorBody(response, 'invalid_token', /unknown key/);
      expect(response.headers['www-authenticate']).toMatch(INVALID_TOKEN_CHALLENGE);
    }

    expect(keyFetches(service) - fetched).toBeLessThanOrEqual(1);
    expect(upstreamWork(service)).toEqual(before);
    // The cache still serves the real key.
    await probe(service, valid).expect(404);
  });
});

describe('when the keys endpoint cannot be read (cache cold)', () => {
  // One service whose key caches stay cold through every failure (jose keeps no failed fetch), so
  // the stories run in order and the recovery comes last. The short timeout serves the timeout story.
  const service = useTestService({ env: { UPSTREAM_TIMEOUT_MS: '1000' } });
  afterEach(() => {
    service.local.entra.faults.clear();
  });

  interface KeysFailure {
    readonly name: string;
    readonly version: 1 | 2;
    readonly fault: FaultSpec & { readonly route: string };
  }
  const failures: readonly KeysFailure[] = [
    { name: 'the v1 keys answer 500', version: 1, fault: { route: 'keys.v1', status: 500 } },
    { name: 'the v2 keys answer 503', version: 2, fault: { route: 'keys.v2', status: 503, retryAfterSeconds: 5 } },
    { name: 'the v1 keys answer 404', version: 1, fault: { route: 'keys.v1', status: 404 } },
    { name: 'the v1 keys connection is dropped', version: 1, fault: { route: 'keys.v1', status: 500, dropConnection: true } },
    {
      name: 'the v2 keys answer 200 with something that is not a key set',
      version: 2,
      fault: { route: 'keys.v2', status: 200, body: { keys: 'none' } },
    },
  ];

  it.each(failures)('answers 503 upstream_unavailable when $name', async ({ version, fault }) => {
    service.local.entra.faults.inject(fault);
    const token = await service.tokenFor('alice', { version });
    const fetched = service.local.entra.counters.get(fault.route);
    const before = upstreamWork(service);

    const response = await probe(service, token);

    expect(response.status).toBe(503);
    expectErrorBody(response, 'upstream_unavailable', /unavailable/);
    // Not the caller's token at fault: no bearer challenge that would make a client re-authenticate.
    expect(response.headers['www-authenticate']).toBeUndefined();
    expect(service.local.entra.counters.get(fault.route)).toBe(fetched + 1);
    expect(upstreamWork(service)).toEqual(before);
    expect(service.logs).toContainEqual(
      expect.objectContaining({ code: 'upstream_unavailable', requestId: errorBody(response).requestId }),
    );
  });

  it('answers 504 upstream_timeout when the keys do not arrive in time', async () => {
    service.local.entra.faults.inject({ route: 'keys.v1', status: 500, delayMs: 3000 });
    const before = upstreamWork(service);

    const response = await probe(service, await service.tokenFor('alice'));

    expect(response.status).toBe(504);
    expectErrorBody(response, 'upstream_timeout', /did not answer in time/);
    expect(response.headers['www-authenticate']).toBeUndefined();
    expect(upstreamWork(service)).toEqual(before);
  });

  it('still refuses a token from another issuer with 401, without fetching the keys', async () => {
    service.local.entra.faults.inject({ route: 'keys.v1', status: 500, times: Infinity });
    service.local.entra.faults.inject({ route: 'keys.v2', status: 500, times: Infinity });
    const token = await service.tokenFor('alice', { version: 2, issuer: `https://login.microsoftonline.com/${LOCAL_TENANT_ID}/v2.0` });
    const fetched = keyFetches(service);

    const response = await probe(service, token);

    expect(response.status).toBe(401);
    expectErrorBody(response, 'invalid_token', /issuer/);
    expect(keyFetches(service)).toBe(fetched);
  });

  it.each([1, 2] as const)('recovers once the v%s keys can be read again: the failures were not cached', async (version) => {
    await probe(service, await service.tokenFor('alice', { version })).expect(404);
  });

  describe('and the keys were cached before the outage', () => {
    beforeEach(() => {
      service.local.entra.faults.inject({ route: 'keys.v1', status: 500, times: Infinity });
    });

    it('still accepts tokens signed by a cached key, without fetching the keys', async () => {
      const fetched = keyFetches(service);

      await probe(service, await service.tokenFor('bob')).expect(404);

      expect(keyFetches(service)).toBe(fetched);
    });

    it('answers 503 to a token with an unknown kid, since it cannot tell a rolled key from a forged one', async () => {
      const response = await probe(service, signedByForeignKey(await service.tokenFor('bob')));

      expect(response.status).toBe(503);
      expectErrorBody(response, 'upstream_unavailable', /unavailable/);
      expect(response.headers['www-authenticate']).toBeUndefined();
    });
  });
});
