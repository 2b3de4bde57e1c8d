import { expect } from '@jest/globals';
import fc from 'fast-check';

import { MAPPING_STORES, startTestService, type TestService } from '../helpers/test-service';

/**
 * Property-based fuzzing of the request surface: methods, paths, headers (including huge and
 * repeated Authorization), bodies of any content type and size, and query strings. Whatever
 * arrives, the service answers deliberately (never 5xx, never a crash), makes no upstream call for
 * a request without a valid token, and stays healthy.
 */
const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'options', 'head'] as const;
const KNOWN_PATHS = [
  '/api/user',
  '/api/token',
  '/api/token/teams',
  '/api/user/4e3bceae-c3d6-4f18-af3b-e572b99fb2f1',
  '/health',
  '/api/openapi.json',
  '/',
];

const visible = fc.string({
  unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/=:;,!*()[]{}"\' '.split('')),
  maxLength: 200,
});
const segment = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._~-]{1,40}$/),
  fc.constantFrom('%00', '%ff', '%2e%2e', '..', '%2F', '%E2%82%AC', '%', '%zz', 'api', 'user', 'token', 'teams', ':id', '*'),
);
const path = fc.oneof(
  fc.constantFrom(...KNOWN_PATHS),
  fc.array(segment, { minLength: 0, maxLength: 6 }).map((parts) => `/${parts.join('/')}`),
  fc.constantFrom(...KNOWN_PATHS).chain((base) => fc.array(segment, { maxLength: 2 }).map((parts) => [base, ...parts].join('/'))),
);
const query = fc.dictionary(
  fc.stringMatching(/^[A-Za-z0-9_[\].-]{1,20}$/),
  fc.oneof(visible, fc.constantFrom('chat', 'voip', '60', '1440', '-1', '1e9')),
  { maxKeys: 4 },
);

type AuthKind = 'none' | 'garbage' | 'scheme-only' | 'basic' | 'huge' | 'repeated' | 'valid';
const authKind = fc.constantFrom<AuthKind>('none', 'garbage', 'scheme-only', 'basic', 'huge', 'repeated', 'valid');

const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/xml',
  'application/merge-patch+json',
);
const body = fc.oneof(
  fc.constant(undefined),
  visible,
  fc.json({ maxDepth: 3 }),
  fc.record({ teamsUserAadToken: fc.oneof(visible, fc.integer(), fc.constant(null)) }).map((value) => JSON.stringify(value)),
  fc.integer({ min: 1, max: 64 }).map((kb) => 'x'.repeat(kb * 1024)),
  fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
);

describe.each(MAPPING_STORES)('fuzzing the HTTP surface (%s store)', (store) => {
  let service: TestService;
  let validToken: string;
  const statuses = new Map<number, number>();

  beforeAll(async () => {
    service = await startTestService({ store });
    validToken = await service.tokenFor('carol');
  });
  afterAll(async () => {
    await service.close();
  });

  function authorization(kind: AuthKind, noise: string): string | string[] | undefined {
    switch (kind) {
      case 'none':
        return undefined;
      case 'garbage':
        return noise;
      case 'scheme-only':
        return 'Bearer ';
      case 'basic':
        return `Basic ${Buffer.from(noise).toString('base64')}`;
      case 'huge':
        return `Bearer ${'A'.repeat(12 * 1024)}.${noise.replace(/[^A-Za-z0-9]/g, '')}`;
      case 'repeated':
        return [`Bearer ${validToken}`, `Bearer ${noise.replace(/[^A-Za-z0-9.]/g, '') || 'x'}`];
      case 'valid':
        return `Bearer ${validToken}`;
    }
  }

  it('answers every request deliberately, and only a valid token reaches an upstream', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          method: fc.constantFrom(...METHODS),
          path,
          query,
          auth: authKind,
          noise: visible,
          contentType,
          body,
          teams: fc.option(visible),
        }),
        async (input) => {
          const before = service.upstreamCalls();
          const tokenRequestsBefore = service.local.entra.counters.get('token');
          let request = service.http[input.method](input.path).query(input.query);
          const auth = authorization(input.auth, input.noise);
          if (auth !== undefined) request = request.set('Authorization', auth as string);
          if (input.contentType !== undefined) request = request.set('Content-Type', input.contentType);
          if (input.teams !== null) request = request.set('teams-user-aad-token', input.teams);
          const response = await (input.body !== undefined && input.method !== 'get' && input.method !== 'head'
            ? request.send(input.body)
            : request);

          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          if (response.status >= 500)
            throw new Error(`answered ${response.status} ${response.text.slice(0, 200)} to ${input.method} ${input.path}`);
          if (input.method !== 'head' && response.status >= 400) {
            expect(response.headers['content-type']).toMatch(/^application\/json/);
            expect(response.body).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
          }
          const carriesValidToken = input.auth === 'valid' || input.auth === 'repeated';
          if (!carriesValidToken) {
            const after = service.upstreamCalls();
            expect({
              graph: after.graph,
              acs: after.acs,
              storage: after.storage,
              oboRequests: service.local.entra.counters.get('token'),
            }).toEqual({
              graph: before.graph,
              acs: before.acs,
              storage: before.storage,
              oboRequests: tokenRequestsBefore,
            });
          }
        },
      ),
      { numRuns: 400, seed: 20261123 },
    );

    // The run must have reached past authentication into the routes, not only bounced off it.
    const seen = [...statuses.keys()];
    expect(seen).toEqual(expect.arrayContaining([200, 401, 404]));
    expect(seen.some((status) => status === 201 || status === 400)).toBe(true);
    await service.http.get('/health').expect(200);
    const token = await service.tokenFor('alice');
    await service.http
      .post('/api/user')
      .set('Authorization', `Bearer ${token}`)
      .expect((res) => expect([200, 201]).toContain(res.status));
  }, 120_000);
});
