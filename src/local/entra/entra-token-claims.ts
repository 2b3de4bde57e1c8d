/**
 * Claim sets in the shapes Entra ID issues (access-token claims reference): v1 tokens carry
 * `appid`/`appidacr`, `unique_name`/`upn` and `ver: "1.0"`; v2 tokens carry `azp`/`azpacr`,
 * `preferred_username` and `ver: "2.0"`. Times are integer seconds.
 *
 * @packageDocumentation
 */
import { createHash, randomBytes } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { GRAPH_RESOURCE, type DemoUser } from '../local-directory';

/** A GUID derived from a seed, so ids such as a service principal's `oid` are stable across restarts. */
export function stableGuid(seed: string): string {
  const hex = createHash('sha256').update(seed).digest('hex');
  // Shape it as an RFC 4122 name-based (version 5 style) GUID so it passes GUID format checks.
  const variant = ((parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Opaque values Entra puts in `aio`, `rh` and `uti`: random base64url. */
export function opaque(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** `sub` is pairwise: the same user gets a different `sub` in every app. */
export function pairwiseSubject(oid: string, appId: string): string {
  return createHash('sha256').update(`${oid}|${appId}`).digest('base64url').slice(0, 43);
}

/** `iat`, `nbf` and `exp` in integer epoch seconds. */
export interface TokenTimes {
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
}

/** `iat` defaults to now, `nbf` to `iat`; `exp` = `iat` + lifetime, as Entra sets them. */
export function tokenTimes(options: { issuedAt?: number; notBefore?: number; lifetimeSeconds: number }): TokenTimes {
  const iat = options.issuedAt ?? Math.floor(Date.now() / 1000);
  const nbf = options.notBefore ?? iat;
  return { iat, nbf, exp: iat + options.lifetimeSeconds };
}

/** Name claims of a known user, in the v1 or v2 spelling (absent for users the directory does not list). */
export function nameClaims(user: DemoUser | undefined, version: 1 | 2): JWTPayload {
  if (user === undefined) return {};
  if (version === 2) return { name: user.displayName, preferred_username: user.userPrincipalName };
  const [given, ...family] = user.displayName.split(' ');
  return {
    family_name: family.join(' ') || undefined,
    given_name: given,
    name: user.displayName,
    unique_name: user.userPrincipalName,
    upn: user.userPrincipalName,
  };
}

/** What a user (delegated) token is made from. */
export interface UserTokenInput {
  readonly version: 1 | 2;
  readonly issuer: string;
  readonly audience: string;
  /** App id behind the audience, for the pairwise `sub`. */
  readonly audienceAppId: string;
  readonly tenantId: string;
  readonly oid: string;
  readonly user: DemoUser | undefined;
  readonly scp: string;
  readonly roles: readonly string[] | undefined;
  readonly clientAppId: string;
  /** "0" public client, "1" secret, "2" certificate. */
  readonly clientAuth: '0' | '1' | '2';
  readonly times: TokenTimes;
}

/** A delegated (user) access token's claims, as Entra issues them to an API. */
export function userTokenClaims(input: UserTokenInput): JWTPayload {
  const { version, times } = input;
  const common = {
    aud: input.audience,
    iss: input.issuer,
    iat: times.iat,
    nbf: times.nbf,
    exp: times.exp,
  };
  const roles = input.roles !== undefined && input.roles.length > 0 ? { roles: [...input.roles] } : {};
  if (version === 2) {
    return {
      ...common,
      aio: opaque(48),
      azp: input.clientAppId,
      azpacr: input.clientAuth,
      ...nameClaims(input.user, 2),
      oid: input.oid,
      rh: opaque(32),
      ...roles,
      scp: input.scp,
      sub: pairwiseSubject(input.oid, input.audienceAppId),
      tid: input.tenantId,
      uti: opaque(16),
      ver: '2.0',
    };
  }
  return {
    ...common,
    acr: '1',
    aio: opaque(48),
    amr: ['pwd'],
    appid: input.clientAppId,
    appidacr: input.clientAuth,
    ...nameClaims(input.user, 1),
    ipaddr: '127.0.0.1',
    oid: input.oid,
    rh: opaque(32),
    ...roles,
    scp: input.scp,
    sub: pairwiseSubject(input.oid, input.audienceAppId),
    tid: input.tenantId,
    uti: opaque(16),
    ver: '1.0',
  };
}

/** What an app-only token is made from. */
export interface AppTokenInput {
  readonly version: 1 | 2;
  readonly issuer: string;
  /** v1 app-only tokens name the issuing STS in `idp`. */
  readonly v1Issuer: string;
  readonly audience: string;
  readonly tenantId: string;
  /** The calling app's service principal object id. */
  readonly oid: string;
  readonly roles: readonly string[] | undefined;
  readonly clientAppId: string;
  readonly times: TokenTimes;
  /** The optional `idtyp` claim (Graph always gets it; APIs only when configured). */
  readonly idtyp?: boolean;
  /** How the app authenticated (`appidacr`/`azpacr`): 1 secret (default), 2 certificate. */
  readonly clientAuth?: '1' | '2';
}

/** An app-only access token's claims: no `scp`, permissions in `roles`, `sub` = `oid` = the service principal. */
export function appTokenClaims(input: AppTokenInput): JWTPayload {
  const { times } = input;
  const roles = input.roles !== undefined && input.roles.length > 0 ? { roles: [...input.roles] } : {};
  const idtyp = input.idtyp ? { idtyp: 'app' } : {};
  if (input.version === 2) {
    return {
      aud: input.audience,
      iss: input.issuer,
      iat: times.iat,
      nbf: times.nbf,
      exp: times.exp,
      aio: opaque(48),
      azp: input.clientAppId,
      azpacr: input.clientAuth ?? '1',
      ...idtyp,
      oid: input.oid,
      rh: opaque(32),
      ...roles,
      sub: input.oid,
      tid: input.tenantId,
      uti: opaque(16),
      ver: '2.0',
    };
  }
  return {
    aud: input.audience,
    iss: input.issuer,
    iat: times.iat,
    nbf: times.nbf,
    exp: times.exp,
    aio: opaque(48),
    appid: input.clientAppId,
    appidacr: input.clientAuth ?? '1',
    idp: input.v1Issuer,
    ...idtyp,
    oid: input.oid,
    rh: opaque(32),
    ...roles,
    sub: input.oid,
    tid: input.tenantId,
    uti: opaque(16),
    ver: '1.0',
  };
}

/** `client_info`: the user's home account, base64url JSON `{uid, utid}`; msal builds the account's `homeAccountId` from it. */
export function clientInfoOf(oid: string, tenantId: string): string {
  return Buffer.from(JSON.stringify({ uid: oid, utid: tenantId })).toString('base64url');
}

/** What a delegated Microsoft Graph token is made from. */
export interface GraphUserTokenInput {
  readonly issuer: string;
  readonly tenantId: string;
  readonly user: DemoUser;
  readonly clientAppId: string;
  readonly clientDisplayName: string;
  /** "0" public client, "1" secret, "2" certificate. */
  readonly clientAuth: '0' | '1' | '2';
  readonly scp: string;
  readonly times: TokenTimes;
}

/** The claims of a delegated v1 Graph token, in the order and shape Entra issues them. */
export function graphUserTokenClaims(input: GraphUserTokenInput): JWTPayload {
  const { user, times } = input;
  return {
    aud: GRAPH_RESOURCE,
    iss: input.issuer,
    iat: times.iat,
    nbf: times.nbf,
    exp: times.exp,
    acct: 0,
    acr: '1',
    aio: opaque(48),
    amr: ['pwd'],
    app_displayname: input.clientDisplayName,
    appid: input.clientAppId,
    appidacr: input.clientAuth,
    ...nameClaims(user, 1),
    idtyp: 'user',
    ipaddr: '127.0.0.1',
    oid: user.oid,
    rh: opaque(32),
    scp: input.scp,
    sub: pairwiseSubject(user.oid, GRAPH_RESOURCE),
    tenant_region_scope: 'NA',
    tid: input.tenantId,
    uti: opaque(16),
    ver: '1.0',
    xms_st: { sub: pairwiseSubject(user.oid, input.clientAppId) },
  };
}

/** What an ID token is made from (id-token-claims-reference.md, v2). */
export interface IdTokenInput {
  readonly issuer: string;
  readonly tenantId: string;
  readonly clientAppId: string;
  readonly user: DemoUser;
  /** The sign-in request's `nonce`, echoed. */
  readonly nonce: string | undefined;
  /** The browser session, also sent as `session_state`. */
  readonly sid: string;
  /** `name` and `preferred_username` come with the `profile` scope, `email` with `email`. */
  readonly oidcScopes: ReadonlySet<string>;
  readonly times: TokenTimes;
}

/** A v2 ID token's claims: for the client app (`aud`), the user's pairwise `sub` for that app. */
export function idTokenClaims(input: IdTokenInput): JWTPayload {
  const { user, times } = input;
  const profile = input.oidcScopes.has('profile') ? nameClaims(user, 2) : {};
  return {
    aud: input.clientAppId,
    iss: input.issuer,
    iat: times.iat,
    nbf: times.nbf,
    exp: times.exp,
    aio: opaque(48),
    ...(input.oidcScopes.has('email') ? { email: user.userPrincipalName } : {}),
    ...profile,
    ...(input.nonce === undefined ? {} : { nonce: input.nonce }),
    oid: user.oid,
    rh: opaque(32),
    sid: input.sid,
    sub: pairwiseSubject(user.oid, input.clientAppId),
    tid: input.tenantId,
    uti: opaque(16),
    ver: '2.0',
  };
}
