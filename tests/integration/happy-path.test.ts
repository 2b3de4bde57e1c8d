import { tokenBody, userBody } from '../helpers/bodies';
import { ACS_ID, useTestService } from '../helpers/test-service';

describe('the local flow end to end', () => {
  const service = useTestService();

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

    const issued = tokenBody(await service.http.get('/api/token').set(auth).expect(201));
    expect(issued.user).toEqual({ communicationUserId: acsUserIdentity });
    expect((await service.local.acs.verifyAccessToken(issued.token)).valid).toBe(true);

    await service.http.delete('/api/user').set(auth).expect(204);
    expect(service.local.acs.isAlive(acsUserIdentity)).toBe(false);
    await service.http.get('/api/user').set(auth).expect(404);
  });
});
