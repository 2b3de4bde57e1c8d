import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * HMAC-SHA256 access-key authentication as ACS checks it (and as @azure/communication-common's
 * `createCommunicationAccessKeyCredentialPolicy` signs): the string to sign is
 * `VERB\npathAndQuery\n{date};{host};{contentHash}` over the path exactly as sent, the MAC key is the
 * base64-decoded access key, and the content hash covers the raw body bytes.
 */
export interface HmacSignedRequest {
  /** HTTP method as received. */
  readonly method: string;
  /** Path and query exactly as they appeared on the request line (still percent-encoded). */
  readonly pathAndQuery: string;
  readonly headers: IncomingHttpHeaders;
  /** The raw body bytes (empty when there was no body). */
  readonly body: Buffer;
}

export type HmacFailure =
  | 'missing-authorization'
  | 'bad-authorization-format'
  | 'missing-signed-header'
  | 'bad-date'
  | 'clock-skew'
  | 'content-hash-mismatch'
  | 'bad-signature';

export type HmacVerdict = { readonly ok: true } | { readonly ok: false; readonly failure: HmacFailure };

/** Largest accepted difference between the request's date and the server clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

const AUTHORIZATION_PATTERN = /^HMAC-SHA256 SignedHeaders=([^&\s]+)&Signature=(\S+)$/;
const RFC1123_PATTERN =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

function singleHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

function constantTimeEquals(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  // A length mismatch leaks only the length of a fixed-size MAC, which is public anyway.
  return left.length === right.length && timingSafeEqual(left, right);
}

/** base64(SHA-256(bytes)): the value `x-ms-content-sha256` must carry. */
export function contentHash(body: Buffer): string {
  return createHash('sha256').update(body).digest('base64');
}

/** Verify one request against the resource's access key (already base64-decoded). */
export function verifyHmacRequest(request: HmacSignedRequest, key: Buffer, now: number = Date.now()): HmacVerdict {
  const authorization = singleHeader(request.headers, 'authorization');
  if (authorization === undefined) return { ok: false, failure: 'missing-authorization' };
  const [, signedHeaderList, signature] = AUTHORIZATION_PATTERN.exec(authorization) ?? [];
  if (signedHeaderList === undefined || signature === undefined) return { ok: false, failure: 'bad-authorization-format' };
  const signedHeaders = signedHeaderList.toLowerCase().split(';');

  // The documented scheme signs exactly these three; a client may use `date` instead of `x-ms-date`.
  const dateHeader = signedHeaders.includes('x-ms-date') ? 'x-ms-date' : 'date';
  if (!signedHeaders.includes(dateHeader) || !signedHeaders.includes('host') || !signedHeaders.includes('x-ms-content-sha256')) {
    return { ok: false, failure: 'missing-signed-header' };
  }
  const values: string[] = [];
  for (const name of signedHeaders) {
    const value = singleHeader(request.headers, name);
    if (value === undefined) return { ok: false, failure: 'missing-signed-header' };
    values.push(value);
  }

  // Found by the loop above; checked again so the type narrows without an assertion.
  const date = singleHeader(request.headers, dateHeader);
  if (date === undefined || !RFC1123_PATTERN.test(date)) return { ok: false, failure: 'bad-date' };
  const sentAt = Date.parse(date);
  if (Number.isNaN(sentAt)) return { ok: false, failure: 'bad-date' };
  if (Math.abs(now - sentAt) > MAX_CLOCK_SKEW_MS) return { ok: false, failure: 'clock-skew' };

  const claimedHash = singleHeader(request.headers, 'x-ms-content-sha256');
  if (claimedHash === undefined || !constantTimeEquals(claimedHash, contentHash(request.body))) {
    return { ok: false, failure: 'content-hash-mismatch' };
  }

  const stringToSign = `${request.method.toUpperCase()}\n${request.pathAndQuery}\n${values.join(';')}`;
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest('base64');
  if (!constantTimeEquals(signature, expected)) return { ok: false, failure: 'bad-signature' };
  return { ok: true };
}
