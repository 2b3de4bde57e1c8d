import type { JWTPayload } from 'jose';
import type { SigningKeySet } from '../entra/signing-keys';
import { GraphEmulatorError } from './graph-emulator-error';

/**
 * Who is calling the Graph emulator and what they may do: the bearer token checked as Graph checks
 * tokens Entra issued for it, and the permission each kind of access needs. The emulator is meant to
 * refuse whatever Graph would refuse, so a service that works here does not meet its first 401 or
 * 403 in the cloud.
 *
 * @packageDocumentation
 */

/** The Graph resource's two audience spellings: its URI and its app id. */
export const GRAPH_AUDIENCES: readonly string[] = ['https://graph.microsoft.com', '00000003-0000-0000-c000-000000000000'];

/** Who is calling, read from a verified Graph access token. */
export interface GraphCaller {
  /** `delegated` when the token carries `scp` (a user is signed in), `app` for app-only tokens. */
  readonly kind: 'delegated' | 'app';
  /** The signed-in user (delegated) or the calling service principal (app). */
  readonly oid: string;
  readonly tenantId: string;
  /** Client id of the calling app: the throttle and the per-app extension limit are counted on it. */
  readonly appId: string;
  /** Delegated scopes or application roles, lower-cased (Graph matches permission names case-insensitively). */
  readonly permissions: ReadonlySet<string>;
  readonly claims: JWTPayload;
}

function unauthorized(message: string): GraphEmulatorError {
  return new GraphEmulatorError(401, 'InvalidAuthenticationToken', message);
}

/** jose error codes, matched by string so the check survives duplicate module copies. */
function messageFor(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const claim = typeof error === 'object' && error !== null ? (error as { claim?: unknown }).claim : undefined;
  if (code === 'ERR_JWT_EXPIRED') return 'Access token has expired or is not yet valid.';
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    if (claim === 'nbf' || claim === 'iat') return 'Access token has expired or is not yet valid.';
    if (claim === 'aud') return 'Access token validation failure. Invalid audience.';
    if (claim === 'iss') return 'Access token validation failure. Invalid issuer.';
  }
  return 'Access token validation failure.';
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Verify the bearer token the way Graph does for tokens Entra issued for it: RS256 signature by a
 * published key, audience, issuer of the tenant (v1 format), lifetime. Throws 401s with Graph's
 * messages.
 */
export async function authenticateGraphCaller(
  authorization: string | undefined,
  keys: SigningKeySet,
  tenantId: string,
): Promise<GraphCaller> {
  const match = /^Bearer\s+(\S*)\s*$/i.exec(authorization ?? '');
  const token = match?.[1] ?? '';
  if (token === '') throw unauthorized('Access token is empty.');
  // What Graph answers for something that is not a JWS compact token at all.
  if (token.split('.').length !== 3) throw unauthorized('CompactToken parsing failed with error code: 80049217');

  let payload: JWTPayload;
  try {
    payload = await keys.verify(token, {
      audience: [...GRAPH_AUDIENCES],
      issuer: `https://sts.windows.net/${tenantId}/`,
      requiredClaims: ['exp', 'nbf', 'iat'],
      // Graph allows a few minutes of clock skew; none here, so a client that uses a token up to its expiry is caught.
      clockTolerance: 0,
    });
  } catch (error) {
    throw unauthorized(messageFor(error));
  }

  const oid = stringClaim(payload, 'oid');
  const appId = stringClaim(payload, 'appid');
  if (stringClaim(payload, 'tid') !== tenantId || oid === undefined || appId === undefined) {
    throw unauthorized('Access token validation failure.');
  }
  const scp = stringClaim(payload, 'scp');
  if (scp !== undefined) {
    const scopes = scp.split(' ').filter((scope) => scope !== '');
    return { kind: 'delegated', oid, tenantId, appId, permissions: new Set(scopes.map((s) => s.toLowerCase())), claims: payload };
  }
  const roles = Array.isArray(payload['roles']) ? payload['roles'].filter((role): role is string => typeof role === 'string') : [];
  return { kind: 'app', oid, tenantId, appId, permissions: new Set(roles.map((r) => r.toLowerCase())), claims: payload };
}

/** What a request does to users: read or write one user (and its extensions), or list users. */
export type GraphAccess = 'read' | 'write' | 'list';

/**
 * Least-privileged permissions for user open extensions (contract §3), plus their broader `.All`
 * forms. Listing users (user-list.md) takes the app's User.Read.All, User.ReadWrite.All or a
 * Directory role. Graph also lets delegated callers with User.ReadBasic.All and up list users, but
 * then trims properties by admin role; the emulator models neither, so it refuses every delegated
 * list: stricter than Graph, never looser.
 */
const ACCEPTED: Readonly<Record<GraphCaller['kind'], Readonly<Record<GraphAccess, readonly string[]>>>> = {
  delegated: {
    read: ['user.read', 'user.readwrite', 'user.read.all', 'user.readwrite.all'],
    write: ['user.readwrite', 'user.readwrite.all'],
    list: [],
  },
  app: {
    read: ['user.read.all', 'user.readwrite.all'],
    write: ['user.readwrite.all'],
    list: ['user.read.all', 'user.readwrite.all', 'directory.read.all', 'directory.readwrite.all'],
  },
};

/** Refuse with Graph's 403 when the token lacks every permission that allows `access`. */
export function requirePermission(caller: GraphCaller, access: GraphAccess): void {
  if (!ACCEPTED[caller.kind][access].some((permission) => caller.permissions.has(permission))) {
    throw new GraphEmulatorError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
  }
}
