/**
 * Builds the service's MSAL confidential client (the On-Behalf-Of middle tier).
 *
 * - The public cloud (`https://login.microsoftonline.com`) uses MSAL's built-in metadata. For any
 *   other host (a sovereign cloud or the local Entra emulator) the host is listed in
 *   `knownAuthorities`, so MSAL trusts it without calling Microsoft's instance-discovery endpoint
 *   (which would leave the machine and fail for a loopback host); MSAL then reads the tenant's v2
 *   OpenID configuration from that host once per client.
 * - MSAL's HTTP goes through one keep-alive agent that trusts `ca` when given, so a private CA is
 *   trusted by MSAL only and TLS verification is never turned off.
 * - MSAL logs warnings and errors only, never with personal data.
 * - The app authenticates with a client secret or a client certificate (msal then sends a signed
 *   client assertion instead of the secret); one confidential client serves the whole process.
 *
 * @packageDocumentation
 */

import { ConfidentialClientApplication, LogLevel } from '@azure/msal-node';
import { createMsalNetworkClient, type MsalNetworkClient } from './msal-network-client';
import { isBareOrigin, isGuid } from '../../validation/formats';

/** MSAL's log levels by name, as the service's configuration writes them. */
export type MsalLogLevelName = 'error' | 'warning' | 'info' | 'verbose' | 'trace';

/** A certificate credential: msal signs a client assertion (PS256, `x5t#S256` header) with the key. */
export interface MsalClientCertificate {
  /** Hex SHA-256 thumbprint of the certificate uploaded to the app registration. */
  readonly thumbprintSha256: string;
  /** PEM of the certificate's unencrypted RSA private key. */
  readonly privateKey: string;
  /**
   * PEM of the certificate (and chain), sent as the assertion's `x5c` header. Only subject name/issuer
   * (SN+I) authentication needs it; leave it out for a certificate uploaded to the app registration.
   */
  readonly x5c?: string;
}

/** The app's credential: exactly one of a client secret or a client certificate. */
export type MsalClientCredential =
  | { readonly clientSecret: string; readonly clientCertificate?: never }
  | { readonly clientCertificate: MsalClientCertificate; readonly clientSecret?: never };

export type MsalClientOptions = MsalClientCredential & {
  /** Scheme and host of the authority, e.g. `https://login.microsoftonline.com` or the emulator's URL; https only. */
  readonly authorityHost: string;
  /** The tenant (GUID or verified domain) whose token endpoint is used. */
  readonly tenantId: string;
  /** This API's application (client) id, a GUID. */
  readonly clientId: string;
  /** PEM of a CA to trust for the authority host (the local emulator's CA); Node's default roots otherwise. */
  readonly ca?: string;
  /** Deadline for each request to the authority (default 10 000 ms). */
  readonly timeoutMs?: number;
  /** Receives MSAL's warnings and errors (PII-free). */
  readonly logger?: (level: MsalLogLevelName, message: string) => void;
  /** The network client to use (so its owner can close its sockets); one is made from `ca`/`timeoutMs` when absent. */
  readonly networkClient?: MsalNetworkClient;
};

const PUBLIC_CLOUD_HOST = 'https://login.microsoftonline.com';
const SHA256_HEX = /^[0-9a-f]{64}$/i;
const TENANT_DOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/i;
const LEVEL_NAMES: Readonly<Record<LogLevel, MsalLogLevelName>> = {
  [LogLevel.Error]: 'error',
  [LogLevel.Warning]: 'warning',
  [LogLevel.Info]: 'info',
  [LogLevel.Verbose]: 'verbose',
  [LogLevel.Trace]: 'trace',
};

/** Validates `authorityHost` and returns its origin (`https://host[:port]`). */
function authorityOrigin(authorityHost: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(authorityHost);
  } catch {
    throw new TypeError(`createMsalClient: authorityHost must be an absolute https URL, got '${authorityHost}'`);
  }
  if (parsed.protocol !== 'https:') {
    throw new TypeError(`createMsalClient: authorityHost must use https (MSAL refuses other schemes), got '${authorityHost}'`);
  }
  if (!isBareOrigin(parsed)) {
    throw new TypeError(
      `createMsalClient: authorityHost must be a scheme and host only (no path, query or credentials), got '${authorityHost}'`,
    );
  }
  return parsed;
}

/** msal's `auth` credential fields for exactly one of a secret or a certificate. */
function checkedCredential(options: MsalClientCredential): { clientSecret: string } | { clientCertificate: MsalClientCertificate } {
  const { clientSecret, clientCertificate } = options as { clientSecret?: unknown; clientCertificate?: unknown };
  if (clientSecret !== undefined && clientCertificate !== undefined) {
    throw new TypeError('createMsalClient: pass clientSecret or clientCertificate, not both');
  }
  if (clientCertificate === undefined) {
    if (typeof clientSecret !== 'string' || clientSecret === '') {
      throw new TypeError('createMsalClient: clientSecret must be a non-empty string (or pass clientCertificate)');
    }
    return { clientSecret };
  }
  if (typeof clientCertificate !== 'object' || clientCertificate === null)
    throw new TypeError('createMsalClient: clientCertificate must be an object');
  const { thumbprintSha256, privateKey, x5c } = clientCertificate as Partial<Record<keyof MsalClientCertificate, unknown>>;
  if (typeof thumbprintSha256 !== 'string' || !SHA256_HEX.test(thumbprintSha256)) {
    throw new TypeError('createMsalClient: clientCertificate.thumbprintSha256 must be the 64-hex-digit SHA-256 thumbprint');
  }
  if (typeof privateKey !== 'string' || !/-----BEGIN (RSA )?PRIVATE KEY-----/.test(privateKey)) {
    throw new TypeError('createMsalClient: clientCertificate.privateKey must be an unencrypted PEM private key');
  }
  if (x5c !== undefined && (typeof x5c !== 'string' || !x5c.includes('-----BEGIN CERTIFICATE-----'))) {
    throw new TypeError('createMsalClient: clientCertificate.x5c must be PEM certificates when given');
  }
  return { clientCertificate: { thumbprintSha256: thumbprintSha256.toLowerCase(), privateKey, ...(x5c === undefined ? {} : { x5c }) } };
}

/**
 * Creates the confidential client for `{authorityHost}/{tenantId}`; throws a TypeError naming the bad
 * option (non-https or non-origin authority host, common/organizations tenant, non-GUID client id,
 * no credential or both, empty secret, malformed certificate fields).
 */
export function createMsalClient(options: MsalClientOptions): ConfidentialClientApplication {
  if (typeof options !== 'object' || options === null) throw new TypeError('createMsalClient: options are required');
  const origin = authorityOrigin(options.authorityHost);
  if (typeof options.tenantId !== 'string') throw new TypeError('createMsalClient: tenantId is required');
  if (['common', 'organizations', 'consumers'].includes(options.tenantId.toLowerCase())) {
    throw new TypeError('createMsalClient: On-Behalf-Of needs a tenant-specific authority, not common/organizations/consumers');
  }
  if (!(isGuid(options.tenantId) || TENANT_DOMAIN.test(options.tenantId))) {
    throw new TypeError(`createMsalClient: tenantId must be a tenant GUID or domain, got '${options.tenantId}'`);
  }
  if (!isGuid(options.clientId)) {
    throw new TypeError(`createMsalClient: clientId must be the application (client) id GUID, got '${String(options.clientId)}'`);
  }
  const credential = checkedCredential(options);
  if (options.logger !== undefined && typeof options.logger !== 'function') {
    throw new TypeError('createMsalClient: logger must be a function');
  }

  const isPublicCloud = origin.origin === PUBLIC_CLOUD_HOST;
  const networkClient =
    options.networkClient ??
    createMsalNetworkClient({
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
  const logger = options.logger;

  return new ConfidentialClientApplication({
    auth: {
      clientId: options.clientId,
      ...credential,
      authority: `${origin.origin}/${options.tenantId}`,
      // `host` keeps the port, which is how MSAL compares authorities.
      ...(isPublicCloud ? {} : { knownAuthorities: [origin.host] }),
    },
    system: {
      networkClient,
      loggerOptions: {
        logLevel: LogLevel.Warning,
        piiLoggingEnabled: false,
        loggerCallback: (level, message, containsPii) => {
          if (logger === undefined || containsPii) return;
          logger(LEVEL_NAMES[level] ?? 'warning', message);
        },
      },
    },
  });
}
