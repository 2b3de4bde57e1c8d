import { ConfidentialClientApplication, LogLevel } from '@azure/msal-node';
import { createMsalNetworkClient } from './msal-network-client';

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
 */
export type MsalLogLevelName = 'error' | 'warning' | 'info' | 'verbose' | 'trace';

export interface MsalClientOptions {
  /** Scheme and host of the authority, e.g. `https://login.microsoftonline.com` or the emulator's URL; https only. */
  readonly authorityHost: string;
  /** The tenant (GUID or verified domain) whose token endpoint is used. */
  readonly tenantId: string;
  /** This API's application (client) id, a GUID. */
  readonly clientId: string;
  readonly clientSecret: string;
  /** PEM of a CA to trust for the authority host (the local emulator's CA); Node's default roots otherwise. */
  readonly ca?: string;
  /** Deadline for each request to the authority (default 10 000 ms). */
  readonly timeoutMs?: number;
  /** Receives MSAL's warnings and errors (PII-free). */
  readonly logger?: (level: MsalLogLevelName, message: string) => void;
}

const PUBLIC_CLOUD_HOST = 'https://login.microsoftonline.com';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
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
  if ((parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search !== '' || parsed.hash !== '' || parsed.username !== '' || parsed.password !== '') {
    throw new TypeError(`createMsalClient: authorityHost must be a scheme and host only (no path, query or credentials), got '${authorityHost}'`);
  }
  return parsed;
}

/**
 * Creates the confidential client for `{authorityHost}/{tenantId}`; throws a TypeError naming the bad
 * option (non-https or non-origin authority host, common/organizations tenant, non-GUID client id, empty secret).
 */
export function createMsalClient(options: MsalClientOptions): ConfidentialClientApplication {
  if (typeof options !== 'object' || options === null) throw new TypeError('createMsalClient: options are required');
  const origin = authorityOrigin(options.authorityHost);
  if (typeof options.tenantId !== 'string') throw new TypeError('createMsalClient: tenantId is required');
  if (['common', 'organizations', 'consumers'].includes(options.tenantId.toLowerCase())) {
    throw new TypeError('createMsalClient: On-Behalf-Of needs a tenant-specific authority, not common/organizations/consumers');
  }
  if (!(GUID.test(options.tenantId) || TENANT_DOMAIN.test(options.tenantId))) {
    throw new TypeError(`createMsalClient: tenantId must be a tenant GUID or domain, got '${options.tenantId}'`);
  }
  if (typeof options.clientId !== 'string' || !GUID.test(options.clientId)) {
    throw new TypeError(`createMsalClient: clientId must be the application (client) id GUID, got '${String(options.clientId)}'`);
  }
  if (typeof options.clientSecret !== 'string' || options.clientSecret === '') {
    throw new TypeError('createMsalClient: clientSecret must be a non-empty string');
  }
  if (options.logger !== undefined && typeof options.logger !== 'function') {
    throw new TypeError('createMsalClient: logger must be a function');
  }

  const isPublicCloud = origin.origin === PUBLIC_CLOUD_HOST;
  const networkClient = createMsalNetworkClient({
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  const logger = options.logger;

  return new ConfidentialClientApplication({
    auth: {
      clientId: options.clientId,
      clientSecret: options.clientSecret,
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
