import { createHash, randomUUID } from 'node:crypto';
import {
  createLocalJWKSet,
  errors as joseErrors,
  exportJWK,
  exportSPKI,
  importPKCS8,
  importSPKI,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
} from 'jose';

import { freshRsaKeys, type RsaKeySource } from '../kit/rsa-keys';

/**
 * Mints and checks the emulator's ACS access tokens. The live token format is not part of the API
 * contract; what clients rely on is that it is a JWT with a numeric `exp` (communication-common's
 * token parser reads only that). The claims copy a sanitized live sample (azure-cli-extensions test):
 * `skypeid`, `scp` 1792, `csi`, `iat`, `exp`, `acsScope`, `resourceId`, with a `kid`/`x5t` header.
 * The emulator adds a `jti`: RS256 is deterministic, so two tokens issued for the same identity in
 * the same second would otherwise be byte-identical, and revocation could not tell them apart.
 */
export interface AcsTokenClaims extends JWTPayload {
  /** The identity without its `8:` prefix (`acs:{resourceId}_{guid}`, or `orgid:{oid}` for Teams users). */
  readonly skypeid: string;
  readonly scp: number;
  /** Issue time in seconds, as a string (the live sample repeats `iat` here). */
  readonly csi: string;
  readonly iat: number;
  readonly exp: number;
  /** Comma-separated scopes (`chat,voip`). */
  readonly acsScope: string;
  readonly resourceId: string;
  /** Emulator-only: makes every token unique. */
  readonly jti: string;
}

export interface IssuedAcsToken {
  readonly token: string;
  /** Expiry in the live wire format, e.g. `2023-10-10T21:39:39.3240000+00:00`. */
  readonly expiresOn: string;
  readonly claims: AcsTokenClaims;
}

export type AcsTokenCheck =
  { readonly ok: true; readonly claims: AcsTokenClaims } | { readonly ok: false; readonly reason: 'expired' | 'bad-signature' };

/** The live token's `scp` value (a bit mask; its meaning is not documented). */
const LIVE_SCP = 1792;

/**
 * Format an instant the way the service writes `expiresOn`: 7 fractional digits and `+00:00`.
 * JavaScript time has millisecond precision, so the last four digits are always zero.
 */
export function formatExpiresOn(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  return `${iso.slice(0, 23)}0000+00:00`;
}

function isAcsTokenClaims(payload: JWTPayload): payload is AcsTokenClaims {
  return (
    typeof payload['skypeid'] === 'string' &&
    typeof payload['acsScope'] === 'string' &&
    typeof payload['resourceId'] === 'string' &&
    typeof payload.jti === 'string' &&
    typeof payload.exp === 'number' &&
    typeof payload.iat === 'number'
  );
}

/** Signs ACS access tokens with a per-emulator RS256 key and checks tokens it signed. */
export class AcsTokenIssuer {
  readonly #privateKey: CryptoKey;
  readonly #publicJwk: JWK;
  readonly #x5t: string;
  readonly #resourceId: string;

  private constructor(privateKey: CryptoKey, publicJwk: JWK, x5t: string, resourceId: string) {
    this.#privateKey = privateKey;
    this.#publicJwk = publicJwk;
    this.#x5t = x5t;
    this.#resourceId = resourceId;
  }

  /** A signing key of its own (from `keys`, fresh by default): tokens of one emulator never verify against another's. */
  static async create(resourceId: string, keys: RsaKeySource = freshRsaKeys): Promise<AcsTokenIssuer> {
    const { privateKeyPem, publicKeyPem } = await keys();
    const privateKey = await importPKCS8(privateKeyPem, 'RS256', { extractable: true });
    const publicKey = await importSPKI(publicKeyPem, 'RS256', { extractable: true });
    // The live header carries `kid: "1"` and an `x5t`; there is no certificate here, so the
    // thumbprint is taken over the public key instead (same shape, base64url SHA-1).
    const spki = await exportSPKI(publicKey);
    const x5t = createHash('sha1').update(spki).digest('base64url');
    const jwk = await exportJWK(publicKey);
    return new AcsTokenIssuer(privateKey, { ...jwk, kid: '1', use: 'sig', alg: 'RS256' }, x5t, resourceId);
  }

  /** The public key tokens are signed with (for clients that want to check signatures themselves). */
  publicJwks(): JSONWebKeySet {
    return { keys: [{ ...this.#publicJwk }] };
  }

  /** Sign a token for `subject` (the identity without `8:`) valid from `issuedAtMs` until `expiresAtMs`. */
  async issue(subject: string, scopes: readonly string[], issuedAtMs: number, expiresAtMs: number): Promise<IssuedAcsToken> {
    const iat = Math.floor(issuedAtMs / 1000);
    const claims: AcsTokenClaims = {
      skypeid: subject,
      scp: LIVE_SCP,
      csi: String(iat),
      exp: Math.floor(expiresAtMs / 1000),
      acsScope: scopes.join(','),
      resourceId: this.#resourceId,
      iat,
      jti: randomUUID(),
    };
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: '1', x5t: this.#x5t, typ: 'JWT' })
      .sign(this.#privateKey);
    return { token, expiresOn: formatExpiresOn(expiresAtMs), claims };
  }

  /** Check the signature and lifetime of a token this issuer minted. */
  async check(token: string, now: number = Date.now()): Promise<AcsTokenCheck> {
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet(this.publicJwks()), {
        algorithms: ['RS256'],
        currentDate: new Date(now),
      });
      if (!isAcsTokenClaims(payload)) return { ok: false, reason: 'bad-signature' };
      return { ok: true, claims: payload };
    } catch (error) {
      // jose checks the signature before the claims, so an expired token was genuinely ours.
      if (error instanceof joseErrors.JWTExpired) return { ok: false, reason: 'expired' };
      return { ok: false, reason: 'bad-signature' };
    }
  }
}
