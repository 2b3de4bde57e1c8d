/**
 * The Entra ID emulator's token-signing keys, shared with the Graph and ACS emulators so they can
 * verify the tokens it issues the way the real services verify Entra's.
 *
 * Like Entra, several keys are published at once and any may be rolled at any time: `roll()` makes a
 * new key the signer and keeps the previous one published until `retire()` removes it.
 *
 * @packageDocumentation
 */
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  importPKCS8,
  importSPKI,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  type JWTVerifyOptions,
} from 'jose';

import { freshRsaKeys, type RsaKeySource } from '../kit/rsa-keys';

/** A signing key pair and the public JWK published for it. */
interface KeyEntry {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

export interface SignOptions {
  /** Add the legacy `x5t` header (v1 tokens carry it, v2 tokens do not). */
  readonly x5t?: boolean;
  /** Extra protected-header fields (Graph tokens carry a `nonce`). */
  readonly header?: Readonly<Record<string, string>>;
}

async function newKey(keys: RsaKeySource): Promise<KeyEntry> {
  const { privateKeyPem, publicKeyPem } = await keys();
  const privateKey = await importPKCS8(privateKeyPem, 'RS256');
  const jwk = await exportJWK(await importSPKI(publicKeyPem, 'RS256', { extractable: true }));
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, privateKey, publicJwk: { ...jwk, kid, kty: 'RSA', use: 'sig', alg: 'RS256' } };
}

export class SigningKeySet {
  /** Newest first: the first key signs. Never empty, which the type records. */
  #keys: [KeyEntry, ...KeyEntry[]];
  readonly #source: RsaKeySource;

  private constructor(first: KeyEntry, source: RsaKeySource) {
    this.#keys = [first];
    this.#source = source;
  }

  /** A set with one key, from `source` (fresh keys by default), which `roll()` uses too. */
  static async create(source: RsaKeySource = freshRsaKeys): Promise<SigningKeySet> {
    return new SigningKeySet(await newKey(source), source);
  }

  /** `kid` of the key that signs new tokens. */
  get currentKid(): string {
    return this.#keys[0].kid;
  }

  /** Every published key id, newest first. */
  get publishedKids(): readonly string[] {
    return this.#keys.map((key) => key.kid);
  }

  /** The public keys, as served at `/discovery/keys`. */
  publicJwks(): JSONWebKeySet {
    return { keys: this.#keys.map((key) => ({ ...key.publicJwk })) };
  }

  /** Sign a payload with the current key (RS256). */
  async sign(payload: JWTPayload, options: SignOptions = {}): Promise<string> {
    const key = this.#keys[0];
    const header: Record<string, string> = { typ: 'JWT', alg: 'RS256', kid: key.kid, ...options.header };
    if (options.x5t) header['x5t'] = key.kid;
    return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
  }

  /** Make a new key the signer. The previous keys stay published until retired. Returns the new kid. */
  async roll(): Promise<string> {
    const key = await newKey(this.#source);
    this.#keys = [key, ...this.#keys];
    return key.kid;
  }

  /** Stop publishing every key but the current one: tokens signed by retired keys no longer verify. */
  retire(): void {
    this.#keys = [this.#keys[0]];
  }

  /** Verify a token against the published keys (signature, RS256, then the given claim checks). */
  async verify(token: string, options: JWTVerifyOptions = {}): Promise<JWTPayload> {
    const jwks = createLocalJWKSet(this.publicJwks());
    const { payload } = await jwtVerify(token, jwks, { algorithms: ['RS256'], ...options });
    return payload;
  }
}
