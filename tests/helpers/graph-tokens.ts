import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { SigningKeySet } from '../../src/local/entra/signing-keys';
import { GRAPH_RESOURCE, LOCAL_API_CLIENT_ID, LOCAL_TENANT_ID } from '../../src/local/local-directory';

/**
 * Mint Microsoft Graph access tokens the way the Entra emulator issues them (v1 format, `x5t`,
 * `kid` and `nonce` headers), so Graph emulator tests need no Entra round trip.
 */
export interface GraphTokenOptions {
  /** The user (delegated) or service principal (app-only). */
  readonly oid: string;
  /** `appid`: the calling app's client id; this API's by default. */
  readonly appId?: string;
  readonly tenantId?: string;
  /** Delegated scopes (space-separated or a list). Give `scp` for a user token, `roles` for an app-only token. */
  readonly scp?: string | readonly string[];
  /** Application roles of an app-only token (no `scp`). */
  readonly roles?: readonly string[];
  /** Override `aud` (default https://graph.microsoft.com). */
  readonly audience?: string;
  /** Override `iss` (default the tenant's v1 issuer). */
  readonly issuer?: string;
  /** Seconds from now until `exp` (default 3600; negative for an expired token). */
  readonly expiresInSeconds?: number;
  /** Seconds from now for `nbf` (default -300, as Entra backdates it). */
  readonly notBeforeInSeconds?: number;
  /** Extra claims (e.g. `upn`, `name`). */
  readonly extraClaims?: JWTPayload;
}

export async function mintGraphToken(keys: SigningKeySet, options: GraphTokenOptions): Promise<string> {
  const tenantId = options.tenantId ?? LOCAL_TENANT_ID;
  const now = Math.floor(Date.now() / 1000);
  const delegated = options.scp !== undefined;
  const payload: JWTPayload = {
    aud: options.audience ?? GRAPH_RESOURCE,
    iss: options.issuer ?? `https://sts.windows.net/${tenantId}/`,
    iat: now - 300,
    nbf: now + (options.notBeforeInSeconds ?? -300),
    exp: now + (options.expiresInSeconds ?? 3600),
    tid: tenantId,
    oid: options.oid,
    sub: randomUUID(),
    appid: options.appId ?? LOCAL_API_CLIENT_ID,
    appidacr: '1',
    idtyp: delegated ? 'user' : 'app',
    ver: '1.0',
    ...(delegated ? { scp: typeof options.scp === 'string' ? options.scp : (options.scp ?? []).join(' ') } : {}),
    ...(options.roles !== undefined ? { roles: [...options.roles] } : {}),
    ...options.extraClaims,
  };
  return keys.sign(payload, { x5t: true, header: { nonce: randomUUID() } });
}

/** Shorthand for a delegated token for `oid` with the given scopes. */
export function delegatedGraphToken(
  keys: SigningKeySet,
  oid: string,
  scp: string,
  extra: Partial<GraphTokenOptions> = {},
): Promise<string> {
  return mintGraphToken(keys, { ...extra, oid, scp });
}

/** Shorthand for an app-only token of `appId` with the given application roles. */
export function appGraphToken(
  keys: SigningKeySet,
  appId: string,
  roles: readonly string[],
  extra: Partial<GraphTokenOptions> = {},
): Promise<string> {
  return mintGraphToken(keys, { ...extra, oid: extra.oid ?? randomUUID(), appId, roles });
}
