import { createHmac, createPublicKey, generateKeyPairSync, randomBytes, sign, type JsonWebKey, type KeyObject } from 'node:crypto';

import type { JWK } from 'jose';

/**
 * Hand-built JWTs an attacker (or a broken client) could send: they reuse the claims of a token the
 * Entra emulator minted and change only the part under test, so a refusal can only come from that
 * part. Built with node:crypto rather than jose, because jose refuses to produce most of them.
 */

interface DecodedToken {
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  readonly signature: string;
}

export function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

export function decodeToken(token: string): DecodedToken {
  const [header, payload, signature] = token.split('.');
  if (header === undefined || payload === undefined || signature === undefined) throw new TypeError('not a compact JWS');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>,
    signature,
  };
}

/** The same claims with `alg: none` and an empty signature (RFC 7519 §6, the unsecured JWT). */
export function withAlgNone(token: string): string {
  const { header, payload } = decodeToken(token);
  return `${encodeSegment({ ...header, alg: 'none' })}.${encodeSegment(payload)}.`;
}

/**
 * The key-confusion attack: the same claims and `kid`, but `alg: HS256` and an HMAC keyed with the
 * RSA public key material (which anyone can read from the JWKS). A verifier that lets the token pick
 * the algorithm would "verify" it with the public key as the HMAC secret.
 */
export function hmacSignedWith(token: string, secret: string | Buffer): string {
  const { header, payload } = decodeToken(token);
  const signingInput = `${encodeSegment({ ...header, alg: 'HS256' })}.${encodeSegment(payload)}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

/** An RSA public JWK (as published in the JWKS) as SPKI PEM. */
export function publicKeyPem(jwk: JWK): string {
  return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
}

let foreignKey: KeyObject | undefined;

/** An RSA key that no JWKS publishes (generated once per test file). */
function foreignPrivateKey(): KeyObject {
  foreignKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return foreignKey;
}

/** A kid shaped like Entra's (a base64url thumbprint) that no key set contains. */
export function randomKid(): string {
  return randomBytes(32).toString('base64url').slice(0, 43);
}

/** `base` with `changes` applied; a change to `undefined` removes the member. */
function merged(base: Record<string, unknown>, changes: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base, ...changes };
  for (const [name, value] of Object.entries(changes)) if (value === undefined) delete result[name];
  return result;
}

function rs256(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const signingInput = `${encodeSegment(header)}.${encodeSegment(payload)}`;
  return `${signingInput}.${sign('sha256', Buffer.from(signingInput), key).toString('base64url')}`;
}

export interface ForgeOptions {
  readonly kid?: string;
  /** Header members to add or change (`undefined` removes one), applied after `alg` and `kid`. */
  readonly header?: Readonly<Record<string, unknown>>;
  readonly payload?: Record<string, unknown>;
}

/**
 * The same claims, RS256-signed by a key outside the tenant's JWKS. `kid` defaults to a random one
 * (an unknown key); pass a published kid to model a forgery that claims a real key.
 */
export function signedByForeignKey(token: string, options: ForgeOptions = {}): string {
  const { header, payload } = decodeToken(token);
  const newHeader: Record<string, unknown> = { ...header, alg: 'RS256', kid: options.kid ?? randomKid() };
  if ('x5t' in header) newHeader['x5t'] = newHeader['kid'];
  return rs256(merged(newHeader, options.header), { ...payload, ...options.payload }, foreignPrivateKey());
}

/**
 * A signing key the test holds and makes the tenant publish (the Entra emulator's keys endpoints are
 * told to serve `jwk`): tokens it signs verify, so a refusal can come only from what the test changed.
 * It stands for Entra's own key, i.e. for what only Entra could sign.
 */
export interface PublishedKey {
  readonly kid: string;
  /** The public key as a keys document lists it. */
  readonly jwk: JWK;
  /** The same claims and header as `token`, re-signed by this key under its kid, with the changes applied. */
  resign(token: string, options?: Omit<ForgeOptions, 'kid'>): string;
}

export function createPublishedKey(options: { readonly modulusLength?: number } = {}): PublishedKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: options.modulusLength ?? 2048 });
  const kid = randomKid();
  const jwk: JWK = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, use: 'sig' };
  return {
    kid,
    jwk,
    resign(token, changes = {}) {
      const { header, payload } = decodeToken(token);
      const newHeader: Record<string, unknown> = { ...header, alg: 'RS256', kid };
      if ('x5t' in header) newHeader['x5t'] = kid;
      return rs256(merged(newHeader, changes.header), { ...payload, ...changes.payload }, privateKey);
    },
  };
}

/** The same header and signature over changed claims: the signature no longer matches. */
export function withTamperedPayload(token: string, changes: Record<string, unknown>): string {
  const { header, payload, signature } = decodeToken(token);
  return `${encodeSegment(header)}.${encodeSegment({ ...payload, ...changes })}.${signature}`;
}
