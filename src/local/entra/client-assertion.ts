/**
 * Certificate credentials (`private_key_jwt`, RFC 7523 client authentication): a JWT signed with the key
 * of a certificate uploaded to the app registration, named by its thumbprint in `x5t#S256` (msal-node 7:
 * PS256) or the legacy SHA-1 `x5t` (RS256). Checked in Entra's order as far as it is known: the key, the
 * signature, then the claims. The assertion may be presented again while it is valid: msal reuses one
 * for up to 10 minutes, so refusing a repeated `jti` would break every real client.
 *
 * @packageDocumentation
 */
import { compactVerify, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { AadError } from './aad-error';
import type { RegisteredCertificate, ResolvedApplication } from './application-registry';
import type { EntraTenant } from './entra-tenant';
import { missingParameter, unknownApplication } from './sts-refusals';
import { CLOCK_SKEW_SECONDS } from './token-lifetime-policy';
import { decodeUnverified } from './unverified-jwt';

const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/**
 * Longest client assertion accepted (`exp` beyond now, on top of the skew). msal-node makes assertions
 * that live 600 s; whether Entra caps the lifetime, and where, is unconfirmed.
 */
const MAX_CLIENT_ASSERTION_SECONDS = 600;
const CERTIFICATE_CREDENTIALS_DOC =
  'Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .';

/** The thumbprint a client assertion's header names its signing certificate by. */
interface PresentedThumbprint {
  readonly x5tS256: string | undefined;
  readonly x5t: string | undefined;
  /** Upper-case hex, the way Entra shows thumbprints in its refusals. */
  readonly shown: string;
}

/** The app a valid client assertion authenticates, or Entra's refusal. */
export async function authenticateWithAssertion(
  tenant: EntraTenant,
  params: Map<string, string>,
  bodyClientId: string | undefined,
): Promise<ResolvedApplication> {
  const assertion = assertionParameter(params);
  const { header, claims } = decodeUnverified(
    assertion,
    () => new AadError(401, 'invalid_client', 50027, 'JWT token is invalid or malformed. The client_assertion could not be parsed.'),
  );
  // RFC 7521 §4.2: client_id may be left out when the assertion names the client.
  const clientId = bodyClientId ?? (typeof claims.iss === 'string' ? claims.iss : undefined);
  if (clientId === undefined || clientId === '') throw missingParameter('client_id');
  const app = tenant.applications.byClientId(clientId);
  if (app === undefined) throw unknownApplication(clientId, tenant.tenantId);
  const now = new Date();
  await verifyAssertionSignature(assertion, header, app, now);
  checkAssertionClaims(claims, app, tenant.tokenEndpoint(), now);
  return app;
}

/** The `client_assertion` parameter, once its type is the one Entra supports. */
function assertionParameter(params: Map<string, string>): string {
  const assertionType = params.get('client_assertion_type');
  const assertion = params.get('client_assertion');
  if (assertionType === undefined || assertionType === '') throw missingParameter('client_assertion_type');
  if (assertionType !== CLIENT_ASSERTION_TYPE) {
    // The code Entra uses for another assertion type is unconfirmed.
    throw new AadError(
      400,
      'invalid_request',
      9002313,
      `Invalid request. Request is malformed or invalid. The 'client_assertion_type' '${assertionType}' is not supported; use '${CLIENT_ASSERTION_TYPE}'.`,
    );
  }
  if (assertion === undefined || assertion === '') throw missingParameter('client_assertion');
  return assertion;
}

function presentedThumbprint(header: ProtectedHeaderParameters): PresentedThumbprint {
  const x5tS256 = typeof header['x5t#S256'] === 'string' ? header['x5t#S256'] : undefined;
  const x5t = typeof header.x5t === 'string' ? header.x5t : undefined;
  const shown = Buffer.from(x5tS256 ?? x5t ?? '', 'base64url')
    .toString('hex')
    .toUpperCase();
  return { x5tS256, x5t, shown };
}

/** Checks the key (registered, within its dates, matching `x5c`), the algorithm, then the signature. */
async function verifyAssertionSignature(
  assertion: string,
  header: ProtectedHeaderParameters,
  app: ResolvedApplication,
  now: Date,
): Promise<void> {
  const thumbprint = presentedThumbprint(header);
  const certificate = registeredCertificate(app, thumbprint);
  const invalidSignature = (reason: string): AadError =>
    new AadError(
      401,
      'invalid_client',
      700027,
      `Client assertion contains an invalid signature. [Reason - ${reason}, Thumbprint of key used by client: '${thumbprint.shown}', Found key 'Start=${certificate.validFrom.toISOString()}, End=${certificate.validTo.toISOString()}']`,
    );
  // A key credential past its end date no longer signs in (the reason text is unconfirmed).
  if (now < certificate.validFrom || now > certificate.validTo) throw invalidSignature('The key used is expired.');
  // Entra's handling of a mismatching x5c for a registered certificate is unconfirmed; the emulator refuses it.
  if (header.x5c !== undefined) {
    const first = Array.isArray(header.x5c) ? header.x5c[0] : undefined;
    if (typeof first !== 'string' || !Buffer.from(first, 'base64').equals(certificate.der)) {
      throw invalidSignature('The x5c header does not hold the certificate the thumbprint names.');
    }
  }
  if (header.alg !== 'RS256' && header.alg !== 'PS256') {
    throw invalidSignature(`The signing algorithm '${String(header.alg)}' is not supported; use PS256 or RS256.`);
  }
  try {
    await compactVerify(assertion, certificate.publicKey, { algorithms: [header.alg] });
  } catch {
    throw invalidSignature('The provided signature value did not match the expected signature value.');
  }
}

/** The app's certificate the thumbprint names; `x5t#S256` wins over `x5t` when both are present. */
function registeredCertificate(app: ResolvedApplication, thumbprint: PresentedThumbprint): RegisteredCertificate {
  const { x5tS256, x5t } = thumbprint;
  const certificate = app.certificates.find((candidate) =>
    x5tS256 !== undefined ? candidate.x5tS256 === x5tS256 : x5t !== undefined && candidate.x5t === x5t,
  );
  if (certificate === undefined) {
    throw new AadError(
      401,
      'invalid_client',
      700027,
      `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${thumbprint.shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${app.clientId}'.]`,
    );
  }
  return certificate;
}

/** Checks the claims of a correctly signed assertion: who it names, its audience, and its time window. */
function checkAssertionClaims(claims: JWTPayload, app: ResolvedApplication, tokenEndpoint: string, now: Date): void {
  if (
    typeof claims.iss !== 'string' ||
    typeof claims.sub !== 'string' ||
    claims.iss.toLowerCase() !== app.clientId ||
    claims.sub.toLowerCase() !== app.clientId
  ) {
    throw new AadError(
      401,
      'invalid_client',
      700021,
      `Client assertion application identifier doesn't match 'client_id' parameter. ${CERTIFICATE_CREDENTIALS_DOC}`,
    );
  }
  // The documented audience is the v2 token endpoint. Entra's code for another audience is unconfirmed:
  // 50027 is its "invalid JWT" code, whose documented causes include an unexpected audience.
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes(tokenEndpoint)) {
    throw new AadError(
      401,
      'invalid_client',
      50027,
      `Invalid JWT token. The audience '${audiences.map(String).join(',')}' of the client assertion is not the token endpoint '${tokenEndpoint}'. ${CERTIFICATE_CREDENTIALS_DOC}`,
    );
  }
  // `exp` and `jti` are required by the documentation; `nbf` is optional (Entra reports a missing one as 1970).
  if (typeof claims.exp !== 'number')
    throw new AadError(
      401,
      'invalid_client',
      50027,
      `Invalid JWT token. The client assertion has no 'exp' claim. ${CERTIFICATE_CREDENTIALS_DOC}`,
    );
  if (typeof claims.jti !== 'string' || claims.jti === '') {
    throw new AadError(
      401,
      'invalid_client',
      50027,
      `Invalid JWT token. The client assertion has no 'jti' claim. ${CERTIFICATE_CREDENTIALS_DOC}`,
    );
  }
  const nbf = typeof claims.nbf === 'number' ? claims.nbf : 0;
  const nowSeconds = Math.floor(now.getTime() / 1000);
  const maxExp = nowSeconds + MAX_CLIENT_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS;
  if (claims.exp + CLOCK_SKEW_SECONDS <= nowSeconds || nbf - CLOCK_SKEW_SECONDS > nowSeconds || claims.exp > maxExp) {
    throw new AadError(
      401,
      'invalid_client',
      700024,
      `Client assertion is not within its valid time range. Current time: ${now.toISOString()}, assertion valid from ${new Date(nbf * 1000).toISOString()}, expiry time of assertion ${new Date(claims.exp * 1000).toISOString()}. ${CERTIFICATE_CREDENTIALS_DOC}`,
    );
  }
}
