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
  type JWTVerifyGetKey,
} from 'jose';

import { AppError, InvalidTokenError, UpstreamError } from '../errors/app-errors';
import { createCaller, type Caller } from './caller';
import { isGuid } from '../validation/formats';

/**
 * Validates Microsoft Entra ID access tokens issued to this API, the way Microsoft documents a web
 * API must (signature by a key from the tenant's JWKS, issuer, audience, tenant, lifetime), checks
 * that the token has the shape Entra gives tokens of its issuer's version, and accepts only delegated
 * (user) tokens.
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

type TokenVersion = 'v1' | 'v2';

/** Entra tokens are a few kilobytes; anything far larger is refused before it is parsed. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Header parameters Entra ID never puts in an access token, which would have the token name its own
 * key (`jku`, `jwk`, `x5u`, `x5c`) or change how it is read (`zip`, `b64`). jose ignores the first five
 * (the key comes from the tenant's keys document only) and honours `b64` only when `crit` names it, so
 * none of them can make a forgery pass today; refusing them keeps it so whatever a library does with them.
 */
const FOREIGN_HEADER_PARAMETERS = ['jku', 'jwk', 'x5u', 'x5c', 'zip', 'b64'] as const;

/**
 * What Entra puts in each token version (access-token claims reference): `ver` and the client app in
 * `appid` (v1) or `azp` (v2), the other one absent.
 */
const TOKEN_SHAPES: Readonly<Record<TokenVersion, { readonly ver: string; readonly client: string; readonly absent: string }>> = {
  v1: { ver: '1.0', client: 'appid', absent: 'azp' },
  v2: { ver: '2.0', client: 'azp', absent: 'appid' },
};

/** Why jose refused a token, in words for the caller. Only for errors the token itself caused. */
function describeJoseError(error: joseErrors.JOSEError): string {
  if (error instanceof joseErrors.JWTExpired) return 'The access token has expired.';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'The access token is not valid yet.';
    if (error.claim === 'aud') return 'The access token was not issued for this API (audience).';
    if (error.claim === 'iss') return 'The access token was not issued by the expected tenant (issuer).';
    return `The access token failed validation of the '${error.claim}' claim.`;
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'The access token signature is invalid.';
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'The access token must be signed with RS256.';
  // RFC 7515 §4.1.11: a `crit` header naming an extension the verifier does not implement.
  if (error instanceof joseErrors.JOSENotSupported)
    return 'The access token header names a critical extension (crit) this API does not support.';
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid) return 'The access token is malformed.';
  return 'The access token is invalid.';
}

/**
 * Errors raised while finding the token's key, sorted by whose fault they are. Only an unknown `kid`
 * (or an algorithm, already refused before the key is looked up) comes from the token; everything else
 * means the keys document could not be fetched, parsed or used, and the service cannot tell good tokens
 * from bad: 503 (504 on timeout), never 401, so clients do not throw away good tokens.
 */
function keyLookupError(error: unknown): AppError {
  if (error instanceof joseErrors.JWKSNoMatchingKey)
    return new InvalidTokenError('The access token is signed by an unknown key.', { cause: error });
  if (error instanceof joseErrors.JOSENotSupported || error instanceof joseErrors.JOSEAlgNotAllowed) {
    return new InvalidTokenError('The access token must be signed with RS256.', { cause: error });
  }
  if (error instanceof joseErrors.JWKSTimeout) {
    return new UpstreamError('entra', 'timeout', 'the signing keys could not be fetched in time', { cause: error });
  }
  // The token names one kid (checked before); two keys under it is the keys document's fault (RFC 7517 §4.5).
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return new UpstreamError('entra', 'unavailable', 'the signing keys document lists the key id more than once', { cause: error });
  }
  // fetch failures (a plain TypeError), non-200 answers, bodies that are not JSON (JOSEError), key sets
  // or keys that are not valid (JWKSInvalid, a DataError from the key import).
  return new UpstreamError('entra', 'unavailable', 'the signing keys could not be fetched', { cause: error });
}

/** The key set, its errors already translated: whatever jwtVerify throws that is not an AppError is the token's. */
function classifyingKeyLookups(keySet: JWTVerifyGetKey): JWTVerifyGetKey {
  return async function lookUpKey(header, token) {
    try {
      return await keySet(header, token);
    } catch (error) {
      throw keyLookupError(error);
    }
  };
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * The checks that need no network, on the still unverified token: its issuer picks the keys document
 * (a token from any other issuer is refused without a fetch), and its header must name a key by `kid`
 * and carry none of the parameters Entra never sends.
 */
function preflight(token: string, issuers: EntraTokenValidatorOptions['issuers']): TokenVersion {
  let header: ReturnType<typeof decodeProtectedHeader>;
  let issuer: string | undefined;
  try {
    header = decodeProtectedHeader(token);
    issuer = decodeJwt(token).iss;
  } catch {
    throw new InvalidTokenError('The access token is malformed.');
  }
  const version = issuer === issuers.v1 ? 'v1' : issuer === issuers.v2 ? 'v2' : undefined;
  if (version === undefined) throw new InvalidTokenError('The access token was not issued by the expected tenant (issuer).');
  // Entra always names the key. Without a kid, jose would try whichever key the document has if it has one.
  if (typeof header.kid !== 'string' || header.kid === '')
    throw new InvalidTokenError('The access token does not name its signing key (kid).');
  const foreign = FOREIGN_HEADER_PARAMETERS.find((name) => Object.hasOwn(header, name));
  if (foreign !== undefined) throw new InvalidTokenError(`The access token header carries '${foreign}', which Entra ID tokens never do.`);
  return version;
}

/**
 * The client application that obtained the token, once the token is shown to have the shape of its
 * issuer's version: a v1-shaped token under the v2 issuer (or the reverse) is not one Entra issued.
 */
function clientAppOf(version: TokenVersion, payload: JWTPayload): string {
  const shape = TOKEN_SHAPES[version];
  if (payload['ver'] !== shape.ver) {
    throw new InvalidTokenError(`The access token's version (ver) does not match its issuer, which issues version ${shape.ver} tokens.`);
  }
  const clientAppId = stringClaim(payload, shape.client);
  if (clientAppId === undefined || !isGuid(clientAppId) || payload[shape.absent] !== undefined) {
    throw new InvalidTokenError(
      `A version ${shape.ver} access token names its client application in '${shape.client}' (a GUID) and has no '${shape.absent}'.`,
    );
  }
  return clientAppId.toLowerCase();
}

type Verify = (token: string, version: TokenVersion) => Promise<JWTPayload>;

/**
 * jose's checks against the tenant's keys documents: signature, algorithm, issuer, audience and
 * lifetime. Any refusal that is not the keys' fault is a 401.
 */
function createVerify(options: EntraTokenValidatorOptions, clockTolerance: number): Verify {
  const keySetOptions = {
    cooldownDuration: options.refreshCooldownMs,
    // Microsoft: refresh keys at least daily; hourly keeps a rolled key from waiting for a miss.
    cacheMaxAge: 60 * 60 * 1000,
    timeoutDuration: options.timeoutMs ?? 5000,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  };
  const keySets: Readonly<Record<TokenVersion, JWTVerifyGetKey>> = {
    v1: classifyingKeyLookups(createRemoteJWKSet(new URL(options.jwksUris.v1), keySetOptions)),
    v2: classifyingKeyLookups(createRemoteJWKSet(new URL(options.jwksUris.v2), keySetOptions)),
  };
  const audiences = [...options.audiences];
  return async function verify(token, version) {
    try {
      const { payload } = await jwtVerify(token, keySets[version], {
        algorithms: ['RS256'],
        issuer: options.issuers[version],
        audience: audiences,
        clockTolerance,
        requiredClaims: ['exp', 'oid', 'tid'],
      });
      return payload;
    } catch (error) {
      // Errors of the key lookup arrive already translated (401 for an unknown kid, 5xx for the keys).
      if (error instanceof AppError) throw error;
      // Everything jose raises past the key lookup is about the token: its header, encoding, signature or claims.
      if (error instanceof joseErrors.JOSEError) throw new InvalidTokenError(describeJoseError(error), { cause: error });
      // A key that was found but cannot be used (under 2048 bits, for example): the keys document's fault.
      throw new UpstreamError('entra', 'unavailable', 'a signing key could not be used', { cause: error });
    }
  };
}

/** The caller a verified token of this version stands for, once it is shown to be a user token of this tenant. */
function callerFromClaims(version: TokenVersion, payload: JWTPayload, token: string, tenantId: string): Caller {
  const clientAppId = clientAppOf(version, payload);
  const tid = stringClaim(payload, 'tid');
  if (tid?.toLowerCase() !== tenantId.toLowerCase()) throw new InvalidTokenError('The access token belongs to another tenant.');
  const oid = stringClaim(payload, 'oid');
  if (oid === undefined || !isGuid(oid)) throw new InvalidTokenError('The access token has no valid user object id (oid).');
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
      clientAppId,
      expiresAt: payload.exp!,
    },
    token,
  );
}

export function createEntraTokenValidator(options: EntraTokenValidatorOptions): EntraTokenValidator {
  if (!isGuid(options.tenantId)) throw new TypeError('tenantId must be a GUID');
  if (options.audiences.length === 0) throw new TypeError('audiences must name at least one audience');
  if (!Number.isInteger(options.refreshCooldownMs) || options.refreshCooldownMs < 0) {
    throw new TypeError('refreshCooldownMs must be a non-negative integer');
  }
  const clockTolerance = options.clockToleranceSeconds ?? 300;
  const verify = createVerify(options, clockTolerance);
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
    const version = preflight(token, options.issuers);
    const caller = callerFromClaims(version, await verify(token, version), token, options.tenantId);
    if (validated) {
      const expiresInMs = (caller.expiresAt + clockTolerance) * 1000 - Date.now();
      validated.set(key, caller, { ttl: Math.max(1, Math.min(VALIDATION_CACHE_TTL_MS, expiresInMs)) });
    }
    return caller;
  };
}
