import { CommunicationIdentityClient, type CommunicationIdentityClientOptions } from '@azure/communication-identity';
import type { TokenCredential } from '@azure/identity';

import { isBareOrigin, isBase64, isLoopbackHost, parseAcsConnectionString } from '../../validation/formats';
import { capRetryAfter } from '../retry-after-cap';

/**
 * Builds the service's one `CommunicationIdentityClient`, from a connection string (HMAC access key)
 * or an endpoint plus an Entra `TokenCredential` (managed identity).
 *
 * Plain `http:` is allowed only on a loopback host, which is how the local ACS emulator is reached;
 * anywhere else it would send access-key-signed requests in the clear, so it is refused. The default
 * Node HTTP client of @azure/core-rest-pipeline keeps connections alive (one process-wide client with
 * `keepAlive: true` agents), so building the client once and reusing it is all that pooling needs.
 */
export type IdentityClientTarget =
  | { readonly connectionString: string; readonly endpoint?: undefined; readonly credential?: undefined }
  | { readonly endpoint: string; readonly credential: TokenCredential; readonly connectionString?: undefined };

export interface IdentityClientTuning {
  /** Retries after 429 (honouring `Retry-After`), 500, 503 and connection failures; the SDK default is 3. */
  readonly maxRetries?: number;
  /** Prepended to the SDK's `User-Agent`, e.g. `acs-auth-server/0.1.0`. */
  readonly userAgentPrefix?: string;
  /**
   * Longest `Retry-After` worth waiting for inside one request. The SDK honours any Retry-After, so
   * a longer one is hidden from its retry policy (kept as `x-original-retry-after` for the adapter):
   * the caller then gets a 503 with that Retry-After at once instead of a request held for it.
   */
  readonly maxRetryWaitMs?: number;
}

export type IdentityClientOptions = IdentityClientTarget & IdentityClientTuning;

/**
 * Check an endpoint and say whether it needs `allowInsecureConnection`. Messages never include the
 * connection string: it carries the access key.
 */
function checkEndpoint(endpoint: string, usesTokenCredential: boolean): { allowInsecureConnection: boolean } {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TypeError('ACS endpoint must be an absolute URL');
  }
  if (!isBareOrigin(url)) {
    throw new TypeError(
      `ACS endpoint must be a bare origin such as https://{resource}.communication.azure.com/, got ${url.origin}${url.pathname}`,
    );
  }
  if (url.protocol === 'https:') return { allowInsecureConnection: false };
  if (url.protocol !== 'http:') throw new TypeError(`ACS endpoint must use https, got ${url.protocol}`);
  if (!isLoopbackHost(url.hostname)) {
    throw new TypeError(`ACS endpoint ${url.origin} uses plain http; http is allowed only on a loopback host (the local emulator)`);
  }
  if (usesTokenCredential) {
    // core-rest-pipeline's bearer-token policy refuses non-https URLs on every request; fail now instead.
    throw new TypeError('A TokenCredential needs an https ACS endpoint; use a connection string for the local emulator');
  }
  return { allowInsecureConnection: true };
}

/** Create the ACS Identity client. Throws a `TypeError` for a malformed or insecure configuration. */
export function createIdentityClient(options: IdentityClientOptions): CommunicationIdentityClient {
  if (options.maxRetries !== undefined && (!Number.isInteger(options.maxRetries) || options.maxRetries < 0)) {
    throw new TypeError('maxRetries must be a non-negative integer');
  }
  const pipelineOptions = (allowInsecureConnection: boolean): CommunicationIdentityClientOptions => ({
    ...(allowInsecureConnection ? { allowInsecureConnection: true } : {}),
    ...(options.maxRetries === undefined ? {} : { retryOptions: { maxRetries: options.maxRetries } }),
    ...(options.userAgentPrefix === undefined ? {} : { userAgentOptions: { userAgentPrefix: options.userAgentPrefix } }),
    // perRetry: runs on each attempt's response before the retry policy sees it.
    ...(options.maxRetryWaitMs === undefined
      ? {}
      : { additionalPolicies: [{ policy: capRetryAfter(options.maxRetryWaitMs), position: 'perRetry' as const }] }),
  });

  if (options.connectionString !== undefined) {
    const parts = parseAcsConnectionString(options.connectionString);
    if (parts === undefined) {
      throw new TypeError('ACS connection string must look like endpoint=https://…/;accesskey=…');
    }
    if (!isBase64(parts.accessKey)) {
      throw new TypeError('ACS connection string accesskey must be base64');
    }
    const { allowInsecureConnection } = checkEndpoint(parts.endpoint, false);
    return new CommunicationIdentityClient(options.connectionString, pipelineOptions(allowInsecureConnection));
  }

  const { allowInsecureConnection } = checkEndpoint(options.endpoint, true);
  return new CommunicationIdentityClient(options.endpoint, options.credential, pipelineOptions(allowInsecureConnection));
}
