/**
 * Reading a compact JWT before its signature is checked. Both kinds of assertion the token endpoint
 * receives name, inside themselves, what to verify them with (the client, the key), so they must be read
 * first; each caller supplies the refusal Entra sends for its kind of malformed token.
 *
 * @packageDocumentation
 */
import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { AadError } from './aad-error';

/** The protected header and claims of a JWT whose signature has not been checked yet. */
export interface UnverifiedJwt {
  readonly header: ProtectedHeaderParameters;
  readonly claims: JWTPayload;
}

/** The unverified header and claims of a compact JWT, or the given refusal when it is not one. */
export function decodeUnverified(jwt: string, refusal: () => AadError): UnverifiedJwt {
  try {
    return { header: decodeProtectedHeader(jwt), claims: decodeJwt(jwt) };
  } catch {
    throw refusal();
  }
}
