/**
 * The answer to a redeemed code or refresh token: an access token for the one resource asked for (an API of
 * the tenant in the format its registration asks for, minted exactly as the other user tokens are; a Teams
 * user's token for ACS, minted exactly as the local Teams tokens are; or a Microsoft Graph token), an ID token
 * with `openid`, a new refresh token with `offline_access`, and
 * `client_info` when msal asks for it (v2-oauth2-auth-code-flow.md, "Successful response").
 *
 * @packageDocumentation
 */
import type { DemoUser } from '../local-directory';
import { acsScopeUrl } from './acs-permission-catalog';
import type { ResolvedApplication } from './application-registry';
import type { RedemptionAuth } from './cross-origin';
import type { EntraTenant } from './entra-tenant';
import { clientInfoOf, graphUserTokenClaims, idTokenClaims, opaque, tokenTimes } from './entra-token-claims';
import { compareScopeNames, graphScopeUrl } from './graph-permission-catalog';
import type { RefreshGrant } from './refresh-tokens';
import type { TokenScopes } from './requested-scopes';
import { lifetimeForIssuedToken } from './token-lifetime-policy';
import { mintAccessToken, mintTeamsToken } from './token-minting';

/** ID tokens live an hour (id-token-claims-reference.md). */
const ID_TOKEN_LIFETIME_SECONDS = 3600;

/** Entra's answer, fields in its order. */
export interface DelegatedTokenResponse {
  readonly token_type: 'Bearer';
  readonly scope: string;
  readonly expires_in: number;
  readonly ext_expires_in: number;
  readonly access_token: string;
  readonly refresh_token?: string;
  /** SPA refresh tokens only: seconds left of their fixed lifetime. */
  readonly refresh_token_expires_in?: number;
  readonly id_token?: string;
  readonly client_info?: string;
}

export interface DelegatedTokenRequest {
  readonly client: ResolvedApplication;
  readonly clientAuth: RedemptionAuth;
  readonly user: DemoUser;
  readonly scopes: TokenScopes;
  /** The sign-in's nonce, echoed in the ID token of a code redemption (none on refresh). */
  readonly nonce: string | undefined;
  readonly clientInfo: boolean;
  /** What a new refresh token stands for (issued only with `offline_access`). */
  readonly refresh: RefreshGrant;
}

export async function delegatedTokenResponse(tenant: EntraTenant, request: DelegatedTokenRequest): Promise<DelegatedTokenResponse> {
  const { scopes, user, client } = request;
  const lifetime = lifetimeForIssuedToken();
  const access = await accessToken(tenant, request, lifetime);
  const refreshToken = scopes.oidc.has('offline_access') ? tenant.refreshTokens.issue(request.refresh) : undefined;
  const spaSecondsLeft = Math.floor((tenant.refreshTokens.expiresAt(request.refresh) - tenant.now()) / 1000);
  const idToken = scopes.oidc.has('openid')
    ? await tenant.keys.sign(
        idTokenClaims({
          issuer: tenant.issuerV2(),
          tenantId: tenant.tenantId,
          clientAppId: client.clientId,
          user,
          nonce: request.nonce,
          sid: request.refresh.sessionId,
          oidcScopes: scopes.oidc,
          times: tokenTimes({ issuedAt: tenant.nowSeconds(), lifetimeSeconds: ID_TOKEN_LIFETIME_SECONDS }),
        }),
      )
    : undefined;
  return {
    token_type: 'Bearer',
    scope: access.scope,
    expires_in: lifetime,
    ext_expires_in: lifetime,
    access_token: access.token,
    ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
    ...(refreshToken !== undefined && request.refresh.platform === 'spa' ? { refresh_token_expires_in: spaSecondsLeft } : {}),
    ...(idToken === undefined ? {} : { id_token: idToken }),
    ...(request.clientInfo ? { client_info: clientInfoOf(user.oid, tenant.tenantId) } : {}),
  };
}

/** The access token and the `scope` the answer reports for it. */
async function accessToken(
  tenant: EntraTenant,
  request: DelegatedTokenRequest,
  lifetime: number,
): Promise<{ token: string; scope: string }> {
  const { scopes, user, client, clientAuth } = request;
  const issuedAt = tenant.nowSeconds();
  if (scopes.resource.kind === 'app') {
    const { app, named } = scopes.resource;
    const version = app.accessTokenVersion;
    // v1 tokens name the resource as the request did (App ID URI or client id); v2 tokens always by client id.
    const audience = version === 2 || named.toLowerCase() === app.clientId ? app.clientId : app.appIdUri;
    const token = await mintAccessToken(tenant, {
      oid: user.oid,
      version,
      audience,
      scp: scopes.permissions.join(' '),
      clientAppId: client.clientId,
      lifetimeSeconds: lifetime,
      issuedAt,
      claims: clientAuth === '0' ? {} : { [version === 1 ? 'appidacr' : 'azpacr']: clientAuth },
    });
    return { token, scope: scopes.permissions.map((name) => `${named}/${name}`).join(' ') };
  }
  if (scopes.resource.kind === 'acs') {
    // Issued to the client that redeemed (`appid`), which is what ACS compares with the exchange's appId.
    const token = await mintTeamsToken(tenant, {
      oid: user.oid,
      appId: client.clientId,
      scp: scopes.permissions.join(' '),
      lifetimeSeconds: lifetime,
      issuedAt,
      clientAuth,
    });
    return { token, scope: scopes.permissions.map(acsScopeUrl).join(' ') };
  }
  // Microsoft Graph: the permissions and the OpenID scopes (but offline_access) in `scp`, as On-Behalf-Of issues them.
  const oidcInToken = [...scopes.oidc].filter((scope) => scope !== 'offline_access');
  const payload = graphUserTokenClaims({
    issuer: tenant.issuerV1,
    tenantId: tenant.tenantId,
    user,
    clientAppId: client.clientId,
    clientDisplayName: client.displayName,
    clientAuth,
    scp: [...oidcInToken, ...scopes.permissions].sort(compareScopeNames).join(' '),
    times: tokenTimes({ issuedAt, lifetimeSeconds: lifetime }),
  });
  // Graph tokens carry a `nonce` header, which is why third parties cannot validate them.
  const token = await tenant.keys.sign(payload, { x5t: true, header: { nonce: opaque(32) } });
  return { token, scope: [...scopes.permissions.map(graphScopeUrl), ...oidcInToken].join(' ') };
}
