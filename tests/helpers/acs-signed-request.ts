import { createHash, createHmac } from 'node:crypto';
import type { SigningKeySet } from '../../src/local/entra/signing-keys';
import { ACS_TEAMS_AUDIENCE, LOCAL_TENANT_ID } from '../../src/local/local-directory';

/**
 * Sends an ACS request signed by hand with node:crypto, independently of the SDK's signing policy,
 * so tests can prove what the emulator's verifier accepts and can produce requests the SDK never
 * would (stale dates, bodies changed after signing).
 */
export interface SignedAcsRequest {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Endpoint base, e.g. `http://127.0.0.1:1234` (with or without a trailing slash). */
  readonly baseUrl: string;
  /** Path and query exactly as to be sent, e.g. `/identities?api-version=2023-10-01`. */
  readonly pathAndQuery: string;
  readonly accessKey: string;
  /** Body bytes that are hashed and signed. */
  readonly body?: string;
  /** Body bytes actually sent, when they must differ from the signed ones (tampering). */
  readonly sentBody?: string;
  /** The date to sign and send (now by default). */
  readonly date?: Date;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface AcsResponse {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON, or undefined for an empty body. */
  readonly body: unknown;
}

export async function sendSignedAcsRequest(request: SignedAcsRequest): Promise<AcsResponse> {
  const url = new URL(request.pathAndQuery, request.baseUrl);
  const signedBody = request.body ?? '';
  const date = (request.date ?? new Date()).toUTCString();
  const contentHash = createHash('sha256').update(signedBody, 'utf8').digest('base64');
  const stringToSign = `${request.method}\n${request.pathAndQuery}\n${date};${url.host};${contentHash}`;
  const signature = createHmac('sha256', Buffer.from(request.accessKey, 'base64')).update(stringToSign, 'utf8').digest('base64');
  const sentBody = request.sentBody ?? request.body;
  const response = await fetch(url, {
    method: request.method,
    headers: {
      ...(sentBody === undefined ? {} : { 'content-type': 'application/json' }),
      'x-ms-date': date,
      'x-ms-content-sha256': contentHash,
      authorization: `HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=${signature}`,
      ...request.headers,
    },
    ...(sentBody === undefined ? {} : { body: sentBody }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

export interface TeamsUserTokenOptions {
  readonly oid: string;
  readonly appId: string;
  readonly tenantId?: string;
  /** Seconds from now until expiry; negative for an expired token. */
  readonly expiresInSeconds?: number;
  readonly scp?: string;
  readonly aud?: string;
  /** `v1` (default, `appid` and the sts.windows.net issuer) or `v2` (`azp`, login.microsoftonline.com/…/v2.0). */
  readonly version?: 'v1' | 'v2';
}

/** Mint the Entra token of a Teams user for the ACS resource, the way the Entra emulator does. */
export async function mintTeamsUserToken(keys: SigningKeySet, options: TeamsUserTokenOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const tid = options.tenantId ?? LOCAL_TENANT_ID;
  const exp = now + (options.expiresInSeconds ?? 3600);
  const v1 = (options.version ?? 'v1') === 'v1';
  return keys.sign(
    {
      aud: options.aud ?? ACS_TEAMS_AUDIENCE,
      iss: v1 ? `https://sts.windows.net/${tid}/` : `https://login.microsoftonline.com/${tid}/v2.0`,
      iat: Math.min(now, exp - 60),
      nbf: Math.min(now, exp - 60),
      exp,
      tid,
      oid: options.oid,
      ...(v1 ? { appid: options.appId, appidacr: '0' } : { azp: options.appId, azpacr: '0' }),
      scp: options.scp ?? 'Teams.ManageCalls Teams.ManageChats',
      ver: v1 ? '1.0' : '2.0',
    },
    { x5t: v1 },
  );
}
