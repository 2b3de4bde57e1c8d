/**
 * The value shapes that the service, its admin command and the emulators all check: GUIDs, loopback hosts,
 * https-or-loopback endpoints and the ACS connection string. One definition each, so a setting the config
 * accepts is one the adapter accepts too, and an emulator refuses exactly what the service would.
 *
 * @packageDocumentation
 */

/** The 8-4-4-4-12 hexadecimal form, either case, unanchored (to compose into larger patterns). */
export const GUID_PATTERN_SOURCE = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';

const GUID = new RegExp(`^${GUID_PATTERN_SOURCE}$`);

/** True when the whole value is a GUID in the 8-4-4-4-12 form (object ids, tenant ids, client ids). */
export function isGuid(value: unknown): boolean {
  return typeof value === 'string' && GUID.test(value);
}

const IPV4_LOOPBACK = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** True for `localhost`, 127.0.0.0/8 and `::1`, written bare or as `URL.hostname` writes it (`[::1]`). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === 'localhost' || host === '[::1]' || host === '::1' || IPV4_LOOPBACK.test(host);
}

/**
 * True for https, and for plain http on a loopback host (the local emulators). Everything this service
 * sends a key or token to must pass this: plain http elsewhere would put them on the wire in clear.
 */
export function isHttpsOrLoopback(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}

/** True when the URL is a bare origin: no credentials, path (other than `/`), query or fragment. */
export function isBareOrigin(url: URL): boolean {
  return (
    url.username === '' && url.password === '' && (url.pathname === '/' || url.pathname === '') && url.search === '' && url.hash === ''
  );
}

/** The parts of an ACS connection string. */
export interface AcsConnectionStringParts {
  readonly endpoint: string;
  readonly accessKey: string;
}

/**
 * The ACS SDK's own reading of a connection string (`@azure/communication-common`,
 * `credential/connectionString.ts`: `endpoint=(.*);accesskey=(.*)`, case-insensitive, greedy). The config
 * and the adapter use this one function, so both see the endpoint and key the SDK will use. Undefined
 * when either part is missing or empty. The result holds the key: never log it.
 */
export function parseAcsConnectionString(value: string): AcsConnectionStringParts | undefined {
  const match = /endpoint=(.*);accesskey=(.*)/i.exec(value);
  const endpoint = match?.[1];
  const accessKey = match?.[2];
  if (endpoint === undefined || endpoint === '' || accessKey === undefined || accessKey === '') return undefined;
  return { endpoint, accessKey };
}

/** What a Storage connection string says, read as @azure/data-tables reads it (`key=value;…`, keys in any case). */
export interface TableConnectionStringParts {
  /** The table endpoint the SDK would call, without a trailing slash. */
  readonly endpoint: string;
  readonly kind: 'accountKey' | 'sas' | 'developmentStorage';
  readonly accountName: string | undefined;
  readonly accountKey: string | undefined;
}

/**
 * Parse a Storage connection string for the Tables SDK: an account key form (DefaultEndpointsProtocol,
 * AccountName, AccountKey, and TableEndpoint or EndpointSuffix), a SAS form (TableEndpoint and
 * SharedAccessSignature), or UseDevelopmentStorage=true (the SDK then uses Azurite's default address).
 * Undefined when the SDK could not use it; whether the key is base64 and the endpoint https is for the caller to judge.
 */
export function parseTableConnectionString(value: string): TableConnectionStringParts | undefined {
  const parts = new Map<string, string>();
  for (const element of value.split(';')) {
    const equals = element.indexOf('=');
    if (equals > 0) parts.set(element.slice(0, equals).trim().toLowerCase(), element.slice(equals + 1).trim());
  }
  const get = (key: string): string | undefined => (parts.get(key) === '' ? undefined : parts.get(key));
  if (get('usedevelopmentstorage')?.toLowerCase() === 'true') {
    return {
      endpoint: 'http://127.0.0.1:10002/devstoreaccount1',
      kind: 'developmentStorage',
      accountName: 'devstoreaccount1',
      accountKey: undefined,
    };
  }
  const tableEndpoint = get('tableendpoint')?.replace(/\/$/, '');
  const accountName = get('accountname');
  const accountKey = get('accountkey');
  if (get('defaultendpointsprotocol') !== undefined && accountKey !== undefined) {
    if (accountName === undefined) return undefined;
    const endpoint =
      tableEndpoint ?? `${get('defaultendpointsprotocol')}://${accountName}.table.${get('endpointsuffix') ?? 'core.windows.net'}`;
    return { endpoint, kind: 'accountKey', accountName, accountKey };
  }
  if (tableEndpoint !== undefined && get('sharedaccesssignature') !== undefined) {
    return { endpoint: tableEndpoint, kind: 'sas', accountName, accountKey: undefined };
  }
  return undefined;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** True for padded standard base64 (ACS access keys, seal keys). */
export function isBase64(value: string): boolean {
  return BASE64.test(value) && value.length % 4 === 0;
}
