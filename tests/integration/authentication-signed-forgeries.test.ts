import { generateKeyPairSync } from 'node:crypto';

import type { JWK } from 'jose';

import { expectErrorBody, INVALID_TOKEN_CHALLENGE, upstreamWork } from '../helpers/auth-assertions';
import { errorBody } from '../helpers/bodies';
import { createPublishedKey, decodeToken, type PublishedKey } from '../helpers/forged-tokens';
import { type TestService, useTestService } from '../helpers/test-service';

/**
 * Tokens whose signature verifies, because the tenant's keys endpoints publish a key the test holds
 * (the Entra emulator is told to serve it, as Entra serves its own): each stands for a token only
 * Entra could sign, so a refusal can come only from the one thing the test changed. Also the keys
 * documents the service cannot use, which are never the caller's fault (503, not 401).
 *
 * Observed on an unknown /api route, as in authentication-keys.test.ts: 404 once the token passes.
 */

const PROBE = '/api/no-such-route';

function probe(service: TestService, token: string): ReturnType<TestService['http']['get']> {
  return service.http.get(PROBE).set('Authorization', `Bearer ${token}`);
}

/** Make both keys documents of the tenant list exactly these keys, from now on. */
function publish(service: TestService, keys: readonly JWK[]): void {
  for (const route of ['keys.v1', 'keys.v2']) {
    service.local.entra.faults.inject({ route, status: 200, body: { keys }, times: Infinity });
  }
}

interface Forgery {
  readonly name: string;
  readonly forge: (key: PublishedKey, token: string) => string;
  readonly reason: RegExp;
}

let attackerKey: JWK | undefined;
/** A public key the attacker holds, to embed in the header. */
function attackerJwk(): JWK {
  attackerKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }) as JWK;
  return attackerKey;
}

const FORGERIES: readonly Forgery[] = [
  {
    // Used to answer 503 upstream_unavailable with an error log: jose's "not supported" fell through.
    name: 'a crit header naming an extension the service does not implement',
    forge: (key, token) => key.resign(token, { header: { crit: ['urn:example:policy'], 'urn:example:policy': 'strict' } }),
    reason: /critical extension \(crit\)/,
  },
  {
    name: 'no kid (the keys document has a single key, which jose would pick)',
    forge: (key, token) => key.resign(token, { header: { kid: undefined, x5t: undefined } }),
    reason: /does not name its signing key \(kid\)/,
  },
  {
    name: 'a kid that is not a string',
    forge: (key, token) => key.resign(token, { header: { kid: 7 } }),
    reason: /does not name its signing key \(kid\)/,
  },
  {
    name: 'zip (a JWE compression) on a signed token',
    forge: (key, token) => key.resign(token, { header: { zip: 'DEF' } }),
    reason: /carries 'zip'/,
  },
  {
    name: 'b64 false without crit (RFC 7797 unencoded payload, ignored by jose)',
    forge: (key, token) => key.resign(token, { header: { b64: false } }),
    reason: /carries 'b64'/,
  },
  {
    name: 'b64 false named in crit',
    forge: (key, token) => key.resign(token, { header: { b64: false, crit: ['b64'] } }),
    reason: /carries 'b64'/,
  },
  {
    name: 'jku pointing at an attacker-controlled keys document',
    forge: (key, token) => key.resign(token, { header: { jku: 'https://attacker.example/keys' } }),
    reason: /carries 'jku'/,
  },
  {
    name: 'an embedded jwk',
    forge: (key, token) => key.resign(token, { header: { jwk: attackerJwk() } }),
    reason: /carries 'jwk'/,
  },
  {
    name: 'x5u pointing at a certificate chain',
    forge: (key, token) => key.resign(token, { header: { x5u: 'https://attacker.example/chain.pem' } }),
    reason: /carries 'x5u'/,
  },
  {
    name: 'an embedded x5c chain',
    forge: (key, token) => key.resign(token, { header: { x5c: ['MIIB'] } }),
    reason: /carries 'x5c'/,
  },
  {
    // Already refused before this change; kept as the audit's evidence for "an unknown alg".
    name: 'an algorithm jose does not know (RS1024)',
    forge: (key, token) => key.resign(token, { header: { alg: 'RS1024' } }),
    reason: /RS256/,
  },
];

describe('tokens signed by a key the tenant publishes', () => {
  const service = useTestService();
  const key = createPublishedKey();
  beforeAll(() => {
    publish(service, [key.jwk]);
  });

  it('accepts a token re-signed with that key and nothing else changed (control)', async () => {
    const token = key.resign(await service.tokenFor('alice'));
    expect(decodeToken(token).header['kid']).toBe(key.kid);

    await probe(service, token).expect(404);
  });

  describe.each([1, 2] as const)('with v%s claims', (version) => {
    it.each(FORGERIES)('answers 401 invalid_token to $name, without any upstream call', async ({ forge, reason }) => {
      const token = forge(key, await service.tokenFor('alice', { version }));
      const before = upstreamWork(service);

      const response = await probe(service, token);

      expect(response.status).toBe(401);
      expectErrorBody(response, 'invalid_token', reason);
      expect(response.headers['www-authenticate']).toMatch(INVALID_TOKEN_CHALLENGE);
      expect(upstreamWork(service)).toEqual(before);
      // A refusal of the caller's token is not the service's failure: no error-level log line.
      expect(service.logs.filter((line) => line['requestId'] === errorBody(response).requestId && line['level'] === 'error')).toEqual([]);
    });
  });
});

describe('keys documents the service cannot use', () => {
  // These are the keys endpoint's fault, not the token's: 503 with an error log, and no bearer challenge.
  describe('when two keys share the token kid', () => {
    const service = useTestService();
    const key = createPublishedKey();
    beforeAll(() => {
      publish(service, [key.jwk, { ...createPublishedKey().jwk, kid: key.kid }]);
    });

    it('answers 503 upstream_unavailable, not 401', async () => {
      const response = await probe(service, key.resign(await service.tokenFor('alice')));

      expect(response.status).toBe(503);
      expectErrorBody(response, 'upstream_unavailable', /unavailable/);
      expect(response.headers['www-authenticate']).toBeUndefined();
      expect(service.logs).toContainEqual(
        expect.objectContaining({ code: 'upstream_unavailable', requestId: errorBody(response).requestId }),
      );
    });
  });

  describe('when the key the token names is too weak for RS256 (1024 bits)', () => {
    // Already 503 before this change; kept as the evidence for keys that are found but cannot be used.
    const service = useTestService();
    const key = createPublishedKey({ modulusLength: 1024 });
    beforeAll(() => {
      publish(service, [key.jwk]);
    });

    it('answers 503 upstream_unavailable, not 401', async () => {
      const response = await probe(service, key.resign(await service.tokenFor('alice')));

      expect(response.status).toBe(503);
      expectErrorBody(response, 'upstream_unavailable', /unavailable/);
      expect(response.headers['www-authenticate']).toBeUndefined();
    });
  });
});
