import { randomBytes, createSecretKey } from 'node:crypto';

import { expect } from '@jest/globals';
import type { Response } from 'supertest';

import { ACS_ID_PROPERTY, SEAL_PROPERTY } from '../../src/adapters/graph/graph-mapping-store';
import { DEMO_USERS, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { acsResourceOf, createMappingSealer, mappingSealerOf } from '../../src/services/mapping-seal';
import { bodyMember, errorBody, issuedTokenBody, tokenBody, userBody } from '../helpers/bodies';
import { expectInvariants, mappedIdentityOf, resetTestService } from '../helpers/invariants';
import { mappingPropertiesOf, useGraphExplorer } from '../helpers/mappings';
import { ACS_ID, useTestService, type TestService } from '../helpers/test-service';
import { graphStoreOf } from '../helpers/store-config';

/**
 * The attack the seals close (docs/security.md, "Threat model"): the mapping extension is writable
 * by the user through any app they consented `User.ReadWrite` to, and ACS ids are not secret. The
 * attacker (bob) never calls this service to set anything up: he writes his own `/me` extension
 * with Graph Explorer's token, pointing at the victim's (alice's) identity, then drives every route.
 *
 * After every route and every forgery: no token for the victim's identity reached the attacker, the
 * victim's identity is alive and still mapped to her, and the token she already had is still valid.
 */

const VICTIM = DEMO_USERS.alice.oid;
const ATTACKER = DEMO_USERS.bob.oid;

interface Victim {
  readonly acsUserId: string;
  readonly seal: string;
  readonly token: string;
}

/** How the attacker's extension is forged, from what a user can learn or write. */
type Forgery = (victim: Victim, service: TestService) => Record<string, unknown> | Promise<Record<string, unknown>>;

const otherKey = { id: 'local', secret: createSecretKey(randomBytes(32)) };

const FORGERIES: readonly (readonly [string, Forgery])[] = [
  ["the victim's id, no seal (the reported attack)", (victim) => ({ [ACS_ID_PROPERTY]: victim.acsUserId })],
  ["the victim's whole sealed extension, copied", (victim) => ({ [ACS_ID_PROPERTY]: victim.acsUserId, [SEAL_PROPERTY]: victim.seal })],
  [
    'a seal for the attacker made for another ACS resource under the same key',
    (victim, service) => ({
      [ACS_ID_PROPERTY]: victim.acsUserId,
      [SEAL_PROPERTY]: createMappingSealer(
        graphStoreOf(service.config).sealKeys,
        acsResourceOf('https://staging.communication.azure.com/'),
      ).seal({ tid: LOCAL_TENANT_ID, oid: ATTACKER }, victim.acsUserId),
    }),
  ],
  [
    'a seal for the attacker made for another tenant',
    (victim, service) => ({
      [ACS_ID_PROPERTY]: victim.acsUserId,
      [SEAL_PROPERTY]: mappingSealerOf(service.config).seal(
        { tid: '00000000-0000-4000-8000-000000000000', oid: ATTACKER },
        victim.acsUserId,
      ),
    }),
  ],
  [
    'a seal for the attacker under a key the service does not hold (a retired one, with the same id)',
    (victim, service) => ({
      [ACS_ID_PROPERTY]: victim.acsUserId,
      [SEAL_PROPERTY]: createMappingSealer([otherKey], acsResourceOf(service.config.acs.auth.endpoint)).seal(
        { tid: LOCAL_TENANT_ID, oid: ATTACKER },
        victim.acsUserId,
      ),
    }),
  ],
  [
    'a seal under an unknown key id',
    (victim, service) => ({
      [ACS_ID_PROPERTY]: victim.acsUserId,
      [SEAL_PROPERTY]: createMappingSealer([{ ...otherKey, id: 'retired-2025' }], acsResourceOf(service.config.acs.auth.endpoint)).seal(
        { tid: LOCAL_TENANT_ID, oid: ATTACKER },
        victim.acsUserId,
      ),
    }),
  ],
  ["the victim's seal, truncated", (victim) => ({ [ACS_ID_PROPERTY]: victim.acsUserId, [SEAL_PROPERTY]: victim.seal.slice(0, -1) })],
  [
    "the victim's seal with one character changed",
    (victim) => ({ [ACS_ID_PROPERTY]: victim.acsUserId, [SEAL_PROPERTY]: flipLast(victim.seal) }),
  ],
  ['a seal that is a number', (victim) => ({ [ACS_ID_PROPERTY]: victim.acsUserId, [SEAL_PROPERTY]: 42 })],
  ['a seal that is an array of strings', (victim) => ({ [ACS_ID_PROPERTY]: victim.acsUserId, [SEAL_PROPERTY]: [victim.seal] })],
  ['a seal that is true', (victim) => ({ [ACS_ID_PROPERTY]: victim.acsUserId, [SEAL_PROPERTY]: true })],
  [
    // His own mapping as another instance of the service sealed it (so no cache of this instance knows it).
    "the attacker's own valid seal, with the id changed to the victim's",
    (victim, service) => ({
      [ACS_ID_PROPERTY]: victim.acsUserId,
      [SEAL_PROPERTY]: mappingSealerOf(service.config).seal({ tid: LOCAL_TENANT_ID, oid: ATTACKER }, service.local.acs.seedIdentity()),
    }),
  ],
  ['an id array holding the victim', (victim) => ({ [ACS_ID_PROPERTY]: [victim.acsUserId], [SEAL_PROPERTY]: victim.seal })],
];

function flipLast(seal: string): string {
  const last = seal.at(-2) === 'A' ? 'B' : 'A';
  return `${seal.slice(0, -2)}${last}${seal.slice(-1)}`;
}

async function authHeader(service: TestService, user: keyof typeof DEMO_USERS, roles?: string[]): Promise<{ Authorization: string }> {
  return { Authorization: `Bearer ${await service.tokenFor(user, roles ? { roles } : {})}` };
}

/** Each route as the attacker calls it, and what it must answer given a forged mapping. */
interface RouteCase {
  readonly name: string;
  readonly call: (service: TestService) => Promise<Response>;
  readonly status: number;
  readonly code?: string;
  /** An admin is told which identity the untrusted mapping names (the user never is). */
  readonly forAdmin?: boolean;
}

const teamsToken = (service: TestService): Promise<string> =>
  service.local.entra.mintTeamsToken({ user: 'bob', appId: service.config.entra.teamsClientId });

const ROUTES: readonly RouteCase[] = [
  {
    name: 'GET /api/user',
    call: async (s) => s.http.get('/api/user').set(await authHeader(s, 'bob')),
    status: 409,
    code: 'mapping_untrusted',
  },
  {
    name: 'GET /api/token',
    call: async (s) => s.http.get('/api/token').set(await authHeader(s, 'bob')),
    status: 409,
    code: 'mapping_untrusted',
  },
  {
    name: 'POST /api/token',
    call: async (s) => s.http.post('/api/token').set(await authHeader(s, 'bob')),
    status: 409,
    code: 'mapping_untrusted',
  },
  {
    name: 'DELETE /api/token',
    call: async (s) => s.http.delete('/api/token').set(await authHeader(s, 'bob')),
    status: 409,
    code: 'mapping_untrusted',
  },
  {
    name: 'GET /api/token/teams',
    call: async (s) =>
      s.http
        .get('/api/token/teams')
        .set(await authHeader(s, 'bob'))
        .set('teams-user-aad-token', await teamsToken(s)),
    status: 201,
  },
  {
    name: 'POST /api/token/teams',
    call: async (s) =>
      s.http
        .post('/api/token/teams')
        .set(await authHeader(s, 'bob'))
        .send({ teamsUserAadToken: await teamsToken(s) }),
    status: 201,
  },
  {
    name: 'POST /api/user (replaces the mapping)',
    call: async (s) => s.http.post('/api/user').set(await authHeader(s, 'bob')),
    status: 201,
  },
  {
    name: 'DELETE /api/user (removes the mapping only)',
    call: async (s) => s.http.delete('/api/user').set(await authHeader(s, 'bob')),
    status: 204,
  },
  {
    name: 'DELETE /api/user/{attacker} (an admin erases the attacker: refused, nothing deleted)',
    call: async (s) => s.http.delete(`/api/user/${ATTACKER}`).set(await authHeader(s, 'carol', [s.config.entra.adminRole])),
    status: 409,
    code: 'mapping_untrusted',
    forAdmin: true,
  },
];

describe('a mapping the attacker forged through Graph directly', () => {
  const service = useTestService();
  const explorer = useGraphExplorer(service);
  beforeEach(async () => {
    await resetTestService(service);
  });

  /** The victim signs up through the service and holds a token. */
  async function victimSignsUp(): Promise<Victim> {
    const issued = await service.http
      .post('/api/token')
      .set(await authHeader(service, 'alice'))
      .expect(201);
    const acsUserId = tokenBody(issued).user.communicationUserId;
    const seal = mappingPropertiesOf(service.local, VICTIM)?.[SEAL_PROPERTY];
    if (typeof seal !== 'string') throw new Error('the service wrote no seal for the victim');
    return { acsUserId, seal, token: issuedTokenBody(issued).token };
  }

  /** Nothing of the victim's reached the attacker, and nothing of hers changed. */
  async function expectVictimUntouched(victim: Victim, response: Response, options: { readonly forAdmin?: boolean } = {}): Promise<void> {
    if (!options.forAdmin) expect(JSON.stringify(response.body)).not.toContain(victim.acsUserId);
    const issued = bodyMember(response, 'token');
    if (typeof issued === 'string') {
      const verdict = await service.local.acs.verifyAccessToken(issued);
      expect(`8:${verdict.claims?.skypeid ?? ''}`).not.toBe(victim.acsUserId);
    }
    expect(service.local.acs.isAlive(victim.acsUserId)).toBe(true);
    expect(mappingPropertiesOf(service.local, VICTIM)).toEqual({ [ACS_ID_PROPERTY]: victim.acsUserId, [SEAL_PROPERTY]: victim.seal });
    expect(await service.local.acs.verifyAccessToken(victim.token)).toMatchObject({ valid: true });
    await service.http
      .get('/api/token')
      .set(await authHeader(service, 'alice'))
      .expect(201);
  }

  describe.each(FORGERIES)('%s', (_label, forge) => {
    it.each(ROUTES)('$name is refused for the victim identity', async (route) => {
      const victim = await victimSignsUp();
      await explorer().writeMapping(ATTACKER, await forge(victim, service));
      const acsCallsBefore = service.local.acs.counters.total();

      const response = await route.call(service);

      expect({ status: response.status, code: bodyMember(response, 'code') }).toEqual({ status: route.status, code: route.code });
      if (route.code === 'mapping_untrusted') {
        // Refused before ACS was asked anything.
        expect(service.local.acs.counters.total()).toBe(acsCallsBefore);
        expect(service.logs).toContainEqual(
          expect.objectContaining({ level: 'warn', oid: ATTACKER, action: 'refused', reason: expect.any(String) }),
        );
      }
      await expectVictimUntouched(victim, response, { forAdmin: route.forAdmin === true });
    });
  });

  describe('what each route leaves behind on the attacker', () => {
    let victim: Victim;
    beforeEach(async () => {
      victim = await victimSignsUp();
      await explorer().createMapping(ATTACKER, { [ACS_ID_PROPERTY]: victim.acsUserId });
    });

    it('POST /api/user gives the attacker a new identity of his own, sealed for him', async () => {
      const response = await service.http
        .post('/api/user')
        .set(await authHeader(service, 'bob'))
        .expect(201);

      const own = userBody(response).acsUserIdentity;
      expect(own).toMatch(ACS_ID);
      expect(mappedIdentityOf(service.local, ATTACKER)).toBe(own);
      expect(
        mappingSealerOf(service.config).verify(
          { tid: LOCAL_TENANT_ID, oid: ATTACKER },
          own,
          mappingPropertiesOf(service.local, ATTACKER)?.[SEAL_PROPERTY],
        ),
      ).toMatchObject({ trusted: true });
      await service.http
        .get('/api/user')
        .set(await authHeader(service, 'bob'))
        .expect(200, { acsUserIdentity: own });
      expect(service.logs).toContainEqual(expect.objectContaining({ level: 'warn', oid: ATTACKER, reason: 'no_seal', action: 'replaced' }));
      expectInvariants(service.local);
    });

    it('DELETE /api/user removes the forged mapping and deletes no identity', async () => {
      const deletesBefore = service.local.acs.counters.get('identities.delete');

      await service.http
        .delete('/api/user')
        .set(await authHeader(service, 'bob'))
        .expect(204);

      expect(service.local.graph.extensionsOf(ATTACKER)).toEqual([]);
      expect(service.local.acs.counters.get('identities.delete')).toBe(deletesBefore);
      expect(service.logs).toContainEqual(expect.objectContaining({ level: 'warn', oid: ATTACKER, reason: 'no_seal', action: 'removed' }));
    });

    it('admin erasure answers 409, names the identity to the admin, and changes nothing', async () => {
      const deletesBefore = service.local.acs.counters.get('identities.delete');
      const forged = mappingPropertiesOf(service.local, ATTACKER);

      const response = await service.http
        .delete(`/api/user/${ATTACKER}`)
        .set(await authHeader(service, 'carol', [service.config.entra.adminRole]))
        .expect(409);

      expect(response.body).toMatchObject({ code: 'mapping_untrusted', message: expect.stringContaining(victim.acsUserId) });
      expect(errorBody(response).message).toContain('no_seal');
      expect(mappingPropertiesOf(service.local, ATTACKER)).toEqual(forged);
      expect(service.local.acs.counters.get('identities.delete')).toBe(deletesBefore);
    });
  });

  describe('a mapping the service cached before it was tampered with', () => {
    it('keeps serving the user his own verified identity, and refuses once Graph is read again', async () => {
      const victim = await victimSignsUp();
      const own = await service.http
        .post('/api/token')
        .set(await authHeader(service, 'bob'))
        .expect(201);
      const ownId = tokenBody(own).user.communicationUserId;
      await explorer().patchMapping(ATTACKER, { [ACS_ID_PROPERTY]: victim.acsUserId });

      // Cached: the cache holds only verified ids, so the answer is still the attacker's own identity.
      const cached = await service.http
        .get('/api/token')
        .set(await authHeader(service, 'bob'))
        .expect(201);
      expect(tokenBody(cached).user.communicationUserId).toBe(ownId);
      await expectVictimUntouched(victim, cached);

      // GET /api/user always reads Graph: it finds the tampered mapping, refuses it and drops the cache entry.
      await service.http
        .get('/api/user')
        .set(await authHeader(service, 'bob'))
        .expect(409);
      const after = await service.http
        .get('/api/token')
        .set(await authHeader(service, 'bob'))
        .expect(409);
      expect(errorBody(after).code).toBe('mapping_untrusted');
      await expectVictimUntouched(victim, after);
    });
  });

  describe('a mapping the user broke on their own', () => {
    it.each([
      ['an empty id', { [ACS_ID_PROPERTY]: '' }],
      ['an id that is not an ACS id', { [ACS_ID_PROPERTY]: 'not-an-acs-id' }],
      ['an extension with no id at all', { note: 'hello' }],
    ])('with %s answers 409 mapping_untrusted, and POST /api/user recovers the service', async (_label, properties) => {
      await explorer().createMapping(ATTACKER, properties);

      const refused = await service.http
        .get('/api/token')
        .set(await authHeader(service, 'bob'))
        .expect(409);
      expect(errorBody(refused).code).toBe('mapping_untrusted');

      const recovered = await service.http
        .post('/api/user')
        .set(await authHeader(service, 'bob'))
        .expect(201);
      expect(userBody(recovered).acsUserIdentity).toMatch(ACS_ID);
      await service.http
        .get('/api/token')
        .set(await authHeader(service, 'bob'))
        .expect(201);
      expectInvariants(service.local);
    });
  });
});
