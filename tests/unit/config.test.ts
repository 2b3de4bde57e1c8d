import { AZURE_SETTING_NAMES, ConfigError, hasNoAzureSettings, loadConfig, SECRET_SETTING_NAMES } from '../../src/config/config';
import { TEST_API_CLIENT_ID as CLIENT, TEST_TENANT_ID as TENANT, VALID_AZURE_SETTINGS as valid } from '../helpers/azure-settings';
import { graphStoreOf } from '../helpers/store-config';

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('loadConfig accepted the environment');
}

describe('loadConfig', () => {
  describe('with a complete environment', () => {
    const config = loadConfig(valid);

    it('derives issuers, audiences and key URLs from the tenant and client ids', () => {
      expect(config.entra.issuers).toEqual({
        v1: `https://sts.windows.net/${TENANT}/`,
        v2: `https://login.microsoftonline.com/${TENANT}/v2.0`,
      });
      expect(config.entra.audiences).toEqual([CLIENT, `api://${CLIENT}`]);
      expect(config.entra.jwksUris.v2).toBe(`https://login.microsoftonline.com/${TENANT}/discovery/v2.0/keys`);
    });

    it('applies the documented defaults', () => {
      expect(config.server.port).toBe(5000);
      expect(config.entra.requiredScope).toBe('access_as_user');
      expect(config.entra.adminRole).toBe('AcsAuth.Admin');
      expect(graphStoreOf(config).extensionName).toBe('com.contoso.identityMapping');
      expect(graphStoreOf(config).oboScopes).toEqual(['https://graph.microsoft.com/User.ReadWrite']);
      expect(config.acs.tokenScopes).toEqual(['chat', 'voip']);
      expect(config.acs.auth).toEqual({
        kind: 'connectionString',
        connectionString: valid.ACS_CONNECTION_STRING,
        endpoint: 'https://contoso.communication.azure.com/',
      });
      expect(config.server.corsAllowedOrigins).toEqual([]);
      expect(config.server.trustProxy).toBe(false);
    });

    it('is deeply frozen', () => {
      expect(Object.isFrozen(config)).toBe(true);
      expect(Object.isFrozen(config.entra.audiences)).toBe(true);
      expect(() => {
        (graphStoreOf(config) as { credential: unknown }).credential = { kind: 'secret', secret: 'x' };
      }).toThrow(TypeError);
    });
  });

  it('names every missing variable in one error', () => {
    const problems = problemsOf({});
    expect(problems.join('\n')).toMatch(/ENTRA_TENANT_ID/);
    expect(problems.join('\n')).toMatch(/ENTRA_CLIENT_ID/);
    expect(problems.join('\n')).toMatch(/ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERTIFICATE_PATH is required/);
    expect(problems.join('\n')).toMatch(/ACS_ENDPOINT .* or ACS_CONNECTION_STRING/);
    expect(problems.join('\n')).toMatch(/MAPPING_SEAL_KEYS is required/);
    expect(problems).toHaveLength(5);
  });

  it('refuses placeholders, non-GUID ids and insecure URLs, naming each variable', () => {
    const problems = problemsOf({
      ...valid,
      ENTRA_TENANT_ID: 'contoso.onmicrosoft.com',
      ENTRA_CLIENT_SECRET: '<your_client_secret>',
      ENTRA_AUTHORITY_HOST: 'http://login.example.com',
      GRAPH_BASE_URL: 'not a url',
      PORT: '70000',
      ACS_TOKEN_SCOPES: 'chat,video',
      CORS_ALLOWED_ORIGINS: 'http://evil.example.com,https://app.contoso.com/path',
      TRUST_PROXY: 'true',
    });
    const text = problems.join('\n');
    for (const name of [
      'ENTRA_TENANT_ID',
      'ENTRA_CLIENT_SECRET',
      'ENTRA_AUTHORITY_HOST',
      'GRAPH_BASE_URL',
      'PORT',
      'ACS_TOKEN_SCOPES',
      'TRUST_PROXY',
    ]) {
      expect(text).toContain(name);
    }
    expect(problems.filter((problem) => problem.startsWith('CORS_ALLOWED_ORIGINS'))).toHaveLength(2);
  });

  it('never echoes a secret value in its message', () => {
    const secret = 'endpoint=https://x.communication.azure.com;accesskey';
    const problems = problemsOf({ ...valid, ACS_CONNECTION_STRING: secret });
    expect(problems.join('\n')).not.toContain(secret);
  });

  it("accepts the original sample's setting names and reports them as deprecated", () => {
    const config = loadConfig({
      microsoftEntraID_tenantId: TENANT,
      AzureActiveDirectory_ClientId: CLIENT,
      azureActiveDirectory_clientSecret: 'legacy-secret',
      communicationServices_connectionString: valid.ACS_CONNECTION_STRING,
      GraphExtensionName: 'com.fabrikam.acsMapping',
      // The original sample had no seals: this one has no old name.
      MAPPING_SEAL_KEYS: valid.MAPPING_SEAL_KEYS,
    });
    expect(config.entra.tenantId).toBe(TENANT);
    expect(graphStoreOf(config).credential).toEqual({ kind: 'secret', secret: 'legacy-secret' });
    expect(graphStoreOf(config).extensionName).toBe('com.fabrikam.acsMapping');
    expect(config.deprecatedNamesUsed).toEqual(
      expect.arrayContaining([
        'microsoftEntraID_tenantId (use ENTRA_TENANT_ID)',
        'communicationServices_connectionString (use ACS_CONNECTION_STRING)',
      ]),
    );
  });

  it("accepts the double-underscore names of the C# sample and of the Node sample's deployment guide", () => {
    const config = loadConfig({
      AzureActiveDirectory__TenantId: TENANT,
      AzureActiveDirectory__ClientId: CLIENT,
      AzureActiveDirectory__ClientSecret: 'legacy-secret',
      CommunicationServices__ConnectionString: valid.ACS_CONNECTION_STRING,
      MAPPING_SEAL_KEYS: valid.MAPPING_SEAL_KEYS,
    });
    expect(config.entra.tenantId).toBe(TENANT);
    expect(config.entra.clientId).toBe(CLIENT);
    expect(graphStoreOf(config).credential).toEqual({ kind: 'secret', secret: 'legacy-secret' });
    expect(config.acs.auth).toMatchObject({ kind: 'connectionString', connectionString: valid.ACS_CONNECTION_STRING });
    expect(config.deprecatedNamesUsed).toEqual([
      'AzureActiveDirectory__TenantId (use ENTRA_TENANT_ID)',
      'AzureActiveDirectory__ClientId (use ENTRA_CLIENT_ID)',
      'AzureActiveDirectory__ClientSecret (use ENTRA_CLIENT_SECRET)',
      'CommunicationServices__ConnectionString (use ACS_CONNECTION_STRING)',
    ]);
  });

  it.each([
    'AzureActiveDirectory__TenantId',
    'AzureActiveDirectory__ClientId',
    'AzureActiveDirectory__ClientSecret',
    'CommunicationServices__ConnectionString',
  ])('counts %s as an Azure setting (it turns local mode off)', (name) => {
    expect(AZURE_SETTING_NAMES).toContain(name);
    expect(hasNoAzureSettings({ [name]: 'x' })).toBe(false);
  });

  describe('the issuers, by authority host (ENTRA_AUTHORITY_HOST)', () => {
    it.each([
      ['https://login.microsoftonline.com', 'https://sts.windows.net', 'https://login.microsoftonline.com'],
      // Aliases of the global cloud: its tokens still name login.microsoftonline.com.
      ['https://login.windows.net', 'https://sts.windows.net', 'https://login.microsoftonline.com'],
      ['https://login.microsoftonline.us', 'https://sts.windows.net', 'https://login.microsoftonline.us'],
      ['https://login.usgovcloudapi.net', 'https://sts.windows.net', 'https://login.microsoftonline.us'],
      ['https://login.chinacloudapi.cn', 'https://sts.chinacloudapi.cn', 'https://login.partner.microsoftonline.cn'],
      ['https://login.partner.microsoftonline.cn/', 'https://sts.chinacloudapi.cn', 'https://login.partner.microsoftonline.cn'],
      // The local Entra emulator: v1 as the global cloud, v2 on its own host.
      ['https://127.0.0.1:44321', 'https://sts.windows.net', 'https://127.0.0.1:44321'],
    ])('%s: v1 from %s, v2 from %s, keys from the authority host', (host, v1, v2) => {
      const config = loadConfig({ ...valid, ENTRA_AUTHORITY_HOST: host });
      expect(config.entra.issuers).toEqual({ v1: `${v1}/${TENANT}/`, v2: `${v2}/${TENANT}/v2.0` });
      expect(config.entra.jwksUris.v1).toBe(`${new URL(host).origin}/${TENANT}/discovery/keys`);
    });

    it('refuses a host outside the known clouds unless ENTRA_V1_ISSUER_HOST names its v1 issuer', () => {
      const problems = problemsOf({ ...valid, ENTRA_AUTHORITY_HOST: 'https://login.sovcloud-identity.fr' });
      expect(problems).toEqual([
        expect.stringMatching(
          /^ENTRA_AUTHORITY_HOST 'https:\/\/login\.sovcloud-identity\.fr' is not a Microsoft Entra cloud .* set ENTRA_V1_ISSUER_HOST/,
        ),
      ]);
    });

    it('takes the v1 issuer from ENTRA_V1_ISSUER_HOST, and the v2 issuer from an unknown authority host', () => {
      const config = loadConfig({
        ...valid,
        ENTRA_AUTHORITY_HOST: 'https://login.sovcloud-identity.fr',
        ENTRA_V1_ISSUER_HOST: 'https://sts.sovcloud-identity.fr/',
      });
      expect(config.entra.issuers).toEqual({
        v1: `https://sts.sovcloud-identity.fr/${TENANT}/`,
        v2: `https://login.sovcloud-identity.fr/${TENANT}/v2.0`,
      });
    });

    it('lets ENTRA_V1_ISSUER_HOST override a known cloud, and refuses one that is not https', () => {
      expect(loadConfig({ ...valid, ENTRA_V1_ISSUER_HOST: 'https://sts.example.net' }).entra.issuers.v1).toBe(
        `https://sts.example.net/${TENANT}/`,
      );
      expect(problemsOf({ ...valid, ENTRA_V1_ISSUER_HOST: 'http://sts.windows.net' })).toEqual([
        expect.stringMatching(/^ENTRA_V1_ISSUER_HOST must be an https URL/),
      ]);
    });
  });

  describe('ENTRA_ALLOWED_CLIENT_APP_IDS', () => {
    const SPA = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

    it('is empty (any client app) when unset or blank', () => {
      expect(loadConfig(valid).entra.allowedClientAppIds).toEqual([]);
      expect(loadConfig({ ...valid, ENTRA_ALLOWED_CLIENT_APP_IDS: ' ' }).entra.allowedClientAppIds).toEqual([]);
    });

    it('reads GUIDs, comma-separated, in lower case and without repeats', () => {
      const config = loadConfig({ ...valid, ENTRA_ALLOWED_CLIENT_APP_IDS: ` ${SPA.toUpperCase()}, ${CLIENT} ,${SPA}` });
      expect(config.entra.allowedClientAppIds).toEqual([SPA, CLIENT]);
    });

    it('refuses an entry that is not a GUID, naming the setting and the entry', () => {
      expect(problemsOf({ ...valid, ENTRA_ALLOWED_CLIENT_APP_IDS: `${SPA},contoso-spa` })).toEqual([
        "ENTRA_ALLOWED_CLIENT_APP_IDS must list application (client) IDs, GUIDs separated by commas; got 'contoso-spa'",
      ]);
    });
  });

  describe("the API's credential for Entra ID", () => {
    const { ENTRA_CLIENT_SECRET: _secret, ...withoutSecret } = valid;

    it('is the client secret when only ENTRA_CLIENT_SECRET is set', () => {
      expect(graphStoreOf(loadConfig(valid)).credential).toEqual({ kind: 'secret', secret: valid.ENTRA_CLIENT_SECRET });
    });

    it('is the certificate file when only ENTRA_CLIENT_CERTIFICATE_PATH is set, and the file is not read here', () => {
      const path = '/var/ssl/private/does-not-exist-yet.pem';
      expect(graphStoreOf(loadConfig({ ...withoutSecret, ENTRA_CLIENT_CERTIFICATE_PATH: ` ${path} ` })).credential).toEqual({
        kind: 'certificate',
        path,
      });
    });

    it('refuses both, naming both settings, without echoing the secret', () => {
      const problems = problemsOf({ ...valid, ENTRA_CLIENT_CERTIFICATE_PATH: '/certs/api.pem' });
      expect(problems).toEqual([expect.stringMatching(/ENTRA_CLIENT_SECRET and ENTRA_CLIENT_CERTIFICATE_PATH are both set/)]);
      expect(problems.join('\n')).not.toContain(valid.ENTRA_CLIENT_SECRET);
    });

    it('requires one of them, naming both', () => {
      const problems = problemsOf(withoutSecret);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('ENTRA_CLIENT_SECRET');
      expect(problems[0]).toContain('ENTRA_CLIENT_CERTIFICATE_PATH');
    });

    it('treats an empty setting as unset', () => {
      expect(graphStoreOf(loadConfig({ ...valid, ENTRA_CLIENT_CERTIFICATE_PATH: '  ' })).credential.kind).toBe('secret');
      expect(
        graphStoreOf(loadConfig({ ...withoutSecret, ENTRA_CLIENT_SECRET: '', ENTRA_CLIENT_CERTIFICATE_PATH: '/c.pem' })).credential.kind,
      ).toBe('certificate');
    });

    it('refuses a placeholder path', () => {
      expect(problemsOf({ ...withoutSecret, ENTRA_CLIENT_CERTIFICATE_PATH: '<path-to-pem>' }).join('\n')).toMatch(
        /ENTRA_CLIENT_CERTIFICATE_PATH holds a placeholder/,
      );
    });

    it('counts the certificate path as an Azure setting (it turns local mode off)', () => {
      expect(hasNoAzureSettings({ ENTRA_CLIENT_CERTIFICATE_PATH: '/c.pem' })).toBe(false);
    });
  });

  it('prefers the managed identity endpoint and refuses both ACS settings at once', () => {
    const { ACS_CONNECTION_STRING: _unused, ...withoutConnectionString } = valid;
    expect(loadConfig({ ...withoutConnectionString, ACS_ENDPOINT: 'https://contoso.communication.azure.com' }).acs.auth).toEqual({
      kind: 'managedIdentity',
      endpoint: 'https://contoso.communication.azure.com/',
    });
    expect(problemsOf({ ...valid, ACS_ENDPOINT: 'https://contoso.communication.azure.com' }).join('\n')).toMatch(/both set/);
  });

  it('detects when no Azure setting is present (local mode)', () => {
    expect(hasNoAzureSettings({ PORT: '5000', NODE_ENV: 'development' })).toBe(true);
    expect(hasNoAzureSettings({ ENTRA_CLIENT_ID: CLIENT })).toBe(false);
    expect(hasNoAzureSettings({ communicationServices_connectionString: 'x' })).toBe(false);
  });
});

describe('MAPPING_SEAL_KEYS', () => {
  const key = (fill: number, bytes = 32): string => Buffer.alloc(bytes, fill).toString('base64');

  it('reads a ring of keys, the first one sealing, in order', () => {
    const config = loadConfig({ ...valid, MAPPING_SEAL_KEYS: `new:${key(1)}, old:${key(2, 64)}` });
    expect(graphStoreOf(config).sealKeys.map((entry) => [entry.id, entry.secret.symmetricKeySize])).toEqual([
      ['new', 32],
      ['old', 64],
    ]);
  });

  it('accepts base64url keys as well', () => {
    const urlSafe = Buffer.alloc(32, 0xfb).toString('base64url');
    expect(urlSafe).toMatch(/[-_]/);
    expect(graphStoreOf(loadConfig({ ...valid, MAPPING_SEAL_KEYS: `k:${urlSafe}` })).sealKeys).toHaveLength(1);
  });

  it('never shows a key, in the config or in a problem', () => {
    const secret = key(9);
    const config = loadConfig({ ...valid, MAPPING_SEAL_KEYS: `k1:${secret}` });
    expect(JSON.stringify(config)).not.toContain(secret);
    const short = Buffer.alloc(16, 3).toString('base64');
    const problems = problemsOf({ ...valid, MAPPING_SEAL_KEYS: `k1:${short}` });
    expect(problems).toEqual([expect.stringMatching(/MAPPING_SEAL_KEYS entry 1 \('k1'\): the key must be 32 to 64 bytes; it has 16/)]);
    expect(problems.join('\n')).not.toContain(short);
  });

  it.each([
    ['a key without an id', key(1), /entry 1 must start with a key id/],
    ['an id with a dot', `a.b:${key(1)}`, /entry 1 must start with a key id/],
    ['a key that is not base64', 'k1:not base64 at all!', /entry 1 \('k1'\): the key is not base64/],
    ['a placeholder', 'k1:<your-key>', /the key is not base64/],
    ['a key of 65 bytes', `k1:${key(1, 65)}`, /it has 65/],
    ['an id used twice', `k1:${key(1)},k1:${key(2)}`, /entry 2 \('k1'\): the key id is used twice/],
    ['eleven keys', Array.from({ length: 11 }, (_, index) => `k${index}:${key(index)}`).join(','), /holds 11 keys; at most 10/],
  ])('refuses %s, naming the setting', (_label, value, problem) => {
    expect(problemsOf({ ...valid, MAPPING_SEAL_KEYS: value }).join('\n')).toMatch(problem);
  });
});

describe('MAPPING_STORE=table', () => {
  const ACCOUNT_KEY = Buffer.alloc(64, 5).toString('base64');
  /** The secretless deployment: no Entra credential, no seal key, the ACS resource and the table by managed identity. */
  const secretless = {
    ENTRA_TENANT_ID: TENANT,
    ENTRA_CLIENT_ID: CLIENT,
    ACS_ENDPOINT: 'https://contoso.communication.azure.com/',
    MAPPING_STORE: 'table',
    MAPPING_TABLE_ENDPOINT: 'https://contosomappings.table.core.windows.net/',
  };

  it('needs no Entra credential, Graph setting or seal key', () => {
    const config = loadConfig(secretless);
    expect(config.mappings).toEqual({
      store: 'table',
      table: {
        auth: { kind: 'managedIdentity', endpoint: 'https://contosomappings.table.core.windows.net' },
        tableName: 'AcsIdentityMappings',
      },
    });
    expect(config.unusedSettings).toEqual([]);
  });

  it('names the Graph-only settings it was given and does not use', () => {
    const config = loadConfig({ ...secretless, ENTRA_CLIENT_SECRET: 'left-over', MAPPING_SEAL_KEYS: valid.MAPPING_SEAL_KEYS });
    expect(config.unusedSettings).toEqual(['ENTRA_CLIENT_SECRET', 'MAPPING_SEAL_KEYS']);
    // Not parsed, so a broken one cannot stop the start either.
    expect(loadConfig({ ...secretless, MAPPING_SEAL_KEYS: 'broken' }).unusedSettings).toEqual(['MAPPING_SEAL_KEYS']);
  });

  it('reads a connection string with an account key, a SAS, or the development storage shorthand', () => {
    const withKey = `DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey=${ACCOUNT_KEY};EndpointSuffix=core.windows.net`;
    const { MAPPING_TABLE_ENDPOINT: _endpoint, ...withoutEndpoint } = secretless;
    expect(loadConfig({ ...withoutEndpoint, MAPPING_TABLE_CONNECTION_STRING: withKey }).mappings.table?.auth).toEqual({
      kind: 'connectionString',
      connectionString: withKey,
      endpoint: 'https://contoso.table.core.windows.net',
    });
    const sas = 'TableEndpoint=https://contoso.table.core.windows.net/;SharedAccessSignature=sv=2019-02-02&sig=abc';
    expect(loadConfig({ ...withoutEndpoint, MAPPING_TABLE_CONNECTION_STRING: sas }).mappings.table?.auth.endpoint).toBe(
      'https://contoso.table.core.windows.net',
    );
    expect(
      loadConfig({ ...withoutEndpoint, MAPPING_TABLE_CONNECTION_STRING: 'UseDevelopmentStorage=true' }).mappings.table?.auth.endpoint,
    ).toBe('http://127.0.0.1:10002/devstoreaccount1');
  });

  it.each([
    [
      'no table at all',
      { MAPPING_TABLE_ENDPOINT: '' },
      /MAPPING_TABLE_ENDPOINT \(managed identity, recommended\) or MAPPING_TABLE_CONNECTION_STRING is required/,
    ],
    [
      'an http endpoint off loopback',
      { MAPPING_TABLE_ENDPOINT: 'http://contoso.table.core.windows.net' },
      /MAPPING_TABLE_ENDPOINT must name an https/,
    ],
    [
      'an endpoint with a query',
      { MAPPING_TABLE_ENDPOINT: 'https://contoso.table.core.windows.net/?sv=1' },
      /MAPPING_TABLE_ENDPOINT must name an https/,
    ],
    ['both ways at once', { MAPPING_TABLE_CONNECTION_STRING: 'UseDevelopmentStorage=true' }, /both set: choose one/],
    [
      'a connection string without credentials',
      { MAPPING_TABLE_ENDPOINT: '', MAPPING_TABLE_CONNECTION_STRING: 'AccountName=x' },
      /must be a Storage connection string/,
    ],
    ['a bad table name', { MAPPING_TABLE_NAME: 'acs-mappings' }, /MAPPING_TABLE_NAME must be 3 to 63 letters and digits/],
    ['an unknown store', { MAPPING_STORE: 'cosmos' }, /MAPPING_STORE must be graph or table; got 'cosmos'/],
  ])('refuses %s, naming the setting', (_label, change, problem) => {
    expect(problemsOf({ ...secretless, ...change }).join('\n')).toMatch(problem);
  });

  it('never echoes the connection string or its key in a problem', () => {
    const bad = `DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey=not*base64${ACCOUNT_KEY}`;
    const problems = problemsOf({ ...secretless, MAPPING_TABLE_ENDPOINT: '', MAPPING_TABLE_CONNECTION_STRING: bad }).join('\n');
    expect(problems).toMatch(/AccountKey must be the base64 key/);
    expect(problems).not.toContain(ACCOUNT_KEY);
  });

  it('keeps the table settings as the copy target when the store is graph', () => {
    const config = loadConfig({ ...valid, MAPPING_TABLE_ENDPOINT: secretless.MAPPING_TABLE_ENDPOINT });
    expect(config.mappings.store).toBe('graph');
    expect(config.mappings.table?.auth.kind).toBe('managedIdentity');
    expect(loadConfig(valid).mappings.table).toBeUndefined();
  });

  it('counts the table settings as pointing at Azure (no local mode)', () => {
    expect(hasNoAzureSettings({ MAPPING_STORE: 'table' })).toBe(true);
    expect(hasNoAzureSettings({ MAPPING_TABLE_ENDPOINT: secretless.MAPPING_TABLE_ENDPOINT })).toBe(false);
  });
});

describe('loadConfig: the sign-in page (WEB_PAGE, WEB_PAGE_CLIENT_ID)', () => {
  const SPA = '77777777-8888-4999-aaaa-bbbbbbbbbbbb';

  it('is off unless it has an app to sign in with', () => {
    expect(loadConfig(valid).webPage).toEqual({ enabled: false });
    expect(loadConfig({ ...valid, WEB_PAGE: 'off', WEB_PAGE_CLIENT_ID: SPA }).webPage).toEqual({ enabled: false });
  });

  it('is on with WEB_PAGE_CLIENT_ID (lower-cased), with or without WEB_PAGE=on', () => {
    expect(loadConfig({ ...valid, WEB_PAGE_CLIENT_ID: SPA.toUpperCase() }).webPage).toEqual({ enabled: true, clientId: SPA });
    expect(loadConfig({ ...valid, WEB_PAGE: 'ON', WEB_PAGE_CLIENT_ID: SPA }).webPage).toEqual({ enabled: true, clientId: SPA });
  });

  it('refuses a page that could not sign anyone in, naming the setting', () => {
    expect(problemsOf({ ...valid, WEB_PAGE: 'on' })).toEqual([expect.stringMatching(/^WEB_PAGE=on needs WEB_PAGE_CLIENT_ID/)]);
    expect(problemsOf({ ...valid, WEB_PAGE: 'yes', WEB_PAGE_CLIENT_ID: SPA })).toEqual(["WEB_PAGE must be 'on' or 'off'; got 'yes'"]);
    expect(problemsOf({ ...valid, WEB_PAGE_CLIENT_ID: 'my-spa' })).toEqual([expect.stringMatching(/^WEB_PAGE_CLIENT_ID must be a GUID/)]);
  });

  it('refuses a page app that ENTRA_ALLOWED_CLIENT_APP_IDS would shut out', () => {
    const other = '99999999-8888-4777-a666-555555555555';
    expect(problemsOf({ ...valid, WEB_PAGE_CLIENT_ID: SPA, ENTRA_ALLOWED_CLIENT_APP_IDS: other })).toEqual([
      expect.stringMatching(/^WEB_PAGE_CLIENT_ID must be one of ENTRA_ALLOWED_CLIENT_APP_IDS/),
    ]);
    expect(loadConfig({ ...valid, WEB_PAGE_CLIENT_ID: SPA, ENTRA_ALLOWED_CLIENT_APP_IDS: `${other},${SPA}` }).webPage.enabled).toBe(true);
  });
});

describe('loadConfig: shared state on Redis (REDIS_URL)', () => {
  it('is off without REDIS_URL, and is not an Azure setting (local mode can use Redis)', () => {
    expect(loadConfig(valid).sharedState).toEqual({ kind: 'none' });
    expect(hasNoAzureSettings({ REDIS_URL: 'redis://127.0.0.1:6379' })).toBe(true);
  });

  it('takes rediss:// anywhere and redis:// on loopback, with the key prefix and command deadline', () => {
    expect(loadConfig({ ...valid, REDIS_URL: 'rediss://contoso.redis.azure.net:10000' }).sharedState).toEqual({
      kind: 'redis',
      url: 'rediss://contoso.redis.azure.net:10000',
      keyPrefix: 'acs-auth:',
      commandTimeoutMs: 250,
    });
    expect(
      loadConfig({ ...valid, REDIS_URL: 'redis://localhost:6380/2', REDIS_KEY_PREFIX: 'contoso:prod:', REDIS_TIMEOUT_MS: '100' })
        .sharedState,
    ).toEqual({ kind: 'redis', url: 'redis://localhost:6380/2', keyPrefix: 'contoso:prod:', commandTimeoutMs: 100 });
  });

  it('refuses plain redis:// off loopback without echoing the URL (it may hold a password)', () => {
    for (const url of [
      'redis://:s3cret@contoso.redis.azure.net:6379',
      'https://contoso.redis.azure.net',
      'not a url',
      'redis://:s3cret@127.0.0.1:6379/abc',
    ]) {
      const problems = problemsOf({ ...valid, REDIS_URL: url });
      expect(problems).toEqual([expect.stringMatching(/^REDIS_URL must be rediss:\/\//)]);
      expect(problems.join()).not.toContain('s3cret');
    }
    expect(SECRET_SETTING_NAMES).toContain('REDIS_URL');
  });

  it('refuses a bad key prefix or deadline', () => {
    expect(problemsOf({ ...valid, REDIS_KEY_PREFIX: 'has space' })).toEqual([expect.stringMatching(/^REDIS_KEY_PREFIX must be/)]);
    expect(problemsOf({ ...valid, REDIS_TIMEOUT_MS: '5' })).toEqual([
      expect.stringMatching(/^REDIS_TIMEOUT_MS must be an integer from 10/),
    ]);
  });
});

describe('loadConfig: ACS token reuse (ACS_TOKEN_REUSE_SECONDS)', () => {
  it('is 10 s with Redis, off without, and bounded', () => {
    expect(loadConfig(valid).acs.tokenReuseSeconds).toBe(0);
    expect(loadConfig({ ...valid, REDIS_URL: 'rediss://contoso.redis.azure.net:10000' }).acs.tokenReuseSeconds).toBe(10);
    expect(loadConfig({ ...valid, ACS_TOKEN_REUSE_SECONDS: '5' }).acs.tokenReuseSeconds).toBe(5);
    expect(problemsOf({ ...valid, ACS_TOKEN_REUSE_SECONDS: '301' })).toEqual([
      expect.stringMatching(/^ACS_TOKEN_REUSE_SECONDS must be an integer from 0 to 300/),
    ]);
  });
});
