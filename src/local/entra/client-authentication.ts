/**
 * Client authentication at the token endpoint: `client_secret_post`, `client_secret_basic`, or a
 * certificate (`private_key_jwt`, in client-assertion.ts). Which method was used shows in the issued
 * tokens' `appidacr`/`azpacr`, so the result carries it along with the app.
 *
 * @packageDocumentation
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { AadError } from './aad-error';
import type { ResolvedApplication } from './application-registry';
import { authenticateWithAssertion } from './client-assertion';
import type { EntraTenant } from './entra-tenant';
import { missingParameter, unknownApplication } from './sts-refusals';

/** How the client proved its identity, as the issued tokens' `appidacr`/`azpacr` say: 1 secret, 2 certificate. */
export type ClientAuthMethod = '1' | '2';

export interface AuthenticatedClient {
  readonly app: ResolvedApplication;
  readonly clientAuth: ClientAuthMethod;
}

interface BasicCredentials {
  readonly clientId: string;
  readonly secret: string;
}

/** Authenticates the calling app by whichever single method the request uses, or throws Entra's refusal. */
export async function authenticateClient(tenant: EntraTenant, req: Request, params: Map<string, string>): Promise<AuthenticatedClient> {
  const basic = basicCredentials(req);
  const bodyClientId = params.get('client_id');
  const bodySecret = params.get('client_secret');
  if (params.has('client_assertion') || params.has('client_assertion_type')) {
    if (basic !== undefined || bodySecret !== undefined) {
      // One authentication method per request (RFC 6749 §2.3); Entra's exact answer is unconfirmed.
      throw new AadError(
        401,
        'invalid_client',
        7000215,
        'More than one client authentication method was used (client_assertion and a client secret).',
      );
    }
    return { app: await authenticateWithAssertion(tenant, params, bodyClientId), clientAuth: '2' };
  }
  return { app: authenticateWithSecret(tenant, basic, bodyClientId, bodySecret), clientAuth: '1' };
}

function authenticateWithSecret(
  tenant: EntraTenant,
  basic: BasicCredentials | undefined,
  bodyClientId: string | undefined,
  bodySecret: string | undefined,
): ResolvedApplication {
  if (basic !== undefined && bodySecret !== undefined) {
    // RFC 6749 §2.3: a client must not use more than one authentication method per request (Entra's exact answer is unconfirmed).
    throw new AadError(
      401,
      'invalid_client',
      7000215,
      'More than one client authentication method was used (HTTP Basic and client_secret).',
    );
  }
  if (basic !== undefined && bodyClientId !== undefined && bodyClientId.toLowerCase() !== basic.clientId.toLowerCase()) {
    throw new AadError(
      401,
      'invalid_client',
      700016,
      'The client_id in the request body does not match the HTTP Basic client credentials.',
    );
  }
  const clientId = basic?.clientId ?? bodyClientId;
  if (clientId === undefined || clientId === '') throw missingParameter('client_id');
  const app = tenant.applications.byClientId(clientId);
  if (app === undefined) throw unknownApplication(clientId, tenant.tenantId);
  const secret = basic?.secret ?? bodySecret;
  if (secret === undefined || secret === '') {
    throw new AadError(
      401,
      'invalid_client',
      7000218,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    );
  }
  if (app.clientSecret === undefined || !secretsEqual(secret, app.clientSecret)) {
    throw new AadError(
      401,
      'invalid_client',
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`,
    );
  }
  return app;
}

/** The HTTP Basic credentials of the request, undefined without an Authorization header. */
function basicCredentials(req: Request): BasicCredentials | undefined {
  const header = req.get('authorization');
  if (header === undefined) return undefined;
  const encoded = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim())?.[1];
  if (encoded === undefined) {
    throw new AadError(
      401,
      'invalid_client',
      7000216,
      "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
    );
  }
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new AadError(401, 'invalid_client', 7000216, 'Malformed HTTP Basic client credentials.');
  // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined; bad escapes are the client's fault.
  const decode = (value: string): string => {
    try {
      return decodeURIComponent(value.replace(/\+/g, ' '));
    } catch {
      throw new AadError(401, 'invalid_client', 7000216, 'Malformed HTTP Basic client credentials.');
    }
  };
  return { clientId: decode(decoded.slice(0, colon)), secret: decode(decoded.slice(colon + 1)) };
}

function secretsEqual(given: string, expected: string): boolean {
  // Hash first so the comparison is constant-time whatever the lengths.
  const givenDigest = createHash('sha256').update(given).digest();
  const expectedDigest = createHash('sha256').update(expected).digest();
  return timingSafeEqual(givenDigest, expectedDigest);
}
