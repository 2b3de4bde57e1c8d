/**
 * The client credentials grant: an app-only Microsoft Graph token carrying the Graph application
 * permissions granted to the calling app. Entra requires the `{resource}/.default` form here, since an
 * app cannot ask for permissions beyond those an administrator granted.
 *
 * @packageDocumentation
 */
import { GRAPH_RESOURCE } from '../../../local-directory';
import { AadError } from '../../aad-error';
import type { AuthenticatedClient } from '../../client-authentication';
import type { EntraTenant } from '../../entra-tenant';
import { appTokenClaims, opaque, tokenTimes } from '../../entra-token-claims';
import { compareScopeNames } from '../../graph-permission-catalog';
import { missingParameter, resourceNotFound } from '../../sts-refusals';
import { lifetimeForIssuedToken } from '../../token-lifetime-policy';

/** Entra's answer to a successful client credentials request (no `scope`, unlike On-Behalf-Of). */
export interface ClientCredentialsTokenResponse {
  readonly token_type: 'Bearer';
  readonly expires_in: number;
  readonly ext_expires_in: number;
  readonly access_token: string;
}

/** An app-only Graph token for the authenticated app, or Entra's refusal. */
export async function clientCredentialsGrant(
  tenant: EntraTenant,
  params: Map<string, string>,
  { app, clientAuth }: AuthenticatedClient,
): Promise<ClientCredentialsTokenResponse> {
  const scope = params.get('scope');
  if (scope === undefined || scope.trim() === '') throw missingParameter('scope');
  const scopes = scope.split(' ').filter((value) => value !== '');
  const defaultScope = scopes.length === 1 ? scopes[0] : undefined;
  if (!defaultScope?.endsWith('/.default')) {
    throw new AadError(
      400,
      'invalid_scope',
      1002012,
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    );
  }
  const resource = defaultScope.slice(0, -'/.default'.length).replace(/\/+$/, '');
  if (resource.toLowerCase() !== GRAPH_RESOURCE) throw resourceNotFound(resource, tenant.tenantId);
  const lifetime = lifetimeForIssuedToken();
  const payload = appTokenClaims({
    version: 1,
    issuer: tenant.issuerV1,
    v1Issuer: tenant.issuerV1,
    audience: GRAPH_RESOURCE,
    tenantId: tenant.tenantId,
    oid: tenant.servicePrincipalId(app.clientId),
    roles: [...app.graphApplicationRoles].sort(compareScopeNames),
    clientAppId: app.clientId,
    times: tokenTimes({ lifetimeSeconds: lifetime }),
    idtyp: true,
    clientAuth,
  });
  // Graph tokens carry a `nonce` header, which is why third parties cannot validate them.
  const accessToken = await tenant.keys.sign(
    { ...payload, app_displayname: app.displayName, tenant_region_scope: 'NA' },
    { x5t: true, header: { nonce: opaque(32) } },
  );
  return { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: accessToken };
}
