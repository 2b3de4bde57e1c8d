import { DEMO_USERS } from '../../src/local/local-directory';
import { tokenBody, userBody } from '../helpers/bodies';
import { ACS_ID, MAPPING_STORES, useTestService } from '../helpers/test-service';

describe.each(MAPPING_STORES)('the local flow end to end (%s store)', (store) => {
  const service = useTestService({ store });

  it('creates an identity, reads it, issues a token, and deletes it', async () => {
    const token = await service.tokenFor('alice');
    const auth = { Authorization: `Bearer ${token}` };

    await service.http.get('/api/user').set(auth).expect(404);
    const { acsUserIdentity } = userBody(await service.http.post('/api/user').set(auth).expect(201));
    expect(acsUserIdentity).toMatch(ACS_ID);
    const again = await service.http.post('/api/user').set(auth).expect(200);
    expect(userBody(again).acsUserIdentity).toBe(acsUserIdentity);
    const read = await service.http.get('/api/user').set(auth).expect(200);
    expect(read.body).toEqual({ acsUserIdentity });
    expect(await service.mappings.mappedIdentityOf(DEMO_USERS.alice.oid)).toBe(acsUserIdentity);

    const issued = tokenBody(await service.http.get('/api/token').set(auth).expect(201));
    expect(issued.user).toEqual({ communicationUserId: acsUserIdentity });
    expect((await service.local.acs.verifyAccessToken(issued.token)).valid).toBe(true);

    await service.http.delete('/api/user').set(auth).expect(204);
    expect(service.local.acs.isAlive(acsUserIdentity)).toBe(false);
    await service.http.get('/api/user').set(auth).expect(404);
    // The table store needs neither On-Behalf-Of nor Graph: no token request to Entra ID (its signing keys
    // are still fetched, to validate the callers' tokens), no Graph call at all.
    if (store === 'table') {
      expect({ entraTokens: service.local.entra.counters.get('token'), graph: service.local.graph.counters.total() }).toEqual({
        entraTokens: 0,
        graph: 0,
      });
    } else {
      expect(service.local.graph.counters.total()).toBeGreaterThan(0);
    }
  });
});
