import { createHash } from 'node:crypto';

import { LRUCache } from 'lru-cache';
import {
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type FetchImplementation,
  type JWTPayload,
} from 'jose';

import { InvalidTokenError, UpstreamError } from '../errors/app-errors';
import { createCaller, type Caller } from './caller';

/**
 * Validates Microsoft Entra ID access tokens issued to this API, the way Microsoft documents a web
 * API must (signature by a key from the tenant's JWKS, issuer, audience, tenant, lifetime), and
 * accepts only delegated (user) tokens.
 */
export interface EntraTokenValidatorOptions {
  readonly tenantId: string;
  /** Accepted `aud` values (client id, App ID URIs). */
  readonly audiences: readonly string[];
  readonly issuers: { readonly v1: string; readonly v2: string };
  /** v1 tokens are checked against the v1 keys document, v2 tokens against the v2 one. */
  readonly jwksUris: { readonly v1: string; readonly v2: string };
  /** Minimum time between two JWKS fetches caused by an unknown `kid`. */
  readonly refreshCooldownMs: number;
  /** Allowed clock skew for `exp` and `nbf` (Microsoft.IdentityModel's default: 5 minutes). */
  readonly clockToleranceSeconds?: number;
  readonly timeoutMs?: number;
  /** fetch used for the JWKS (local mode passes one that trusts the emulator CA). */
  readonly fetch?: FetchImplementation;
  /** Tokens whose successful validation is remembered (clients reuse a token for an hour); 0 turns this off. */
  readonly cacheMaxEntries?: number;
}

/**
 * How long a validated token is taken on trust before it is checked again. Short, so that a signing
 * key Entra withdraws (an emergency rotation) stops working for tokens already seen within minutes.
 */
const VALIDATION_CACHE_TTL_MS = 5 * 60 * 1000;

export type EntraTokenValidator = (token: string) => Promise<Caller>;

/** Entra tokens are a few kilobytes; anything far larger is refused before it is parsed. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

function describeJoseError(error: unknown): string | undefined {
  if (error instanceof joseErrors.JWTExpired) return 'The access token has expired.';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'The access token is not valid yet.';
    if (error.claim === 'aud') return 'The access token was not issued for this API (audience).';
    if (error.claim === 'iss') return 'The access token was not issued by the expected tenant (issuer).';
    return `The access token failed validation of the '${error.claim}' claim.`;
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'The access token is signed by an unknown key.';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'The access token signature is invalid.';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'The access token must be signed with RS256.';
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys) return 'The access token is signed by an ambiguous key.';
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid) return 'The access token is malformed.';
  return undefined;
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name];
  return typeof value === 'string' ? value : undefined;
}

export function createEntraTokenValidator(options: EntraTokenValidatorOptions): EntraTokenValidator {
  if (!GUID.test(options.tenantId)) throw new TypeError('tenantId must be a GUID');
  if (options.audiences.length === 0) throw new TypeError('audiences must name at least one audience');
  if (!Number.isInteger(options.refreshCooldownMs) || options.refreshCooldownMs < 0) {
    throw new TypeError('refreshCooldownMs must be a non-negative integer');
  }
  const clockTolerance = options.clockToleranceSeconds ?? 300;
  const keySetOptions = {
    cooldownDuration: options.refreshCooldownMs,
    // Microsoft: refresh keys at least daily; hourly keeps a rolled key from waiting for a miss.
    cacheMaxAge: 60 * 60 * 1000,
    timeoutDuration: options.timeoutMs ?? 5000,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  };
  const keySets = {
    v1: createRemoteJWKSet(new URL(options.jwksUris.v1), keySetOptions),
    v2: createRemoteJWKSet(new URL(options.jwksUris.v2), keySetOptions),
  };
  const audiences = [...options.audiences];
  const cacheMaxEntries = options.cacheMaxEntries ?? 10_000;
  const validated = cacheMaxEntries > 0 ? new LRUCache<string, Caller>({ max: cacheMaxEntries }) : undefined;

  return async function validateEntraToken(token: string): Promise<Caller> {
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) {
      throw new InvalidTokenError('The access token is malformed.');
    }
    // The same token string always validates the same way until it expires: checking its
    // signature and claims again on every request is work the client's token reuse makes avoidable.
    const key = validated ? createHash('sha256').update(token).digest('base64url') : '';
    const known = validated?.get(key);
    if (known !== undefined) return known;
    const caller = await validateUncached(token);
    if (validated) {
      const expiresInMs = (caller.expiresAt + clockTolerance) * 1000 - Date.now();
      validated.set(key, caller, { ttl: Math.max(1, Math.min(VALIDATION_CACHE_TTL_MS, expiresInMs)) });
    }
    return caller;
  };

  async function validateUncached(token: string): Promise<Caller> {
    // Read the unverified issuer only to pick the keys document; nothing else is trusted before
    // the signature check, and a token from any other issuer is refused without a network call.
    let unverifiedIssuer: string | undefined;
    try {
      decodeProtectedHeader(token);
      unverifiedIssuer = decodeJwt(token).iss;
    } catch {
      throw new InvalidTokenError('The access token is malformed.');
    }
    const version = unverifiedIssuer === options.issuers.v1 ? 'v1' : unverifiedIssuer === options.issuers.v2 ? 'v2' : undefined;
    if (version === undefined) {
      throw new InvalidTokenError('The access token was not issued by the expected tenant (issuer).');
    }

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keySets[version], {
        algorithms: ['RS256'],
        issuer: options.issuers[version],
        audience: audiences,
        clockTolerance,
        requiredClaims: ['exp', 'oid', 'tid'],
      }));
    } catch (error) {
      const reason = describeJoseError(error);
      if (reason !== undefined) throw new InvalidTokenError(reason, { cause: error });
      if (error instanceof joseErrors.JWKSTimeout) {
        throw new UpstreamError('entra', 'timeout', 'the signing keys could not be fetched in time', { cause: error });
      }
      // The keys document could not be fetched or parsed: we cannot tell good tokens from bad.
      throw new UpstreamError('entra', 'unavailable', 'the signing keys could not be fetched', { cause: error });
    }

    const tid = stringClaim(payload, 'tid');
    if (tid?.toLowerCase() !== options.tenantId.toLowerCase()) {
      throw new InvalidTokenError('The access token belongs to another tenant.');
    }
    const oid = stringClaim(payload, 'oid');
    if (oid === undefined || !GUID.test(oid)) throw new InvalidTokenError('The access token has no valid user object id (oid).');
    const scp = stringClaim(payload, 'scp');
    if (scp === undefined || scp.trim() === '') {
      // App-only tokens (client credentials) carry roles but no scp: this API acts for users only.
      throw new InvalidTokenError('App-only tokens are not accepted: this API needs a delegated (user) token.');
    }
    const roles = Array.isArray(payload['roles']) ? payload['roles'].filter((role): role is string => typeof role === 'string') : [];
    return createCaller(
      {
        oid: oid.toLowerCase(),
        tid: tid.toLowerCase(),
        scopes: scp.split(' ').filter((scope) => scope !== ''),
        roles,
        tokenVersion: version === 'v1' ? '1.0' : '2.0',
        clientAppId: stringClaim(payload, version === 'v1' ? 'appid' : 'azp'),
        expiresAt: payload.exp as number,
      },
      token,
    );
  }
}
