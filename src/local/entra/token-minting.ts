/**
 * Tokens minted in process, without a sign-in: the user tokens a real tenant would issue to the API
 * under test, and Teams users' tokens for ACS. Tests shape them freely (version, times, claims) to probe
 * the service's validation; the local token endpoints, the CLI and the code and refresh token grants mint
 * through here too, so a token is shaped the same however it was obtained.
 *
 * @packageDocumentation
 */
import type { JWTPayload } from 'jose';
import { ACS_TEAMS_AUDIENCE, LOCAL_SPA_CLIENT_ID } from '../local-directory';
import type { MintAccessTokenOptions, MintTeamsTokenOptions } from './entra-emulator';
import type { EntraTenant } from './entra-tenant';
import { appTokenClaims, tokenTimes, userTokenClaims } from './entra-token-claims';

/** A user (or, with an empty `scp`, app-only) access token for an API of the tenant, as Entra would issue it. */
export async function mintAccessToken(tenant: EntraTenant, opts: MintAccessTokenOptions = {}): Promise<string> {
  const version = opts.version ?? 1;
  if (version !== 1 && version !== 2) throw new TypeError('version must be 1 or 2');
  const lifetimeSeconds = opts.lifetimeSeconds ?? 3600;
  if (!Number.isFinite(lifetimeSeconds)) throw new TypeError('lifetimeSeconds must be a number');
  const api = tenant.applications.api;
  const audience = opts.audience ?? (version === 1 ? api.appIdUri : api.clientId);
  const audienceAppId = tenant.applications.byAudience(audience)?.clientId ?? audience;
  const clientAppId = opts.clientAppId ?? LOCAL_SPA_CLIENT_ID;
  const issuer = opts.issuer ?? (version === 1 ? tenant.issuerV1 : tenant.issuerV2());
  const tid = opts.tid ?? tenant.tenantId;
  const times = tokenTimes({ issuedAt: opts.issuedAt, notBefore: opts.notBefore, lifetimeSeconds });
  const scp = opts.scp === undefined ? 'access_as_user' : opts.scp;
  let payload: JWTPayload;
  if (scp === null || scp === '') {
    const oid = opts.oid ?? tenant.servicePrincipalId(clientAppId);
    payload = appTokenClaims({
      version,
      issuer,
      v1Issuer: tenant.issuerV1,
      audience,
      tenantId: tid,
      oid,
      roles: opts.roles,
      clientAppId,
      times,
    });
  } else {
    const subject = tenant.users.resolveSubject(opts.user, opts.oid);
    payload = userTokenClaims({
      version,
      issuer,
      audience,
      audienceAppId,
      tenantId: tid,
      oid: subject.oid,
      user: subject.user,
      scp,
      roles: opts.roles,
      clientAppId,
      clientAuth: '0',
      times,
    });
  }
  return tenant.keys.sign({ ...payload, ...opts.claims }, { x5t: version === 1 });
}

/**
 * A Teams user's Entra token for ACS (`aud` = ACS_TEAMS_AUDIENCE, v1), as a Teams client app obtains it: what the
 * code and refresh token grants issue for the ACS resource, and what tests and the local endpoint mint directly.
 */
export async function mintTeamsToken(tenant: EntraTenant, opts: MintTeamsTokenOptions): Promise<string> {
  if (typeof opts.appId !== 'string' || opts.appId === '') throw new TypeError('appId is required');
  const subject = tenant.users.resolveSubject(opts.user, opts.oid);
  const times = tokenTimes({ issuedAt: opts.issuedAt, lifetimeSeconds: opts.lifetimeSeconds ?? 3600 });
  const payload = userTokenClaims({
    version: 1,
    issuer: tenant.issuerV1,
    audience: ACS_TEAMS_AUDIENCE,
    audienceAppId: ACS_TEAMS_AUDIENCE,
    tenantId: tenant.tenantId,
    oid: subject.oid,
    user: subject.user,
    scp: opts.scp ?? 'Teams.ManageCalls Teams.ManageChats',
    roles: undefined,
    clientAppId: opts.appId,
    clientAuth: opts.clientAuth ?? '0',
    times,
  });
  return tenant.keys.sign(payload, { x5t: true });
}
