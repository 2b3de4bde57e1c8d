import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';

import type { TableStoreConfig } from '../../config/config';
import { isLoopbackHost } from '../../validation/formats';
import { capRetryAfter } from '../retry-after-cap';

/**
 * Builds the service's one `TableClient` for the mapping table: with a TokenCredential (the managed
 * identity; the storage account can then refuse shared keys altogether) or a connection string.
 *
 * Plain `http:` is accepted only on a loopback host (Azurite without TLS); the bearer-token policy of
 * core-rest-pipeline refuses it for a TokenCredential anyway, so that combination is refused here, at
 * start-up, instead of on every request.
 */
export interface MappingTableClientOptions {
  readonly table: TableStoreConfig;
  /** Required for `managedIdentity`; ignored for a connection string. */
  readonly credential?: TokenCredential;
  /** Retries after 429, 500, 503 and connection failures (the SDK's policy); its default is 3. */
  readonly maxRetries: number;
  /** Longest `Retry-After` worth waiting for inside one request (see retry-after-cap.ts). */
  readonly maxRetryWaitMs: number;
  /** PEM of a CA to trust besides the system's: the local Azurite's throwaway CA. Never set in production. */
  readonly ca?: string;
  readonly userAgentPrefix?: string;
}

function transportOf(endpoint: string, usesTokenCredential: boolean): { allowInsecureConnection: boolean } {
  const url = new URL(endpoint);
  if (url.protocol === 'https:') return { allowInsecureConnection: false };
  if (url.protocol !== 'http:' || !isLoopbackHost(url.hostname)) {
    throw new TypeError(`table endpoint ${url.origin} must use https (plain http only on a loopback host, for Azurite)`);
  }
  if (usesTokenCredential) throw new TypeError('a managed identity needs an https table endpoint');
  return { allowInsecureConnection: true };
}

export function createMappingTableClient(options: MappingTableClientOptions): TableClient {
  const { table } = options;
  const clientOptions = (allowInsecureConnection: boolean): TableServiceClientOptions => ({
    ...(allowInsecureConnection ? { allowInsecureConnection: true } : {}),
    retryOptions: { maxRetries: options.maxRetries },
    ...(options.ca === undefined ? {} : { tlsOptions: { ca: options.ca } }),
    ...(options.userAgentPrefix === undefined ? {} : { userAgentOptions: { userAgentPrefix: options.userAgentPrefix } }),
    additionalPolicies: [{ policy: capRetryAfter(options.maxRetryWaitMs), position: 'perRetry' }],
  });
  if (table.auth.kind === 'connectionString') {
    const { allowInsecureConnection } = transportOf(table.auth.endpoint, false);
    return TableClient.fromConnectionString(table.auth.connectionString, table.tableName, clientOptions(allowInsecureConnection));
  }
  if (options.credential === undefined) throw new TypeError('a managed-identity table endpoint needs a TokenCredential');
  const { allowInsecureConnection } = transportOf(table.auth.endpoint, true);
  return new TableClient(table.auth.endpoint, table.tableName, options.credential, clientOptions(allowInsecureConnection));
}
