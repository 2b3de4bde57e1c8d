import { DEMO_USERS, LOCAL_SPA_CLIENT_ID } from '../../src/local/local-directory';
import { AUTHENTICATED_ROUTES } from '../helpers/api-routes';
import { call, expectErrorBody, upstreamWork } from '../helpers/auth-assertions';
import { tokenBody, userBody } from '../helpers/bodies';
import { mappedIdentityOf } from '../helpers/invariants';
import { ACS_ID, useTestService } from '../helpers/test-service';

/**
 * ENTRA_ALLOWED_CLIENT_APP_IDS: which client applications' tokens the service serves, judged by the
 * validated token's `appid` (v1) or `azp` (v2). Unset, any client app of the tenant is served: that is
 * covered in authentication-accepted.test.ts ("obtained by an unregistered client app").
 */

/** A second app on the list (a confidential client acting for users, say). */
const PARTNER_APP_ID = '3f4e5d6c-7b8a-4c9d-8e0f-1a2b3c4d5e6f';
/** A client app of the same tenant that is not on the list (Azure CLI's well-known id, for example). */
const UNLISTED_APP_ID = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const ADMIN_ROLE = 'AcsAuth.Admin';

describe('ENTRA_ALLOWED_CLIENT_APP_IDS', () => {
  // Upper case and spaces on purpose: ids are compared as GUIDs, not as text.
  const service = useTestService({ env: { ENTRA_ALLOWED_CLIENT_APP_IDS: ` ${LOCAL_SPA_CLIENT_ID.toUpperCase()} , ${PARTNER_APP_ID}` } });

  describe('a listed client app', () => {
    it('gets an identity and a token with a v1 token (appid)', async () => {
      const token = await service.tokenFor('alice', { version: 1, clientAppId: LOCAL_SPA_CLIENT_ID });

      const created = await service.http.post('/api/user').set('Authorization', `Bearer ${token}`).expect(201);
      const issued = await service.http.get('/api/token').set('Authorization', `Bearer ${token}`).expect(201);

      expect(userBody(created).acsUserIdentity).toMatch(ACS_ID);
      expect(tokenBody(issued).user).toEqual({ communicationUserId: userBody(created).acsUserIdentity });
    });

    it('gets a token with a v2 token (azp) from the other listed app', async () => {
      const token = await service.tokenFor('alice', { version: 2, clientAppId: PARTNER_APP_ID });

      const response = await service.http.post('/api/token').set('Authorization', `Bearer ${token}`).expect(201);

      expect(tokenBody(response).user).toEqual({ communicationUserId: mappedIdentityOf(service.local, DEMO_USERS.alice.oid) });
    });
  });

  describe('a client app that is not listed', () => {
    describe.each([1, 2] as const)('with a v%s token', (version) => {
      it.each(AUTHENTICATED_ROUTES)('is refused on $name with 403 client_app_not_allowed, without any upstream call', async (route) => {
        const token = await service.tokenFor('carol', { version, clientAppId: UNLISTED_APP_ID, roles: [ADMIN_ROLE] });
        const teamsToken = await service.local.entra.mintTeamsToken({ user: 'carol', appId: UNLISTED_APP_ID });
        const before = upstreamWork(service);

        const response = await call(service, route, { authorization: `Bearer ${token}`, teamsToken });

        expect(response.status).toBe(403);
        expectErrorBody(response, 'client_app_not_allowed', new RegExp(`client application '${UNLISTED_APP_ID}' is not allowed`));
        // Another token from the same app would not help: no bearer challenge.
        expect(response.headers['www-authenticate']).toBeUndefined();
        expect(upstreamWork(service)).toEqual(before);
        expect(mappedIdentityOf(service.local, DEMO_USERS.carol.oid)).toBeUndefined();
      });
    });

    it('is refused as such even when its token also lacks the scope (a new token would not help)', async () => {
      const token = await service.tokenFor('carol', { clientAppId: UNLISTED_APP_ID, scp: 'User.Read' });

      const response = await service.http.get('/api/user').set('Authorization', `Bearer ${token}`);

      expect(response.status).toBe(403);
      expectErrorBody(response, 'client_app_not_allowed');
    });
  });
});
