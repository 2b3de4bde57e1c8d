import { createSecretKey } from 'node:crypto';

import { MAX_SEAL_KEY_BYTES, MIN_SEAL_KEY_BYTES, SEAL_KEY_ID, type SealKey } from '../services/mapping-seal';
import {
  isBase64,
  isGuid,
  isHttpsOrLoopback,
  isLoopbackHost,
  parseAcsConnectionString,
  parseTableConnectionString,
} from '../validation/formats';

/**
 * Configuration: read once from the environment at start-up into a typed, frozen object.
 *
 * `loadConfig(env)` never reads `process.env` itself and never falls back to a placeholder for a
 * secret. It collects every problem before failing, so a misconfigured deployment stops with one
 * message that names each offending variable.
 */
export const ACS_TOKEN_SCOPES = ['chat', 'voip', 'chat.join', 'chat.join.limited', 'voip.join'] as const;
export type AcsTokenScope = (typeof ACS_TOKEN_SCOPES)[number];

export type Environment = 'development' | 'production' | 'test';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export type AcsAuth =
  | { readonly kind: 'connectionString'; readonly connectionString: string; readonly endpoint: string }
  | { readonly kind: 'managedIdentity'; readonly endpoint: string };

/**
 * How this API authenticates to Entra ID (On-Behalf-Of and client credentials): a client secret, or a
 * client certificate read from a PEM or PKCS#12 file by the composition root (so loading the config reads no file).
 */
export type EntraCredential =
  { readonly kind: 'secret'; readonly secret: string } | { readonly kind: 'certificate'; readonly path: string };

export interface Config {
  readonly environment: Environment;
  readonly server: {
    readonly port: number;
    readonly host: string | undefined;
    /** Express `trust proxy` value: hop count, or false. App Service fronts the app with one proxy. */
    readonly trustProxy: number | false;
    readonly corsAllowedOrigins: readonly string[];
    readonly jsonBodyLimitBytes: number;
  };
  readonly log: { readonly level: LogLevel };
  readonly entra: {
    readonly tenantId: string;
    readonly clientId: string;
    /** Accepted `aud` values: the client id and the App ID URI(s). */
    readonly audiences: readonly string[];
    readonly authorityHost: string;
    /** Accepted `iss` values: the tenant's v1 and v2 issuers, as the authority host's cloud spells them. */
    readonly issuers: { readonly v1: string; readonly v2: string };
    readonly jwksUris: { readonly v1: string; readonly v2: string };
    readonly jwksRefreshCooldownMs: number;
    readonly requiredScope: string;
    readonly adminRole: string;
    /** Client id the Teams users' Entra tokens must be issued to (`appid`), for the Teams exchange. */
    readonly teamsClientId: string;
    /** Client apps (`appid`/`azp`, lower case) whose tokens are accepted; empty: any app of the tenant. */
    readonly allowedClientAppIds: readonly string[];
  };
  /** Where the (tid, oid) → ACS identity mappings live (MAPPING_STORE), and what that store needs. */
  readonly mappings: MappingStoreConfig;
  readonly acs: {
    readonly auth: AcsAuth;
    /** Scopes issued by default, and the only ones a caller may ask for. */
    readonly tokenScopes: readonly AcsTokenScope[];
    readonly tokenExpiresInMinutes: number | undefined;
    /**
     * How long a token just issued is handed out again for the same identity, scopes and lifetime (0: never).
     * Default 10 s with REDIS_URL, which tells every instance of a revoke; 0 without (see docs/scale-out.md).
     */
    readonly tokenReuseSeconds: number;
  };
  readonly rateLimits: {
    /** Requests per minute per client address before authentication; 0 turns the limit off. */
    readonly perAddressPerMinute: number;
    /** Requests per minute per user after authentication; 0 turns the limit off. */
    readonly perUserPerMinute: number;
  };
  readonly mappingCache: {
    /** Users whose oid → ACS id mapping is kept in memory; 0 turns the cache off. */
    readonly maxEntries: number;
    readonly ttlMs: number;
  };
  readonly upstream: {
    /** Deadline of one upstream call (the SDK's own retries included); past it the caller gets 504. */
    readonly timeoutMs: number;
    /** Retries the SDKs make on 429/503 (Graph, ACS), honouring Retry-After; MSAL never retries. */
    readonly maxRetries: number;
  };
  /** The sign-in page at `/` (src/web/): on when it has a client app to sign in with, unless WEB_PAGE=off. */
  readonly webPage: WebPageConfig;
  /** State shared by every instance (REDIS_URL): rate-limit counts. Without it each instance keeps its own. */
  readonly sharedState: SharedStateConfig;
  /** Deprecated setting names that were used (for a start-up warning). */
  readonly deprecatedNamesUsed: readonly string[];
  /** Settings that are set but that the chosen mapping store does not use (for a start-up warning). */
  readonly unusedSettings: readonly string[];
}

/**
 * Redis as the fleet's shared state. The service never depends on it to answer: when Redis is slow or down each
 * instance falls back to its own state (see src/adapters/redis/).
 */
export type SharedStateConfig =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'redis';
      /** `rediss://` (TLS), or `redis://` on loopback only. May hold a password: a secret, never logged. */
      readonly url: string;
      /** Prefix of every key this service writes, so several deployments can share one Redis. */
      readonly keyPrefix: string;
      /** How long a Redis command may take before the instance answers from its own state instead. */
      readonly commandTimeoutMs: number;
    };

/**
 * The page signs users in as a Single-page application of its own (WEB_PAGE_CLIENT_ID), never as this API:
 * an API's registration has no SPA redirect URI, and its tokens would be refused by ENTRA_ALLOWED_CLIENT_APP_IDS.
 */
export type WebPageConfig = { readonly enabled: false } | { readonly enabled: true; readonly clientId: string };

/**
 * MAPPING_STORE=graph (the default, the original sample's design): a Graph open extension on each
 * user, reached On-Behalf-Of the caller, so it needs the API's Entra credential, Graph permissions and
 * the seal keys (the extension is user-writable). MAPPING_STORE=table: a table only this service can
 * write, keyed by the validated token's tid and oid; no Entra credential, no Graph, no seal key.
 */
export type MappingStoreConfig =
  | {
      readonly store: 'graph';
      readonly graph: GraphStoreConfig;
      /** The table named by MAPPING_TABLE_* when set: the target of `npm run mappings -- copy --to table`. */
      readonly table: TableStoreConfig | undefined;
    }
  | { readonly store: 'table'; readonly table: TableStoreConfig };

export interface GraphStoreConfig {
  /** This API's Entra credential, for On-Behalf-Of (and client credentials for admin erasure). */
  readonly credential: EntraCredential;
  readonly baseUrl: string;
  readonly extensionName: string;
  /** Delegated scopes requested in the On-Behalf-Of exchange. */
  readonly oboScopes: readonly string[];
  /** Scope of the app-only (client credentials) token used for admin erasure. */
  readonly appScope: string;
  /** On-Behalf-Of results (Graph tokens, a few KB each) kept in memory; 0 turns the cache off. */
  readonly oboCacheMaxEntries: number;
  /**
   * Keys that seal identity mappings (see services/mapping-seal.ts): new seals use the first, any
   * verifies. Secret: never logged.
   */
  readonly sealKeys: readonly SealKey[];
}

/**
 * The Azure Table Storage table of the mappings: reached with the managed identity (DefaultAzureCredential;
 * the recommended, secretless way) at an endpoint, or with a connection string (account key or SAS).
 */
export interface TableStoreConfig {
  readonly auth:
    | { readonly kind: 'managedIdentity'; readonly endpoint: string }
    | { readonly kind: 'connectionString'; readonly connectionString: string; readonly endpoint: string };
  readonly tableName: string;
}

export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Setting names of the original ACS authentication hero sample (its several releases), accepted so an
 * existing deployment can switch over; each use is reported as deprecated.
 */
export const LEGACY_ALIASES: Readonly<Record<string, readonly string[]>> = {
  // The `__` spellings are the C# sample's (ASP.NET Core reads `Section__Key` from the environment),
  // which the Node sample's deployment guide also uses for its app settings.
  ENTRA_TENANT_ID: [
    'microsoftEntraID_tenantId',
    'azureActiveDirectory_tenantId',
    'AzureActiveDirectory_TenantId',
    'AzureActiveDirectory__TenantId',
  ],
  ENTRA_CLIENT_ID: [
    'microsoftEntraID_clientId',
    'azureActiveDirectory_clientId',
    'AzureActiveDirectory_ClientId',
    'AzureActiveDirectory__ClientId',
  ],
  ENTRA_CLIENT_SECRET: [
    'microsoftEntraID_clientSecret',
    'azureActiveDirectory_clientSecret',
    'AzureActiveDirectory_ClientSecret',
    'AzureActiveDirectory__ClientSecret',
  ],
  ACS_CONNECTION_STRING: ['communicationServices_connectionString', 'ResourceConnectionString', 'CommunicationServices__ConnectionString'],
  GRAPH_EXTENSION_NAME: ['graph_extensionName', 'GraphExtensionName'],
};

/** Every setting this service reads (aliases excluded), for docs and the deployment template checks. */
export const SETTING_NAMES = [
  'NODE_ENV',
  'PORT',
  'HOST',
  'TRUST_PROXY',
  'CORS_ALLOWED_ORIGINS',
  'JSON_BODY_LIMIT_BYTES',
  'LOG_LEVEL',
  'ENTRA_TENANT_ID',
  'ENTRA_CLIENT_ID',
  'ENTRA_CLIENT_SECRET',
  'ENTRA_CLIENT_CERTIFICATE_PATH',
  'ENTRA_APP_ID_URI',
  'ENTRA_AUTHORITY_HOST',
  'ENTRA_V1_ISSUER_HOST',
  'ENTRA_ALLOWED_CLIENT_APP_IDS',
  'ENTRA_REQUIRED_SCOPE',
  'ENTRA_ADMIN_ROLE',
  'ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS',
  'TEAMS_CLIENT_ID',
  'GRAPH_BASE_URL',
  'GRAPH_EXTENSION_NAME',
  'MAPPING_SEAL_KEYS',
  'MAPPING_STORE',
  'MAPPING_TABLE_ENDPOINT',
  'MAPPING_TABLE_CONNECTION_STRING',
  'MAPPING_TABLE_NAME',
  'ACS_CONNECTION_STRING',
  'ACS_ENDPOINT',
  'ACS_TOKEN_SCOPES',
  'ACS_TOKEN_EXPIRES_IN_MINUTES',
  'UPSTREAM_TIMEOUT_MS',
  'UPSTREAM_MAX_RETRIES',
  'RATE_LIMIT_PER_ADDRESS_PER_MINUTE',
  'RATE_LIMIT_PER_USER_PER_MINUTE',
  'MAPPING_CACHE_MAX_ENTRIES',
  'MAPPING_CACHE_TTL_SECONDS',
  'OBO_CACHE_MAX_ENTRIES',
  'WEB_PAGE',
  'WEB_PAGE_CLIENT_ID',
  'REDIS_URL',
  'REDIS_KEY_PREFIX',
  'REDIS_TIMEOUT_MS',
  'ACS_TOKEN_REUSE_SECONDS',
] as const;

/** Settings whose presence means "a real Azure deployment is meant", which turns local mode off. */
export const AZURE_SETTING_NAMES: readonly string[] = [
  'ENTRA_TENANT_ID',
  'ENTRA_CLIENT_ID',
  'ENTRA_CLIENT_SECRET',
  'ENTRA_CLIENT_CERTIFICATE_PATH',
  'ENTRA_APP_ID_URI',
  'ENTRA_AUTHORITY_HOST',
  'ENTRA_V1_ISSUER_HOST',
  'TEAMS_CLIENT_ID',
  'GRAPH_BASE_URL',
  'ACS_CONNECTION_STRING',
  'ACS_ENDPOINT',
  'MAPPING_TABLE_ENDPOINT',
  'MAPPING_TABLE_CONNECTION_STRING',
  // The old names of these settings count too; the extension name alone does not point at Azure.
  ...['ENTRA_TENANT_ID', 'ENTRA_CLIENT_ID', 'ENTRA_CLIENT_SECRET', 'ACS_CONNECTION_STRING'].flatMap((name) => LEGACY_ALIASES[name] ?? []),
];

export const SECRET_SETTING_NAMES: readonly string[] = [
  'ENTRA_CLIENT_SECRET',
  'ACS_CONNECTION_STRING',
  'MAPPING_SEAL_KEYS',
  'MAPPING_TABLE_CONNECTION_STRING',
  'REDIS_URL',
];

/** What only the Graph store reads: with MAPPING_STORE=table these are unused (and the secrets among them should go). */
export const GRAPH_STORE_SETTING_NAMES: readonly string[] = [
  'ENTRA_CLIENT_SECRET',
  'ENTRA_CLIENT_CERTIFICATE_PATH',
  'GRAPH_BASE_URL',
  'GRAPH_EXTENSION_NAME',
  'MAPPING_SEAL_KEYS',
  'OBO_CACHE_MAX_ENTRIES',
];

/**
 * Graph scopes are named after the Graph resource, wherever GRAPH_BASE_URL points (a national cloud
 * or the local emulator stands in for the host only, as Entra ID names the scopes).
 */
const GRAPH_SCOPE_RESOURCE = 'https://graph.microsoft.com';
const PLACEHOLDER = /^<.*>$|^(your|changeme|todo|xxx)/i;

interface EntraCloud {
  /** Authority hosts of the cloud: its preferred host and the aliases MSAL knows for it. */
  readonly hosts: readonly string[];
  /** Origin of `iss` in v1 tokens (`{origin}/{tid}/`) and in v2 tokens (`{origin}/{tid}/v2.0`). */
  readonly v1: string;
  readonly v2: string;
}

/**
 * Where each Microsoft Entra cloud's tokens say they come from, whichever of its hosts the deployment
 * names. v2: msal-common's built-in authority metadata (`src/authority/AuthorityMetadata.ts`) gives each
 * cloud's issuer on its preferred host and lists the aliases (login.chinacloudapi.cn is an alias of
 * login.partner.microsoftonline.cn, login.usgovcloudapi.net of login.microsoftonline.us). v1: sts.windows.net
 * for the global and US Government clouds, sts.chinacloudapi.cn for the one operated by 21Vianet
 * (Microsoft Q&A 1190472, "What are the token issuers for the sovereign cloud?"; Azure/Azurite accepts the
 * same v1 prefixes in its OAuth check). Azure Germany closed in 2021 and is left out.
 */
const ENTRA_CLOUDS: readonly EntraCloud[] = [
  {
    hosts: ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com'],
    v1: 'https://sts.windows.net',
    v2: 'https://login.microsoftonline.com',
  },
  { hosts: ['login.microsoftonline.us', 'login.usgovcloudapi.net'], v1: 'https://sts.windows.net', v2: 'https://login.microsoftonline.us' },
  {
    hosts: ['login.partner.microsoftonline.cn', 'login.chinacloudapi.cn'],
    v1: 'https://sts.chinacloudapi.cn',
    v2: 'https://login.partner.microsoftonline.cn',
  },
];

/**
 * Reads settings from the environment and collects every problem instead of stopping at the first, so
 * `loadConfig` can name all offending variables in one message.
 */
class SettingsReader {
  readonly problems: string[] = [];
  readonly deprecated: string[] = [];

  constructor(private readonly env: Env) {}

  /** The raw value of a setting (or of the first legacy alias that is set), trimmed; undefined when empty. */
  raw(name: string): string | undefined {
    const own = this.env[name]?.trim();
    if (own) return own;
    for (const alias of LEGACY_ALIASES[name] ?? []) {
      const value = this.env[alias]?.trim();
      if (value) {
        // A setting may be read more than once (the credential is); report each old name once.
        const notice = `${alias} (use ${name})`;
        if (!this.deprecated.includes(notice)) this.deprecated.push(notice);
        return value;
      }
    }
    return undefined;
  }

  required(name: string, hint: string): string {
    const value = this.raw(name);
    if (value === undefined) {
      this.problems.push(`${name} is required: ${hint}`);
      return '';
    }
    if (PLACEHOLDER.test(value)) {
      this.problems.push(`${name} holds a placeholder value; set the real ${hint}`);
      return '';
    }
    return value;
  }

  guid(name: string, hint: string): string {
    const value = this.required(name, hint);
    if (value !== '' && !isGuid(value)) {
      this.problems.push(`${name} must be a GUID (${hint}); got '${value}'`);
      return '';
    }
    return value.toLowerCase();
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max}; got '${value}'`);
      return fallback;
    }
    return parsed;
  }

  httpsUrl(name: string, fallback: string, options: { allowLoopbackHttp?: boolean } = {}): string {
    const value = this.raw(name) ?? fallback;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      this.problems.push(`${name} must be an absolute URL; got '${value}'`);
      return fallback;
    }
    const allowed = options.allowLoopbackHttp === true ? isHttpsOrLoopback(url) : url.protocol === 'https:';
    if (!allowed) {
      this.problems.push(`${name} must be an https URL; got '${value}'`);
      return fallback;
    }
    return url.origin;
  }

  list(name: string): string[] | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    return value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== '');
  }
}

function parseEnvironment(reader: SettingsReader): Environment {
  // Secure by default: an unset NODE_ENV means production (no stacks in error bodies). Local mode
  // sets development for itself.
  const value = reader.raw('NODE_ENV') ?? 'production';
  if (value === 'development' || value === 'production' || value === 'test') return value;
  reader.problems.push(`NODE_ENV must be development, production or test; got '${value}'`);
  return 'production';
}

function parseLogLevel(reader: SettingsReader): LogLevel {
  const value = reader.raw('LOG_LEVEL') ?? 'info';
  const levels: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if ((levels as readonly string[]).includes(value)) return value as LogLevel;
  reader.problems.push(`LOG_LEVEL must be one of ${levels.join(', ')}; got '${value}'`);
  return 'info';
}

function parseTrustProxy(reader: SettingsReader): number | false {
  const value = reader.raw('TRUST_PROXY');
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === 'true') {
    reader.problems.push(
      `TRUST_PROXY must be a hop count (App Service: 1) or false, not 'true': trusting every hop lets clients forge their address`,
    );
    return false;
  }
  return reader.integer('TRUST_PROXY', 0, 0, 10) || false;
}

function parseCorsOrigins(reader: SettingsReader): string[] {
  const origins = reader.list('CORS_ALLOWED_ORIGINS') ?? [];
  const valid: string[] = [];
  for (const origin of origins) {
    try {
      const url = new URL(origin);
      if (url.origin !== origin.replace(/\/$/, '') || !isHttpsOrLoopback(url)) throw new Error('shape');
      valid.push(url.origin);
    } catch {
      reader.problems.push(
        `CORS_ALLOWED_ORIGINS entries must be origins such as https://app.contoso.com (https, no path); got '${origin}'`,
      );
    }
  }
  return valid;
}

function parseAcsAuth(reader: SettingsReader): AcsAuth {
  const connectionString = reader.raw('ACS_CONNECTION_STRING');
  const endpoint = reader.raw('ACS_ENDPOINT');
  if (connectionString !== undefined && endpoint !== undefined) {
    reader.problems.push('ACS_CONNECTION_STRING and ACS_ENDPOINT are both set: choose one (ACS_ENDPOINT uses the managed identity)');
  }
  if (connectionString !== undefined) {
    const parts = parseAcsConnectionString(connectionString);
    if (parts === undefined || PLACEHOLDER.test(connectionString)) {
      reader.problems.push('ACS_CONNECTION_STRING must look like endpoint=https://<resource>.communication.azure.com/;accesskey=<key>');
      return { kind: 'connectionString', connectionString: '', endpoint: '' };
    }
    // Named without the value: the key is in it.
    if (!isBase64(parts.accessKey)) reader.problems.push('ACS_CONNECTION_STRING accesskey must be the base64 access key of the resource');
    const parsedEndpoint = checkAcsEndpoint(reader, 'ACS_CONNECTION_STRING', parts.endpoint);
    return { kind: 'connectionString', connectionString, endpoint: parsedEndpoint };
  }
  if (endpoint !== undefined) return { kind: 'managedIdentity', endpoint: checkAcsEndpoint(reader, 'ACS_ENDPOINT', endpoint) };
  reader.problems.push(
    'ACS_ENDPOINT (managed identity, recommended) or ACS_CONNECTION_STRING is required: the Communication Services resource to issue identities from',
  );
  return { kind: 'managedIdentity', endpoint: '' };
}

/**
 * The v1 and v2 issuer origins for the authority host. Outside the known clouds the v2 issuer is on the
 * authority host itself (as MSAL assumes for any host), and the v1 issuer has to be named with
 * ENTRA_V1_ISSUER_HOST, which also overrides the derived value anywhere. A loopback host is the local
 * Entra emulator: it issues v1 tokens as the global cloud does and v2 tokens on its own host.
 */
function parseIssuerOrigins(reader: SettingsReader, authorityHost: string): { v1: string; v2: string } {
  const url = new URL(authorityHost);
  const cloud = ENTRA_CLOUDS.find((candidate) => candidate.hosts.includes(url.host));
  const v2 = cloud?.v2 ?? authorityHost;
  const globalV1 = ENTRA_CLOUDS[0]!.v1;
  if (reader.raw('ENTRA_V1_ISSUER_HOST') !== undefined) return { v1: reader.httpsUrl('ENTRA_V1_ISSUER_HOST', globalV1), v2 };
  if (cloud !== undefined) return { v1: cloud.v1, v2 };
  if (!isLoopbackHost(url.hostname)) {
    const known = ENTRA_CLOUDS.flatMap((candidate) => candidate.hosts).join(', ');
    reader.problems.push(
      `ENTRA_AUTHORITY_HOST '${authorityHost}' is not a Microsoft Entra cloud this service knows (${known}), so the issuer of its v1 tokens is unknown: ` +
        'set ENTRA_V1_ISSUER_HOST to it (for example https://sts.windows.net)',
    );
  }
  return { v1: globalV1, v2 };
}

/** ENTRA_ALLOWED_CLIENT_APP_IDS: application (client) IDs, comma-separated; none means any app of the tenant. */
function parseAllowedClientApps(reader: SettingsReader): string[] {
  const ids = reader.list('ENTRA_ALLOWED_CLIENT_APP_IDS') ?? [];
  for (const id of ids.filter((candidate) => !isGuid(candidate))) {
    reader.problems.push(`ENTRA_ALLOWED_CLIENT_APP_IDS must list application (client) IDs, GUIDs separated by commas; got '${id}'`);
  }
  return [...new Set(ids.filter((id) => isGuid(id)).map((id) => id.toLowerCase()))];
}

/**
 * WEB_PAGE on|off (default: on exactly when WEB_PAGE_CLIENT_ID is set) and WEB_PAGE_CLIENT_ID, the page's SPA
 * registration. A page that cannot sign anyone in is refused at start, rather than served broken.
 */
function parseWebPage(reader: SettingsReader, allowedClientAppIds: readonly string[]): WebPageConfig {
  const switchValue = reader.raw('WEB_PAGE')?.toLowerCase();
  if (switchValue !== undefined && switchValue !== 'on' && switchValue !== 'off') {
    reader.problems.push(`WEB_PAGE must be 'on' or 'off'; got '${reader.raw('WEB_PAGE')}'`);
    return { enabled: false };
  }
  if (switchValue === 'off') return { enabled: false };
  if (reader.raw('WEB_PAGE_CLIENT_ID') === undefined) {
    if (switchValue === 'on') {
      reader.problems.push(
        "WEB_PAGE=on needs WEB_PAGE_CLIENT_ID: the Application (client) ID of a Single-page application registration whose redirect URI is this service's https://<host>/",
      );
    }
    return { enabled: false };
  }
  const clientId = reader.guid('WEB_PAGE_CLIENT_ID', "the Application (client) ID of the page's Single-page application registration");
  if (clientId === '') return { enabled: false };
  if (allowedClientAppIds.length > 0 && !allowedClientAppIds.includes(clientId)) {
    reader.problems.push(
      'WEB_PAGE_CLIENT_ID must be one of ENTRA_ALLOWED_CLIENT_APP_IDS when that is set: the API would refuse the tokens the page signs in for',
    );
  }
  return { enabled: true, clientId };
}

/** REDIS_URL (a secret: its password is never echoed), REDIS_KEY_PREFIX, REDIS_TIMEOUT_MS. */
function parseSharedState(reader: SettingsReader): SharedStateConfig {
  const raw = reader.raw('REDIS_URL');
  const keyPrefix = reader.raw('REDIS_KEY_PREFIX') ?? 'acs-auth:';
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(keyPrefix)) {
    reader.problems.push(`REDIS_KEY_PREFIX must be 1 to 64 letters, digits or ':_.-'; got '${keyPrefix}'`);
  }
  const commandTimeoutMs = reader.integer('REDIS_TIMEOUT_MS', 250, 10, 10_000);
  if (raw === undefined) return { kind: 'none' };
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  const plainOnLoopback = url?.protocol === 'redis:' && isLoopbackHost(url.hostname);
  // A database number is the only path node-redis takes; anything else would stop the start later, less clearly.
  const pathOk = url === undefined || /^\/?(\d{1,2})?$/.test(url.pathname);
  if (url === undefined || !(url.protocol === 'rediss:' || plainOnLoopback) || url.hostname === '' || url.hash !== '' || !pathOk) {
    // Not echoed: the URL may carry the password.
    reader.problems.push(
      'REDIS_URL must be rediss://[user:password@]host[:port][/db] (TLS), or redis://… on a loopback host only; the value given is not (not shown: it may hold a password)',
    );
    return { kind: 'none' };
  }
  return { kind: 'redis', url: raw, keyPrefix, commandTimeoutMs };
}

function parseEntraCredential(reader: SettingsReader): EntraCredential {
  const secret = reader.raw('ENTRA_CLIENT_SECRET');
  const path = reader.raw('ENTRA_CLIENT_CERTIFICATE_PATH');
  if (secret !== undefined && path !== undefined) {
    reader.problems.push(
      'ENTRA_CLIENT_SECRET and ENTRA_CLIENT_CERTIFICATE_PATH are both set: choose one credential for this API (the certificate is preferred)',
    );
    return { kind: 'secret', secret: '' };
  }
  if (path !== undefined) {
    if (PLACEHOLDER.test(path))
      reader.problems.push(
        'ENTRA_CLIENT_CERTIFICATE_PATH holds a placeholder value; set the path of the PEM or .p12 file (private key and certificate)',
      );
    return { kind: 'certificate', path };
  }
  if (secret === undefined) {
    reader.problems.push(
      "ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERTIFICATE_PATH is required: a client secret of this API's app registration, or the path of a PEM or password-less .p12 file with its certificate and private key (for On-Behalf-Of)",
    );
    return { kind: 'secret', secret: '' };
  }
  return { kind: 'secret', secret: reader.required('ENTRA_CLIENT_SECRET', "client secret of this API's app registration") };
}

function checkAcsEndpoint(reader: SettingsReader, name: string, value: string): string {
  try {
    const url = new URL(value);
    if (isHttpsOrLoopback(url)) return `${url.origin}/`;
  } catch {
    // reported below
  }
  reader.problems.push(`${name} must name an https endpoint such as https://<resource>.communication.azure.com/`);
  return '';
}

const SEAL_KEYS_HINT =
  "one or more 'id:key' pairs separated by commas, each key at least 32 random bytes in base64 (e.g. k1:$(openssl rand -base64 32)); the first seals, every one verifies";
/** More keys than a rotation needs only slows down nothing, but a long list is a mistake worth naming. */
const MAX_SEAL_KEYS = 10;

/** One key's text as base64 or base64url (canonical, so a typo is not silently decoded into other bytes). */
function decodeSealKey(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text) || text.length > 200) return undefined;
  const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  const again = bytes.toString('base64');
  return again.replace(/=+$/, '') === text.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '') ? bytes : undefined;
}

/**
 * MAPPING_SEAL_KEYS: `id:base64key[,id:base64key…]`. Problems name the entry by position and id,
 * never by its key, so the message can be logged.
 */
function parseSealKeys(reader: SettingsReader): SealKey[] {
  const entries = reader.list('MAPPING_SEAL_KEYS');
  if (entries === undefined) {
    reader.problems.push(`MAPPING_SEAL_KEYS is required: ${SEAL_KEYS_HINT}`);
    return [];
  }
  if (entries.length > MAX_SEAL_KEYS) reader.problems.push(`MAPPING_SEAL_KEYS holds ${entries.length} keys; at most ${MAX_SEAL_KEYS}`);
  const keys: SealKey[] = [];
  entries.slice(0, MAX_SEAL_KEYS).forEach((entry, index) => {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon).trim();
    const where = `MAPPING_SEAL_KEYS entry ${index + 1}${SEAL_KEY_ID.test(id) ? ` ('${id}')` : ''}`;
    if (!SEAL_KEY_ID.test(id)) {
      reader.problems.push(
        `${where} must start with a key id of 1 to 32 letters, digits, '-' or '_', then ':' and the key (${SEAL_KEYS_HINT})`,
      );
      return;
    }
    if (keys.some((key) => key.id === id)) {
      reader.problems.push(`${where}: the key id is used twice`);
      return;
    }
    const secret = decodeSealKey(entry.slice(colon + 1).trim());
    if (secret === undefined || PLACEHOLDER.test(entry.slice(colon + 1).trim())) {
      reader.problems.push(`${where}: the key is not base64 (${SEAL_KEYS_HINT})`);
      return;
    }
    if (secret.length < MIN_SEAL_KEY_BYTES || secret.length > MAX_SEAL_KEY_BYTES) {
      reader.problems.push(`${where}: the key must be ${MIN_SEAL_KEY_BYTES} to ${MAX_SEAL_KEY_BYTES} bytes; it has ${secret.length}`);
      return;
    }
    keys.push({ id, secret: createSecretKey(secret) });
  });
  return keys;
}

/** Azure's rule for table names (and 'tables', which the service reserves). */
const TABLE_NAME = /^[A-Za-z][A-Za-z0-9]{2,62}$/;

/**
 * A table endpoint as the Tables SDK takes it: https (http only on loopback, for Azurite), with the
 * account in the path for an emulator (`https://127.0.0.1:10002/<account>`), no query, credentials or fragment.
 */
function checkTableEndpoint(reader: SettingsReader, name: string, value: string): string {
  try {
    const url = new URL(value);
    if (isHttpsOrLoopback(url) && url.search === '' && url.hash === '' && url.username === '' && url.password === '') {
      return `${url.origin}${url.pathname}`.replace(/\/$/, '');
    }
  } catch {
    // reported below
  }
  reader.problems.push(`${name} must name an https table endpoint such as https://<account>.table.core.windows.net`);
  return '';
}

/**
 * MAPPING_TABLE_*: where the table store is. Undefined when none of them is set and the table is not
 * needed (`required` false: the Graph store, where the table is only the copy command's target).
 */
function parseTableStore(reader: SettingsReader, required: boolean): TableStoreConfig | undefined {
  const endpoint = reader.raw('MAPPING_TABLE_ENDPOINT');
  const connectionString = reader.raw('MAPPING_TABLE_CONNECTION_STRING');
  const tableName = reader.raw('MAPPING_TABLE_NAME') ?? 'AcsIdentityMappings';
  if (!TABLE_NAME.test(tableName) || tableName.toLowerCase() === 'tables') {
    reader.problems.push(`MAPPING_TABLE_NAME must be 3 to 63 letters and digits, starting with a letter; got '${tableName}'`);
  }
  if (endpoint !== undefined && connectionString !== undefined) {
    reader.problems.push(
      'MAPPING_TABLE_ENDPOINT and MAPPING_TABLE_CONNECTION_STRING are both set: choose one (MAPPING_TABLE_ENDPOINT uses the managed identity)',
    );
  }
  if (connectionString !== undefined) {
    const parts = parseTableConnectionString(connectionString);
    // Named without the value: the key is in it.
    if (parts === undefined || PLACEHOLDER.test(connectionString)) {
      reader.problems.push(
        'MAPPING_TABLE_CONNECTION_STRING must be a Storage connection string (DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;EndpointSuffix=core.windows.net, or TableEndpoint=…;SharedAccessSignature=…)',
      );
      return { auth: { kind: 'connectionString', connectionString: '', endpoint: '' }, tableName };
    }
    if (parts.accountKey !== undefined && !isBase64(parts.accountKey)) {
      reader.problems.push('MAPPING_TABLE_CONNECTION_STRING AccountKey must be the base64 key of the storage account');
    }
    const checked = checkTableEndpoint(reader, 'MAPPING_TABLE_CONNECTION_STRING', parts.endpoint);
    return { auth: { kind: 'connectionString', connectionString, endpoint: checked }, tableName };
  }
  if (endpoint !== undefined)
    return { auth: { kind: 'managedIdentity', endpoint: checkTableEndpoint(reader, 'MAPPING_TABLE_ENDPOINT', endpoint) }, tableName };
  if (!required) return undefined;
  reader.problems.push(
    'MAPPING_TABLE_ENDPOINT (managed identity, recommended) or MAPPING_TABLE_CONNECTION_STRING is required with MAPPING_STORE=table: the storage account table endpoint, such as https://<account>.table.core.windows.net',
  );
  return { auth: { kind: 'managedIdentity', endpoint: '' }, tableName };
}

/** The Graph store's settings: the extension, the API's credential for On-Behalf-Of, the seal keys. */
function parseGraphStore(reader: SettingsReader): GraphStoreConfig {
  const extensionName = reader.raw('GRAPH_EXTENSION_NAME') ?? 'com.contoso.identityMapping';
  if (!/^[A-Za-z][A-Za-z0-9_.-]{2,99}$/.test(extensionName)) {
    reader.problems.push(`GRAPH_EXTENSION_NAME must be a reverse-DNS name such as com.contoso.identityMapping; got '${extensionName}'`);
  }
  return {
    credential: parseEntraCredential(reader),
    baseUrl: reader.httpsUrl('GRAPH_BASE_URL', 'https://graph.microsoft.com'),
    extensionName,
    // Writing /me/extensions needs User.ReadWrite; the original sample asked only for user.read.
    oboScopes: [`${GRAPH_SCOPE_RESOURCE}/User.ReadWrite`],
    appScope: `${GRAPH_SCOPE_RESOURCE}/.default`,
    oboCacheMaxEntries: reader.integer('OBO_CACHE_MAX_ENTRIES', 5_000, 0, 1_000_000),
    sealKeys: parseSealKeys(reader),
  };
}

/** MAPPING_STORE and the chosen store's settings; the other store's settings are reported as unused. */
function parseMappingStore(reader: SettingsReader): { mappings: MappingStoreConfig; unused: string[] } {
  const store = reader.raw('MAPPING_STORE') ?? 'graph';
  if (store === 'table') {
    const unused = GRAPH_STORE_SETTING_NAMES.filter((name) => reader.raw(name) !== undefined);
    // Only looked at to name them: nothing of the Graph store is parsed, so none of it can stop the start.
    return { mappings: { store: 'table', table: parseTableStore(reader, true)! }, unused };
  }
  if (store !== 'graph') reader.problems.push(`MAPPING_STORE must be graph or table; got '${store}'`);
  return { mappings: { store: 'graph', graph: parseGraphStore(reader), table: parseTableStore(reader, false) }, unused: [] };
}

function parseScopes(reader: SettingsReader): AcsTokenScope[] {
  const scopes = reader.list('ACS_TOKEN_SCOPES') ?? ['chat', 'voip'];
  const unknown = scopes.filter((scope) => !(ACS_TOKEN_SCOPES as readonly string[]).includes(scope));
  if (unknown.length > 0 || scopes.length === 0) {
    reader.problems.push(`ACS_TOKEN_SCOPES must be a comma-separated list of ${ACS_TOKEN_SCOPES.join(', ')}; got '${scopes.join(',')}'`);
    return ['chat', 'voip'];
  }
  return [...new Set(scopes)] as AcsTokenScope[];
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

export function loadConfig(env: Env): Config {
  const reader = new SettingsReader(env);
  const environment = parseEnvironment(reader);

  const tenantId = reader.guid('ENTRA_TENANT_ID', "the Directory (tenant) ID of this API's app registration");
  const clientId = reader.guid('ENTRA_CLIENT_ID', "the Application (client) ID of this API's app registration");
  const { mappings, unused } = parseMappingStore(reader);
  const appIdUris = reader.list('ENTRA_APP_ID_URI') ?? (clientId ? [`api://${clientId}`] : []);
  const authorityHost = reader.httpsUrl('ENTRA_AUTHORITY_HOST', 'https://login.microsoftonline.com');
  const issuerOrigins = parseIssuerOrigins(reader, authorityHost);
  const requiredScope = reader.raw('ENTRA_REQUIRED_SCOPE') ?? 'access_as_user';
  if (/\s/.test(requiredScope)) reader.problems.push(`ENTRA_REQUIRED_SCOPE must be a single scope name; got '${requiredScope}'`);
  const teamsClientId =
    reader.raw('TEAMS_CLIENT_ID') === undefined
      ? clientId
      : reader.guid('TEAMS_CLIENT_ID', 'the client id Teams user tokens are issued to');

  const allowedClientAppIds = parseAllowedClientApps(reader);
  const sharedState = parseSharedState(reader);
  const tokenExpiresRaw = reader.raw('ACS_TOKEN_EXPIRES_IN_MINUTES');
  const tokenExpiresInMinutes = tokenExpiresRaw === undefined ? undefined : reader.integer('ACS_TOKEN_EXPIRES_IN_MINUTES', 1440, 60, 1440);

  const config: Config = {
    environment,
    server: {
      port: reader.integer('PORT', 5000, 0, 65535),
      host: reader.raw('HOST'),
      trustProxy: parseTrustProxy(reader),
      corsAllowedOrigins: parseCorsOrigins(reader),
      jsonBodyLimitBytes: reader.integer('JSON_BODY_LIMIT_BYTES', 16 * 1024, 256, 1024 * 1024),
    },
    log: { level: parseLogLevel(reader) },
    entra: {
      tenantId,
      clientId,
      audiences: [clientId, ...appIdUris].filter((audience) => audience !== ''),
      authorityHost,
      issuers: { v1: `${issuerOrigins.v1}/${tenantId}/`, v2: `${issuerOrigins.v2}/${tenantId}/v2.0` },
      jwksUris: { v1: `${authorityHost}/${tenantId}/discovery/keys`, v2: `${authorityHost}/${tenantId}/discovery/v2.0/keys` },
      jwksRefreshCooldownMs: reader.integer('ENTRA_JWKS_REFRESH_COOLDOWN_SECONDS', 60, 0, 3600) * 1000,
      requiredScope,
      adminRole: reader.raw('ENTRA_ADMIN_ROLE') ?? 'AcsAuth.Admin',
      teamsClientId,
      allowedClientAppIds,
    },
    mappings,
    acs: {
      auth: parseAcsAuth(reader),
      tokenScopes: parseScopes(reader),
      tokenExpiresInMinutes,
      tokenReuseSeconds: reader.integer('ACS_TOKEN_REUSE_SECONDS', sharedState.kind === 'redis' ? 10 : 0, 0, 300),
    },
    rateLimits: {
      perAddressPerMinute: reader.integer('RATE_LIMIT_PER_ADDRESS_PER_MINUTE', 600, 0, 1_000_000),
      perUserPerMinute: reader.integer('RATE_LIMIT_PER_USER_PER_MINUTE', 60, 0, 1_000_000),
    },
    mappingCache: {
      maxEntries: reader.integer('MAPPING_CACHE_MAX_ENTRIES', 50_000, 0, 10_000_000),
      ttlMs: reader.integer('MAPPING_CACHE_TTL_SECONDS', 300, 1, 86_400) * 1000,
    },
    upstream: {
      timeoutMs: reader.integer('UPSTREAM_TIMEOUT_MS', 10_000, 100, 120_000),
      maxRetries: reader.integer('UPSTREAM_MAX_RETRIES', 2, 0, 5),
    },
    webPage: parseWebPage(reader, allowedClientAppIds),
    sharedState,
    deprecatedNamesUsed: reader.deprecated,
    unusedSettings: unused,
  };

  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
  return deepFreeze(config);
}

/** True when no setting that points at real Azure is present. */
export function hasNoAzureSettings(env: Env): boolean {
  return AZURE_SETTING_NAMES.every((name) => !env[name]?.trim());
}
