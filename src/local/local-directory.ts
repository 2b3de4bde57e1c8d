/**
 * The fixed directory that local mode runs on: one tenant, the app registrations a real deployment
 * would have, and a few demo users. The ids are stable so that tokens, mappings and docs stay
 * readable across restarts; none of them exists in any real tenant.
 */
export const LOCAL_TENANT_ID = 'b11609d4-c230-410b-8110-713f65d6077e';

/** The app registration of this API (the On-Behalf-Of middle tier). */
export const LOCAL_API_CLIENT_ID = '78e72020-eb74-433b-8399-a346b610de69';

/** A public client app (the sample SPA) that signs users in and calls this API. */
export const LOCAL_SPA_CLIENT_ID = '81410ac5-21a3-4f4f-aa9b-000d63b7c753';

export interface DemoUser {
  readonly name: string;
  readonly oid: string;
  readonly displayName: string;
  readonly userPrincipalName: string;
}

export const DEMO_USERS: Readonly<Record<'alice' | 'bob' | 'carol', DemoUser>> = Object.freeze({
  alice: {
    name: 'alice',
    oid: '4e3bceae-c3d6-4f18-af3b-e572b99fb2f1',
    displayName: 'Alice Local',
    userPrincipalName: 'alice@contoso.local',
  },
  bob: { name: 'bob', oid: '9bcb3c9e-81a2-443a-82fd-7f44ef56e186', displayName: 'Bob Local', userPrincipalName: 'bob@contoso.local' },
  carol: {
    name: 'carol',
    oid: '159fc4c6-81ad-484a-88f4-38a8ad8eebaa',
    displayName: 'Carol Local',
    userPrincipalName: 'carol@contoso.local',
  },
});

/** The Microsoft Graph resource, as it appears in `aud` of Graph tokens. */
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';

/** The ACS resource that Teams user tokens must be issued for. */
export const ACS_TEAMS_AUDIENCE = 'https://auth.msft.communication.azure.com';
