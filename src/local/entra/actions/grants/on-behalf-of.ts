/**
 * The On-Behalf-Of grant (`urn:ietf:params:oauth:grant-type:jwt-bearer`): an API exchanges the user
 * token it received for a Microsoft Graph token for the same user. This is where conditional access
 * (MFA) and missing consent surface, so the refusals follow Entra's codes and the claims challenge.
 *
 * @packageDocumentation
 */
import { GRAPH_RESOURCE, type DemoUser } from '../../../local-directory';
import { AadError } from '../../aad-error';
import type { ResolvedApplication } from '../../application-registry';
import type { AuthenticatedClient } from '../../client-authentication';
import { parseDelegatedScopes, type ParsedScopes } from '../../delegated-scopes';
import type { EntraTenant } from '../../entra-tenant';
import { clientInfoOf, graphUserTokenClaims, opaque, tokenTimes } from '../../entra-token-claims';
import { compareScopeNames, graphScopeUrl } from '../../graph-permission-catalog';
import { consentRequired } from '../../requested-scopes';
import { missingParameter } from '../../sts-refusals';
import { lifetimeForIssuedToken } from '../../token-lifetime-policy';
import { validateUserAssertion } from '../../user-assertion';

/** The grant type of On-Behalf-Of requests. */
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** Entra's answer to a successful On-Behalf-Of request, fields in Entra's order. */
export interface OnBehalfOfTokenResponse {
  readonly token_type: 'Bearer';
  readonly scope: string;
  readonly expires_in: number;
  readonly ext_expires_in: number;
  readonly access_token: string;
  /** The user's uid/utid, base64url JSON, present when the request asked with `client_info=1`. */
  readonly client_info?: string;
}

/** The parameters an On-Behalf-Of request must carry, once present. */
interface OnBehalfOfRequest {
  readonly assertion: string;
  readonly scope: string;
}

/** A delegated Graph token for the user the assertion names, or Entra's refusal. */
export async function onBehalfOfGrant(
  tenant: EntraTenant,
  params: Map<string, string>,
  { app, clientAuth }: AuthenticatedClient,
): Promise<OnBehalfOfTokenResponse> {
  const request = onBehalfOfRequest(params);
  const assertionClaims = await validateUserAssertion(tenant, request.assertion, app);
  const scopes = parseDelegatedScopes(request.scope, tenant.tenantId);
  const user = assertedUser(tenant, claimText(assertionClaims['oid']));
  requireConsentAndNoInteraction(tenant, app, user.oid, scopes);

  // Entra puts every consented permission of the resource in the token, not only the requested ones.
  const granted = [...app.graphDelegatedScopes].sort(compareScopeNames);
  const oidcInToken = scopes.oidc.filter((scope) => scope !== 'offline_access');
  const lifetime = lifetimeForIssuedToken();
  const payload = graphUserTokenClaims({
    issuer: tenant.issuerV1,
    tenantId: tenant.tenantId,
    user,
    clientAppId: app.clientId,
    clientDisplayName: app.displayName,
    clientAuth,
    scp: [...oidcInToken, ...granted].sort(compareScopeNames).join(' '),
    times: tokenTimes({ lifetimeSeconds: lifetime }),
  });
  // Graph tokens carry a `nonce` header, which is why third parties cannot validate them.
  const accessToken = await tenant.keys.sign(payload, { x5t: true, header: { nonce: opaque(32) } });
  return {
    token_type: 'Bearer',
    scope: [...granted.map(graphScopeUrl), ...oidcInToken].join(' '),
    expires_in: lifetime,
    ext_expires_in: lifetime,
    access_token: accessToken,
    // Entra returns client_info (the user's uid/utid) when asked with client_info=1, as msal always asks.
    ...(params.get('client_info') === '1' ? { client_info: clientInfoOf(user.oid, tenant.tenantId) } : {}),
  };
}

function onBehalfOfRequest(params: Map<string, string>): OnBehalfOfRequest {
  const requestedTokenUse = params.get('requested_token_use');
  if (requestedTokenUse === undefined) throw missingParameter('requested_token_use');
  if (requestedTokenUse !== 'on_behalf_of') {
    throw new AadError(
      400,
      'invalid_request',
      9002313,
      `Invalid request. The value '${requestedTokenUse}' of 'requested_token_use' is not supported.`,
    );
  }
  const assertion = params.get('assertion');
  if (assertion === undefined || assertion === '') throw missingParameter('assertion');
  const scope = params.get('scope');
  if (scope === undefined || scope.trim() === '') throw missingParameter('scope');
  return { assertion, scope };
}

/**
 * A claim value as `String()` renders it. The assertion is signed by the tenant, but tests mint it with
 * arbitrary claims, so `oid` may be any JSON value; it is quoted and looked up exactly as a string.
 */
function claimText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.map(claimText).join(',');
  return '[object Object]';
}

function assertedUser(tenant: EntraTenant, oid: string): DemoUser {
  const user = tenant.users.byOid(oid);
  if (user === undefined) {
    // The assertion names a user the tenant does not have (the envelope fields for this case are unconfirmed).
    throw new AadError(
      400,
      'invalid_grant',
      50034,
      `The user account ${oid} does not exist in the ${tenant.tenantId} directory. To sign into this application, the account must be added to the directory.`,
    );
  }
  return user;
}

/** Refuses as Entra does when the tests armed MFA or consent for the user, or the app lacks consent for the scopes. */
function requireConsentAndNoInteraction(tenant: EntraTenant, app: ResolvedApplication, oid: string, scopes: ParsedScopes): void {
  const interaction = tenant.interactions.requiredFor(oid);
  if (interaction === 'mfa') {
    const challenge = { access_token: { capolids: { essential: true, values: [tenant.interactions.conditionalAccessPolicyId] } } };
    throw new AadError(
      400,
      'interaction_required',
      50079,
      `Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '${GRAPH_RESOURCE}'.`,
      { claims: JSON.stringify(challenge) },
    );
  }
  const consentMissing = (): AadError => consentRequired(app);
  if (interaction === 'consent') throw consentMissing();
  if (scopes.graph === '.default') {
    if (app.graphDelegatedScopes.length === 0) throw consentMissing();
  } else if (scopes.graph.some((permission) => !app.graphDelegatedScopes.includes(permission))) {
    throw consentMissing();
  }
}
