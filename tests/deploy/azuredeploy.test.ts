import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { SECRET_SETTING_NAMES, SETTING_NAMES, loadConfig } from '../../src/config/config';
import { SecretValue, type ArmValue } from './arm-expressions';
import {
  FAKE,
  PLATFORM_SETTING,
  REFUSED_PARAMETERS,
  SKUS_WITHOUT_ALWAYS_ON,
  STORAGE_ACCOUNT_PROPERTIES,
  STORAGE_TABLE_DATA_CONTRIBUTOR_ROLE_ID,
  appSettingsOf,
  deploymentProblems,
  parameterRefusalProblems,
  refusalMessageOf,
  parametersFileProblems,
  roleAssignmentProblems,
  scenarioParameters,
  simulateDeployment,
  staticTemplateProblems,
  storageProblems,
  tableScenarioParameters,
  isArmParametersFile,
  isArmTemplate,
  type ArmParametersFile,
  type ArmTemplate,
  type EntraCredential,
  type ScenarioExpectation,
  type Simulation,
} from './template-checks';

const deployDir = join(__dirname, '..', '..', 'deploy');
const templateText = readFileSync(join(deployDir, 'azuredeploy.json'), 'utf8');
const parametersText = readFileSync(join(deployDir, 'azuredeploy.parameters.json'), 'utf8');
const template = parsed(templateText, isArmTemplate, 'deploy/azuredeploy.json is not a deployment template');
const parametersFile = parsed(parametersText, isArmParametersFile, 'deploy/azuredeploy.parameters.json is not a parameters file');

function parsed<T>(text: string, isExpected: (value: unknown) => value is T, failure: string): T {
  const value: unknown = JSON.parse(text);
  if (!isExpected(value)) throw new Error(failure);
  return value;
}

const allowed = (name: string): readonly unknown[] => template.parameters[name]?.allowedValues ?? [];

const CREDENTIALS: readonly EntraCredential[] = ['secret', 'certificate'];

interface Scenario {
  readonly label: string;
  readonly expected: ScenarioExpectation;
  readonly parameters: Record<string, unknown>;
}

const scenarios: readonly Scenario[] = [
  ...allowed('acsAuthMode').flatMap((acsAuthMode) =>
    [true, false].flatMap((enableApplicationInsights) =>
      CREDENTIALS.map((credential) => ({
        label: `acsAuthMode=${String(acsAuthMode)}, enableApplicationInsights=${enableApplicationInsights}, credential=${credential}`,
        expected: { acsAuthMode: String(acsAuthMode), enableApplicationInsights, credential },
        parameters: scenarioParameters({ acsAuthMode, enableApplicationInsights }, credential),
      })),
    ),
  ),
  // A migration: the new app uses the Communication Services resource of the old deployment, in its own resource group.
  ...allowed('acsAuthMode').map((acsAuthMode) => ({
    label: `acsAuthMode=${String(acsAuthMode)}, existingAcsResourceId (another resource group)`,
    expected: { acsAuthMode: String(acsAuthMode), enableApplicationInsights: true, credential: 'secret' as const },
    parameters: scenarioParameters({ acsAuthMode, existingAcsResourceId: FAKE.existingAcsResourceId }),
  })),
  // The table store: no Entra credential, no seal keys.
  ...allowed('acsAuthMode').flatMap((acsAuthMode) =>
    [true, false].map((enableApplicationInsights) => ({
      label: `mappingStore=table, acsAuthMode=${String(acsAuthMode)}, enableApplicationInsights=${enableApplicationInsights}`,
      expected: { acsAuthMode: String(acsAuthMode), enableApplicationInsights, mappingStore: 'table' as const },
      parameters: tableScenarioParameters({ acsAuthMode, enableApplicationInsights }),
    })),
  ),
  {
    label: 'mappingStore=table, existingAcsResourceId (another resource group), a zone-redundant account, another table name',
    expected: { acsAuthMode: 'managedIdentity', enableApplicationInsights: true, mappingStore: 'table' },
    parameters: tableScenarioParameters({
      existingAcsResourceId: FAKE.existingAcsResourceId,
      mappingStorageSku: 'Standard_ZRS',
      mappingTableName: 'Mappings2',
    }),
  },
];

/** All problems of a (possibly broken) template, across every scenario, plus the parameters file. */
function everyProblem(candidate: ArmTemplate, file: ArmParametersFile = parametersFile): string[] {
  const problems = [
    ...staticTemplateProblems(candidate),
    ...parametersFileProblems(candidate, file),
    ...parameterRefusalProblems(candidate),
  ];
  for (const scenario of scenarios) {
    // App Service loads no certificate on Free plans: the template refuses that pair (tested below).
    for (const sku of scenario.expected.credential === 'certificate' ? ['B1'] : ['B1', 'F1']) {
      problems.push(
        ...deploymentProblems(candidate, { ...scenario.parameters, appServicePlanSku: sku }, scenario.expected).map(
          (problem) => `[${scenario.label}, ${sku}] ${problem}`,
        ),
      );
    }
  }
  return problems;
}

describe('deploy/azuredeploy.json', () => {
  it('is an ARM deployment template (2019-04-01 schema) with a contentVersion', () => {
    expect(template.$schema).toBe('https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#');
    expect(template.contentVersion).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it('uses every parameter and variable it declares, references only declared ones, and pins known API versions', () => {
    expect(staticTemplateProblems(template)).toEqual([]);
  });

  it('gives no secure parameter a default value but nothing at all (both are optional: the table store needs neither)', () => {
    const secure = Object.entries(template.parameters).filter(([, definition]) => definition.type.toLowerCase().startsWith('secure'));
    expect(secure.map(([name]) => name)).toEqual(['entraClientSecret', 'mappingSealKeys']);
    expect(Object.fromEntries(secure.map(([name, definition]) => [name, definition.defaultValue]))).toEqual({
      entraClientSecret: '',
      mappingSealKeys: '',
    });
  });

  it('needs only the API client id from every first-time user; the Graph store checks its seal keys and credential itself', () => {
    const required = Object.entries(template.parameters).filter(([, definition]) => definition.defaultValue === undefined);
    expect(required.map(([name]) => name)).toEqual(['entraClientId']);
    expect(template.parameters['entraClientCertificateThumbprint']?.defaultValue).toBe('');
    // The seal keys' length is checked per store (REFUSED_PARAMETERS): a minLength would refuse the table store's ''.
    expect(template.parameters['mappingSealKeys']?.minLength).toBeUndefined();
  });

  it("offers the graph and table mapping stores, graph by default (the original sample's, so its mappings keep working)", () => {
    expect(allowed('mappingStore')).toEqual(['graph', 'table']);
    expect(template.parameters['mappingStore']?.defaultValue).toBe('graph');
    expect(template.parameters['mappingTableName']?.defaultValue).toBe('AcsIdentityMappings');
    expect(template.parameters['mappingStorageSku']?.defaultValue).toBe('Standard_LRS');
  });

  it('refuses, at validation, an existingAcsResourceId that does not name a Communication Services resource', () => {
    for (const id of ['CommunicationServices-hero', '/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/z']) {
      // ARM stops at the first expression that fails; the simulation goes on and lists what else breaks.
      expect(simulateDeployment(template, scenarioParameters({ existingAcsResourceId: id })).problems).toContainEqual(
        expect.stringMatching(/Invalid parameters: existingAcsResourceId must/),
      );
    }
  });

  describe('refuses to deploy, at validation, with', () => {
    it.each(REFUSED_PARAMETERS.map((refused) => [refused.label, refused] as const))('%s', (_label, { parameters, message }) => {
      const problems = simulateDeployment(template, parameters).problems;
      // ARM reports a variable that does not evaluate, naming the missing property: the message. Nothing else fails.
      expect(problems).toHaveLength(1);
      expect(refusalMessageOf(problems[0] ?? '')).toContain(message);
    });
  });

  describe.each(scenarios)('deployed with $label', ({ parameters, expected }) => {
    it('configures the web app, its settings, the mapping store, the roles and the outputs as the service needs', () => {
      expect(deploymentProblems(template, parameters, expected)).toEqual([]);
    });

    it('sets, as app settings, only settings the service reads (SETTING_NAMES) and platform settings', () => {
      const names = [...appSettingsOf(simulateDeployment(template, parameters)).keys()];
      const service = names.filter((name) => (SETTING_NAMES as readonly string[]).includes(name));
      const platform = names.filter((name) => PLATFORM_SETTING.test(name));
      expect([...service, ...platform].sort()).toEqual([...names].sort());
      expect(service.filter((name) => PLATFORM_SETTING.test(name))).toEqual([]);
      const acsSetting = expected.acsAuthMode === 'managedIdentity' ? 'ACS_ENDPOINT' : 'ACS_CONNECTION_STRING';
      const credentialSetting = expected.credential === 'certificate' ? 'ENTRA_CLIENT_CERTIFICATE_PATH' : 'ENTRA_CLIENT_SECRET';
      const storeSettings =
        expected.mappingStore === 'table'
          ? ['MAPPING_TABLE_ENDPOINT', 'MAPPING_TABLE_NAME']
          : [credentialSetting, 'MAPPING_SEAL_KEYS', 'GRAPH_EXTENSION_NAME'];
      expect(service.sort()).toEqual(
        [
          'NODE_ENV',
          'TRUST_PROXY',
          'LOG_LEVEL',
          'ENTRA_TENANT_ID',
          'ENTRA_CLIENT_ID',
          'ENTRA_REQUIRED_SCOPE',
          'ENTRA_ADMIN_ROLE',
          'TEAMS_CLIENT_ID',
          'MAPPING_STORE',
          ...storeSettings,
          acsSetting,
          'ACS_TOKEN_SCOPES',
          'CORS_ALLOWED_ORIGINS',
          'WEB_PAGE_CLIENT_ID',
        ].sort(),
      );
    });

    it('takes every secret setting from a securestring parameter or listKeys(), never from a literal', () => {
      const settings = appSettingsOf(simulateDeployment(template, parameters));
      const secrets = [...settings].filter(([name]) => SECRET_SETTING_NAMES.includes(name));
      const graphSecrets =
        expected.mappingStore === 'table'
          ? []
          : [expected.credential === 'certificate' ? [] : ['ENTRA_CLIENT_SECRET'], ['MAPPING_SEAL_KEYS']].flat();
      const acsSecrets = expected.acsAuthMode === 'connectionString' ? ['ACS_CONNECTION_STRING'] : [];
      expect(secrets.map(([name]) => name).sort()).toEqual([...graphSecrets, ...acsSecrets].sort());
      for (const [name, value] of secrets) {
        expect({ name, secret: value instanceof SecretValue }).toEqual({ name, secret: true });
      }
    });
  });

  it('keeps Always On off exactly on the SKUs that cannot have it, for every SKU it offers', () => {
    for (const sku of allowed('appServicePlanSku')) {
      const simulation = simulateDeployment(template, scenarioParameters({ appServicePlanSku: sku }));
      const site = simulation.resources.find((resource) => resource.type === 'Microsoft.Web/sites');
      const siteConfig = (site?.evaluated?.['properties'] as { siteConfig?: { alwaysOn?: unknown } } | undefined)?.siteConfig;
      expect({ sku, alwaysOn: siteConfig?.alwaysOn }).toEqual({ sku, alwaysOn: !SKUS_WITHOUT_ALWAYS_ON.includes(String(sku)) });
    }
    expect(allowed('appServicePlanSku')).toContain('F1');
    expect(template.parameters['appServicePlanSku']?.defaultValue).toBe('B1');
  });

  it('offers the Node.js 22 and 24 LTS runtimes, 22 by default', () => {
    expect(allowed('nodeRuntime')).toEqual(['NODE|22-lts', 'NODE|24-lts']);
    expect(template.parameters['nodeRuntime']?.defaultValue).toBe('NODE|22-lts');
    for (const nodeRuntime of allowed('nodeRuntime')) {
      expect(
        deploymentProblems(template, scenarioParameters({ nodeRuntime }), {
          acsAuthMode: 'managedIdentity',
          enableApplicationInsights: true,
        }),
      ).toEqual([]);
    }
  });

  it('defaults to the managed identity for ACS', () => {
    expect(template.parameters['acsAuthMode']?.defaultValue).toBe('managedIdentity');
    const simulation = simulateDeployment(template, scenarioParameters());
    expect(simulation.listKeysCalls).toEqual([]);
    expect(appSettingsOf(simulation).get('ACS_ENDPOINT')).toMatch(/^https:\/\/[a-z0-9-]+\.unitedstates\.communication\.azure\.com\/$/);
  });
});

describe('deploy/azuredeploy.json with mappingStore table (the secretless deployment)', () => {
  const expected: ScenarioExpectation = { acsAuthMode: 'managedIdentity', enableApplicationInsights: true, mappingStore: 'table' };
  const simulation = simulateDeployment(template, tableScenarioParameters());
  const settings = appSettingsOf(simulation);
  const deployed = (sim: Simulation, type: string): string[] =>
    sim.resources.filter((resource) => resource.type === type && resource.deployed).map((resource) => resource.name);
  const [account = ''] = deployed(simulation, 'Microsoft.Storage/storageAccounts');

  it('deploys with nothing secret supplied', () => {
    expect(simulation.problems).toEqual([]);
    expect(deploymentProblems(template, tableScenarioParameters(), expected)).toEqual([]);
  });

  it('has no secret among its app settings: none named in SECRET_SETTING_NAMES, none from a securestring parameter or a list*() call', () => {
    expect([...settings.keys()].filter((name) => SECRET_SETTING_NAMES.includes(name))).toEqual([]);
    // The evaluator taints every value that derives from a securestring parameter or listKeys() (SecretValue).
    expect([...settings].filter(([, value]) => value instanceof SecretValue).map(([name]) => name)).toEqual([]);
    expect(simulation.listKeysCalls).toEqual([]);
    // Written, and not a secret: Microsoft documents the instrumentation key in it as not secret (it only lets
    // telemetry be sent), so it keeps the handling it has in graph mode.
    expect(settings.get('APPLICATIONINSIGHTS_CONNECTION_STRING')).toMatch(/^InstrumentationKey=/);
  });

  it("loads with the service's own loadConfig into the table store, reached with the managed identity, every setting used", () => {
    const text = (value: ArmValue): string =>
      value instanceof SecretValue ? value.text : typeof value === 'string' ? value : JSON.stringify(value);
    const env = Object.fromEntries([...settings].map(([name, value]) => [name, text(value)]));
    const config = loadConfig(env);
    expect(config.mappings).toEqual({
      store: 'table',
      table: { auth: { kind: 'managedIdentity', endpoint: `https://${account}.table.core.windows.net` }, tableName: 'AcsIdentityMappings' },
    });
    expect(config.acs.auth.kind).toBe('managedIdentity');
    expect(config.unusedSettings).toEqual([]);
    expect(config.webPage).toEqual({ enabled: false });
  });

  it("turns the sign-in page on with webPageClientId, as the service's loadConfig reads it", () => {
    const spa = '0c0ffee0-1111-4222-8333-444455556666';
    const withPage = appSettingsOf(simulateDeployment(template, tableScenarioParameters({ webPageClientId: spa })));
    expect(withPage.get('WEB_PAGE_CLIENT_ID')).toBe(spa);
    const env = Object.fromEntries([...withPage].map(([name, value]) => [name, typeof value === 'string' ? value : JSON.stringify(value)]));
    expect(loadConfig(env).webPage).toEqual({ enabled: true, clientId: spa });
  });

  it('creates one storage account, hardened exactly so, and the table in it', () => {
    expect(account).toMatch(/^[a-z0-9]{3,24}$/);
    const resource = simulation.resources.find((candidate) => candidate.name === account);
    expect(resource?.evaluated).toMatchObject({ kind: 'StorageV2', sku: { name: 'Standard_LRS' }, location: FAKE.location });
    expect(resource?.evaluated?.['properties']).toEqual({
      supportsHttpsTrafficOnly: true,
      minimumTlsVersion: 'TLS1_2',
      allowSharedKeyAccess: false,
      defaultToOAuthAuthentication: true,
      allowBlobPublicAccess: false,
      allowCrossTenantReplication: false,
    });
    expect(STORAGE_ACCOUNT_PROPERTIES).toEqual(resource?.evaluated?.['properties']);
    expect(deployed(simulation, 'Microsoft.Storage/storageAccounts/tableServices/tables')).toEqual([
      `${account}/default/AcsIdentityMappings`,
    ]);
    expect(storageProblems(simulation, expected)).toEqual([]);
  });

  it('derives a valid storage account name from any app name the template accepts', () => {
    for (const appName of ['ab', 'acs-auth-server', 'Contoso-ACS-Auth-Production-West-Europe', 'x'.repeat(40)]) {
      const names = deployed(simulateDeployment(template, tableScenarioParameters({ appName })), 'Microsoft.Storage/storageAccounts');
      expect({ appName, names }).toEqual({ appName, names: [expect.stringMatching(/^[a-z0-9]{3,24}$/)] });
    }
  });

  it("gives the app's identity Storage Table Data Contributor on that account only, and the ACS role as in graph mode", () => {
    expect(STORAGE_TABLE_DATA_CONTRIBUTOR_ROLE_ID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const assignments = simulation.resources.filter((resource) => resource.type === 'Microsoft.Authorization/roleAssignments');
    const scopes = assignments.map((assignment) => assignment.evaluated?.['scope']);
    expect(scopes).toHaveLength(2);
    expect(scopes).toContainEqual(expect.stringMatching(/^Microsoft\.Communication\/communicationServices\/[^/]+$/));
    expect(scopes).toContain(`Microsoft.Storage/storageAccounts/${account}`);
    const onStorage = assignments.find((assignment) => assignment.evaluated?.['scope'] === `Microsoft.Storage/storageAccounts/${account}`);
    expect(onStorage?.resourceGroupId).toBe(`/subscriptions/${FAKE.subscriptionId}/resourceGroups/${FAKE.resourceGroup}`);
    expect(onStorage?.evaluated?.['properties']).toEqual({
      roleDefinitionId: `/subscriptions/${FAKE.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3`,
      principalId: FAKE.principalId,
      principalType: 'ServicePrincipal',
    });
    expect(roleAssignmentProblems(simulation, expected)).toEqual([]);
  });

  it('deploys no storage account, table or storage role in graph mode', () => {
    const graph = simulateDeployment(template, scenarioParameters());
    expect(deployed(graph, 'Microsoft.Storage/storageAccounts')).toEqual([]);
    expect(deployed(graph, 'Microsoft.Storage/storageAccounts/tableServices/tables')).toEqual([]);
    expect(
      graph.resources
        .filter((resource) => resource.type === 'Microsoft.Authorization/roleAssignments' && resource.deployed)
        .map((resource) => resource.evaluated?.['scope']),
    ).toEqual([expect.stringMatching(/^Microsoft\.Communication\//)]);
    expect(graph.outputs).toMatchObject({ storageAccountName: '', mappingTableEndpoint: '' });
  });

  it('names the storage account and the table endpoint in its outputs', () => {
    expect(simulation.outputs).toMatchObject({
      storageAccountName: account,
      mappingTableEndpoint: `https://${account}.table.core.windows.net/`,
    });
  });
});

describe('deploy/azuredeploy.parameters.json', () => {
  it('names only declared parameters, with allowed values, shows the required ones, and holds no secret', () => {
    expect(parametersFileProblems(template, parametersFile)).toEqual([]);
  });

  it('is a valid deployment of the template once the placeholders are filled in', () => {
    const values = Object.fromEntries(Object.entries(parametersFile.parameters).map(([name, entry]) => [name, entry.value]));
    const { entraClientId, entraClientSecret, mappingSealKeys } = scenarioParameters();
    const filled = { ...values, entraClientId, entraClientSecret, mappingSealKeys };
    expect(
      deploymentProblems(template, filled, {
        acsAuthMode: String(values['acsAuthMode']),
        enableApplicationInsights: values['enableApplicationInsights'] === true,
        mappingStore: values['mappingStore'] === 'table' ? 'table' : 'graph',
      }),
    ).toEqual([]);
  });

  it('is a valid secretless deployment with mappingStore switched to table and nothing secret added', () => {
    const values = Object.fromEntries(Object.entries(parametersFile.parameters).map(([name, entry]) => [name, entry.value]));
    const filled = { ...values, entraClientId: FAKE.clientId, mappingStore: 'table' };
    expect(
      deploymentProblems(template, filled, {
        acsAuthMode: String(values['acsAuthMode']),
        enableApplicationInsights: values['enableApplicationInsights'] === true,
        mappingStore: 'table',
      }),
    ).toEqual([]);
  });
});

describe('docs/deploy.md', () => {
  const guide = readFileSync(join(__dirname, '..', '..', 'docs', 'deploy.md'), 'utf8');

  it('describes every template parameter', () => {
    expect(Object.keys(template.parameters).filter((name) => !guide.includes(`\`${name}\``))).toEqual([]);
  });
});

/** JSON as `JSON.parse` gives it: the template copies below are broken by writing into it. */
type Json = string | number | boolean | null | Json[] | JsonObject;
interface JsonObject {
  [key: string]: Json;
}

function isJsonObject(value: Json | undefined): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// The mutations reach into the template by path; a wrong path throws and fails the test.
function objectAt(root: JsonObject, ...path: string[]): JsonObject {
  return path.reduce((node, key) => {
    const child = node[key];
    if (!isJsonObject(child)) throw new Error(`the template has no object at .${path.join('.')} (at '${key}')`);
    return child;
  }, root);
}

function arrayAt(root: JsonObject, ...path: string[]): Json[] {
  const key = path.at(-1) ?? '';
  const list = objectAt(root, ...path.slice(0, -1))[key];
  if (!Array.isArray(list)) throw new Error(`the template has no array at .${path.join('.')}`);
  return list;
}

function findObject(list: readonly Json[], what: string, matches: (entry: JsonObject) => boolean): JsonObject {
  const found = list.find((entry): entry is JsonObject => isJsonObject(entry) && matches(entry));
  if (!found) throw new Error(`the template has no ${what}`);
  return found;
}

const nameIncludes =
  (part: string) =>
  (entry: JsonObject): boolean => {
    const name = entry['name'];
    return typeof name === 'string' && name.includes(part);
  };

/** A deep, writable copy of the template to break. */
function brokenCopy(): JsonObject {
  const copy = JSON.parse(templateText) as Json;
  if (!isJsonObject(copy)) throw new Error('deploy/azuredeploy.json is not a JSON object');
  return copy;
}

function resourceOfType(copy: JsonObject, type: string): JsonObject {
  return findObject(arrayAt(copy, 'resources'), `resource of type ${type}`, (resource) => resource['type'] === type);
}

function site(copy: JsonObject): JsonObject {
  return resourceOfType(copy, 'Microsoft.Web/sites');
}

/** App settings that read no resource are listed in variables (ARM allows no reference() there). */
const SETTING_LISTS = ['commonAppSettings', 'graphStoreAppSettings'] as const;

function appSettings(copy: JsonObject, list: (typeof SETTING_LISTS)[number] = 'commonAppSettings'): Json[] {
  return arrayAt(copy, 'variables', list);
}

function setting(copy: JsonObject, name: string): JsonObject {
  const lists = SETTING_LISTS.map((list) => appSettings(copy, list));
  return findObject(lists.flat(), `app setting ${name}`, (entry) => entry['name'] === name);
}

function setSetting(copy: JsonObject, name: string, value: string): void {
  setting(copy, name)['value'] = value;
}

/** Moves a setting from the list it is in to the common list (written whatever the mapping store). */
function makeCommon(copy: JsonObject, name: string): void {
  const entry = setting(copy, name);
  removeEntry(appSettings(copy, 'graphStoreAppSettings'), entry);
  appSettings(copy).push(entry);
}

/**
 * Rewrites part of the web app's appSettings expression, which holds the settings that read a resource (the
 * table endpoint, ACS, Application Insights); `from` must occur in it.
 */
function editSettingsExpression(copy: JsonObject, from: string, to: string): void {
  const siteConfig = objectAt(site(copy), 'properties', 'siteConfig');
  const expression = siteConfig['appSettings'];
  if (typeof expression !== 'string' || !expression.includes(from)) throw new Error(`the appSettings expression has no ${from}`);
  siteConfig['appSettings'] = expression.replace(from, to);
}

/** The nested deployment named by the variable (roleAssignmentDeploymentName: ACS; tableRoleAssignmentDeploymentName). */
function roleDeployment(copy: JsonObject, nameVariable = 'roleAssignmentDeploymentName'): JsonObject {
  return findObject(arrayAt(copy, 'resources'), `nested deployment ${nameVariable}`, nameIncludes(`'${nameVariable}'`));
}

function roleAssignment(copy: JsonObject, nameVariable = 'roleAssignmentDeploymentName'): JsonObject {
  return findObject(
    arrayAt(roleDeployment(copy, nameVariable), 'properties', 'template', 'resources'),
    'role assignment',
    (resource) => resource['type'] === 'Microsoft.Authorization/roleAssignments',
  );
}

/** The app setting whose name is the chosen Entra credential's (ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERTIFICATE_PATH). */
function credentialSetting(copy: JsonObject): JsonObject {
  return findObject(appSettings(copy, 'graphStoreAppSettings'), 'Entra credential app setting', nameIncludes('entraCredentialSettingName'));
}

function storageAccount(copy: JsonObject): JsonObject {
  return resourceOfType(copy, 'Microsoft.Storage/storageAccounts');
}

function mappingTable(copy: JsonObject): JsonObject {
  return resourceOfType(copy, 'Microsoft.Storage/storageAccounts/tableServices/tables');
}

function acsResource(copy: JsonObject): JsonObject {
  return resourceOfType(copy, 'Microsoft.Communication/communicationServices');
}

function logsConfig(copy: JsonObject): JsonObject {
  return findObject(arrayAt(copy, 'resources'), 'logs configuration', nameIncludes('/logs'));
}

function assign(target: JsonObject, key: string, value: Json): void {
  target[key] = value;
}

/** Deletes a property that must be there (deleting a missing one would break nothing). */
function remove(target: JsonObject, key: string): void {
  if (!Object.hasOwn(target, key)) throw new Error(`the template has no property '${key}' to remove`);
  delete target[key];
}

/** Removes an entry that must be in the list. */
function removeEntry(list: Json[], entry: Json): void {
  const index = list.indexOf(entry);
  if (index < 0) throw new Error('the entry to remove is not in the list');
  list.splice(index, 1);
}

/** The broken copy as a template; the checks run on it as on the real one. */
function asTemplate(copy: JsonObject): ArmTemplate {
  if (!isArmTemplate(copy)) throw new Error('the broken copy no longer has the shape of a deployment template');
  return copy;
}

describe('the checks catch a broken template', () => {
  const cases: [string, (copy: JsonObject) => void, string][] = [
    [
      'a wrong $schema',
      (t) => assign(t, '$schema', 'https://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json#'),
      '$schema',
    ],
    [
      'an unused parameter',
      (t) => assign(objectAt(t, 'parameters'), 'unused', { type: 'string', defaultValue: 'x' }),
      "parameter 'unused' is declared but never used",
    ],
    ['an unused variable', (t) => assign(objectAt(t, 'variables'), 'unused', 'x'), "variable 'unused' is declared but never used"],
    ['a reference to an undeclared parameter', (t) => setSetting(t, 'LOG_LEVEL', "[parameters('logLevl')]"), "parameters('logLevl')"],
    ['a reference to an undeclared variable', (t) => setSetting(t, 'LOG_LEVEL', "[variables('nope')]"), "variables('nope')"],
    [
      'a default for the client secret',
      (t) => assign(objectAt(t, 'parameters', 'entraClientSecret'), 'defaultValue', 'changeme'),
      "secure parameter 'entraClientSecret'",
    ],
    [
      'the client secret as a plain string parameter',
      (t) => assign(objectAt(t, 'parameters', 'entraClientSecret'), 'type', 'string'),
      'ENTRA_CLIENT_SECRET must come only from a securestring',
    ],
    [
      'a literal client secret',
      (t) =>
        assign(
          credentialSetting(t),
          'value',
          "[if(variables('useClientCertificate'), variables('clientCertificatePath'), 'literal-secret')]",
        ),
      'ENTRA_CLIENT_SECRET must come only from a securestring',
    ],
    [
      'the secret written in certificate mode too',
      (t) => assign(credentialSetting(t), 'name', 'ENTRA_CLIENT_SECRET'),
      'certificate mode must not write ENTRA_CLIENT_SECRET',
    ],
    [
      'the certificate loaded under another thumbprint',
      (t) =>
        setSetting(
          t,
          'WEBSITE_LOAD_CERTIFICATES',
          "[if(variables('useClientCertificate'), parameters('entraClientCertificateThumbprint'), '')]",
        ),
      'certificate mode must load exactly the certificate',
    ],
    [
      'the certificate path in a folder App Service does not write',
      (t) =>
        assign(
          objectAt(t, 'variables'),
          'clientCertificatePath',
          "[format('/var/ssl/certs/{0}.der', variables('clientCertificateThumbprint'))]",
        ),
      'certificate mode must point ENTRA_CLIENT_CERTIFICATE_PATH at /var/ssl/private/',
    ],
    [
      'both credentials accepted',
      (t) =>
        assign(
          objectAt(t, 'variables'),
          'entraCredentialProblem',
          "[if(and(not(variables('useClientCertificate')), empty(parameters('entraClientSecret'))), 'none', '')]",
        ),
      'not both',
    ],
    [
      'platform CORS open to every origin, as the original sample set it',
      (t) => assign(objectAt(site(t), 'properties', 'siteConfig'), 'cors', { allowedOrigins: ['*'], supportCredentials: false }),
      'siteConfig.cors must not be set',
    ],
    [
      'platform CORS in a separate web config resource',
      (t) =>
        arrayAt(t, 'resources').push({
          type: 'Microsoft.Web/sites/config',
          apiVersion: '2024-04-01',
          name: "[format('{0}/web', parameters('appName'))]",
          dependsOn: ["[variables('siteId')]"],
          properties: { cors: { allowedOrigins: ['*'] } },
        }),
      'platform CORS (properties.cors) must not be set',
    ],
    [
      'container logging off',
      (t) => assign(objectAt(logsConfig(t), 'properties', 'httpLogs', 'fileSystem'), 'enabled', false),
      'container logging must be on',
    ],
    ['no logging configuration', (t) => removeEntry(arrayAt(t, 'resources'), logsConfig(t)), 'container logging must be on'],
    [
      'a log quota the API refuses',
      (t) => assign(objectAt(logsConfig(t), 'properties', 'httpLogs', 'fileSystem'), 'retentionInMb', 500),
      'retentionInMb must be 25..100',
    ],
    [
      'a secret flowing into a plain setting',
      (t) => setSetting(t, 'LOG_LEVEL', "[parameters('entraClientSecret')]"),
      'LOG_LEVEL is not a secret setting but its value derives from a secret',
    ],
    [
      'AZURE_CLIENT_ID as a setting',
      (t) => appSettings(t).push({ name: 'AZURE_CLIENT_ID', value: 'x' }),
      'AZURE_CLIENT_ID is read by DefaultAzureCredential',
    ],
    [
      'a misspelt setting',
      (t) => assign(setting(t, 'ENTRA_ADMIN_ROLE'), 'name', 'ENTRA_ADMIN_ROLES'),
      'ENTRA_ADMIN_ROLES is neither read by the service',
    ],
    [
      'a legacy setting name',
      (t) => assign(setting(t, 'GRAPH_EXTENSION_NAME'), 'name', 'GraphExtensionName'),
      'GraphExtensionName is a deprecated alias',
    ],
    ['a missing tenant id', (t) => removeEntry(appSettings(t), setting(t, 'ENTRA_TENANT_ID')), 'required app setting ENTRA_TENANT_ID'],
    [
      'ACS_ENDPOINT in both modes',
      (t) => assign(objectAt(t, 'variables'), 'acsSettingName', 'ACS_ENDPOINT'),
      'connectionString mode must set ACS_CONNECTION_STRING',
    ],
    [
      'the keys read in managed identity mode too',
      (t) =>
        editSettingsExpression(
          t,
          "format('https://{0}/', reference(variables('acsId'), '2023-04-01').hostName)",
          "listKeys(variables('acsId'), '2023-04-01').primaryEndpoint",
        ),
      'managedIdentity mode must not read the ACS keys',
    ],
    ['TRUST_PROXY=true', (t) => setSetting(t, 'TRUST_PROXY', 'true'), 'loadConfig: TRUST_PROXY'],
    ['NODE_ENV=development', (t) => setSetting(t, 'NODE_ENV', 'development'), 'NODE_ENV must be "production"'],
    [
      'building on the server',
      (t) => setSetting(t, 'SCM_DO_BUILD_DURING_DEPLOYMENT', 'true'),
      'SCM_DO_BUILD_DURING_DEPLOYMENT must be "false"',
    ],
    ['HTTP allowed', (t) => assign(objectAt(site(t), 'properties'), 'httpsOnly', false), 'properties.httpsOnly must be true'],
    [
      'TLS 1.0',
      (t) => assign(objectAt(site(t), 'properties', 'siteConfig'), 'minTlsVersion', '1.0'),
      'siteConfig.minTlsVersion must be "1.2"',
    ],
    [
      'FTP on',
      (t) => assign(objectAt(site(t), 'properties', 'siteConfig'), 'ftpsState', 'AllAllowed'),
      'siteConfig.ftpsState must be "Disabled"',
    ],
    [
      'no health check',
      (t) => remove(objectAt(site(t), 'properties', 'siteConfig'), 'healthCheckPath'),
      'siteConfig.healthCheckPath must be "/health"',
    ],
    ['no managed identity', (t) => assign(site(t), 'identity', { type: 'None' }), 'identity.type must be "SystemAssigned"'],
    [
      'Always On on a Free plan',
      (t) => assign(objectAt(site(t), 'properties', 'siteConfig'), 'alwaysOn', true),
      'siteConfig.alwaysOn must be false',
    ],
    ['a Windows runtime', (t) => assign(site(t), 'kind', 'app'), 'kind must be "app,linux"'],
    [
      'an API version the schemas do not know',
      (t) => assign(site(t), 'apiVersion', '2015-08-01'),
      'Microsoft.Web/sites@2015-08-01 is not in the API version allow-list',
    ],
    [
      'a bogus API version in reference()',
      (t) =>
        editSettingsExpression(
          t,
          "reference(variables('appInsightsId'), '2020-02-02')",
          "reference(variables('appInsightsId'), '2014-04-01')",
        ),
      'uses API version 2014-04-01',
    ],
    [
      'an unguarded reference() to a conditional resource',
      (t) =>
        editSettingsExpression(
          t,
          "if(parameters('enableApplicationInsights'), reference(variables('appInsightsId'), '2020-02-02').ConnectionString, '')",
          "reference(variables('appInsightsId'), '2020-02-02').ConnectionString",
        ),
      'which this deployment does not create',
    ],
    [
      'the role assignment in both modes',
      (t) => remove(roleDeployment(t), 'condition'),
      'connectionString mode must not grant the app a role',
    ],
    [
      'a new ACS resource although an existing one is named',
      (t) => remove(acsResource(t), 'condition'),
      'must not create a Communication Services resource',
    ],
    [
      'the existing ACS resource ignored',
      (t) => assign(objectAt(t, 'variables'), 'acsId', "[variables('newAcsId')]"),
      'must point at the Communication Services resource CommunicationServices-hero',
    ],
    [
      "the role assigned in this resource group rather than the existing ACS resource's",
      (t) => remove(roleDeployment(t), 'resourceGroup'),
      'must be scoped to the ACS resource /subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/rg-hero-sample',
    ],
    [
      "a role assignment name that ignores the app's principal",
      (t) =>
        assign(
          roleAssignment(t),
          'name',
          "[guid(resourceId('Microsoft.Communication/communicationServices', parameters('acsName')), parameters('roleDefinitionId'))]",
        ),
      "must derive from the app's principal id",
    ],
    [
      'the nested deployment evaluated in the outer scope',
      (t) => remove(objectAt(roleDeployment(t), 'properties'), 'expressionEvaluationOptions'),
      "expressionEvaluationOptions.scope 'inner'",
    ],
    [
      'an undeclared parameter in the nested template',
      (t) => assign(objectAt(roleAssignment(t), 'properties'), 'principalType', "[parameters('principalKind')]"),
      "parameters('principalKind')",
    ],
    ['the role assigned on the resource group', (t) => remove(roleAssignment(t), 'scope'), 'must be scoped to the ACS resource'],
    [
      'another role',
      (t) =>
        assign(
          objectAt(roleAssignment(t), 'properties'),
          'roleDefinitionId',
          "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '8e3af657-a8ff-443c-a75c-2fe8c4bcb635')]",
        ),
      'unexpected roleDefinitionId',
    ],
    // The table store (mappingStore table).
    ...Object.entries(STORAGE_ACCOUNT_PROPERTIES).map(([name, value]): [string, (copy: JsonObject) => void, string] => [
      `a storage account with ${name} loosened`,
      (t) => assign(objectAt(storageAccount(t), 'properties'), name, typeof value === 'boolean' ? !value : 'TLS1_0'),
      `storage account properties.${name} must be ${JSON.stringify(value)}`,
    ]),
    [
      'a storage account property the checks do not know',
      (t) => assign(objectAt(storageAccount(t), 'properties'), 'allowedCopyScope', 'AAD'),
      'storage account properties.allowedCopyScope is not one the checks know',
    ],
    ['a blob-only storage account', (t) => assign(storageAccount(t), 'kind', 'BlobStorage'), 'storage account kind must be "StorageV2"'],
    [
      'a storage account in graph mode too',
      (t) => remove(storageAccount(t), 'condition'),
      'graph mode must not deploy a storage account or a table',
    ],
    [
      "a storage account name with the app name's hyphens",
      (t) =>
        assign(
          objectAt(t, 'variables'),
          'storageAccountName',
          "[format('{0}{1}', take(parameters('appName'), 11), uniqueString(resourceGroup().id, parameters('appName')))]",
        ),
      'must be 3 to 24 lower-case letters and digits',
    ],
    [
      'the seal keys written in table mode too',
      (t) =>
        editSettingsExpression(
          t,
          "createObject('name', 'MAPPING_TABLE_NAME', 'value', parameters('mappingTableName'))",
          "createObject('name', 'MAPPING_TABLE_NAME', 'value', parameters('mappingTableName')), createObject('name', 'MAPPING_SEAL_KEYS', 'value', parameters('mappingSealKeys'))",
        ),
      'table mode must write no secret setting, but writes MAPPING_SEAL_KEYS',
    ],
    [
      'a connection string with the account key instead of the endpoint',
      (t) =>
        editSettingsExpression(
          t,
          "createObject('name', 'MAPPING_TABLE_ENDPOINT', 'value', reference(variables('storageAccountId'), '2023-05-01').primaryEndpoints.table)",
          "createObject('name', 'MAPPING_TABLE_CONNECTION_STRING', 'value', format('DefaultEndpointsProtocol=https;AccountName={0};AccountKey={1};EndpointSuffix=core.windows.net', variables('storageAccountName'), listKeys(variables('storageAccountId'), '2023-05-01').keys[0].value))",
        ),
      'table mode must write no secret setting, but writes MAPPING_TABLE_CONNECTION_STRING',
    ],
    [
      'an account key smuggled into a plain setting',
      (t) =>
        editSettingsExpression(
          t,
          "reference(variables('storageAccountId'), '2023-05-01').primaryEndpoints.table)",
          "format('{0}?key={1}', reference(variables('storageAccountId'), '2023-05-01').primaryEndpoints.table, listKeys(variables('storageAccountId'), '2023-05-01').keys[0].value))",
        ),
      'table mode must write no secret, but MAPPING_TABLE_ENDPOINT derives from listKeys',
    ],
    [
      'a Graph store setting written in table mode too',
      (t) => makeCommon(t, 'GRAPH_EXTENSION_NAME'),
      'table mode must not write GRAPH_EXTENSION_NAME',
    ],
    [
      'the blob endpoint as the table endpoint',
      (t) => editSettingsExpression(t, '.primaryEndpoints.table)', '.primaryEndpoints.blob)'),
      'MAPPING_TABLE_ENDPOINT must be https://',
    ],
    [
      'a table other than the one the service uses',
      (t) => assign(mappingTable(t), 'name', "[format('{0}/default/Mappings', variables('storageAccountName'))]"),
      'MAPPING_TABLE_NAME must name the table the template creates, Mappings',
    ],
    [
      'the web app deployed before the storage account it reads',
      (t) => removeEntry(arrayAt(site(t), 'dependsOn'), "[variables('storageAccountId')]"),
      "reads Microsoft.Storage/storageAccounts '",
    ],
    [
      'the table role on the resource group',
      (t) => remove(roleAssignment(t, 'tableRoleAssignmentDeploymentName'), 'scope'),
      "the table store's role assignment must be scoped to the storage account",
    ],
    [
      'Storage Table Data Reader instead of Contributor',
      (t) => assign(objectAt(t, 'variables'), 'storageTableDataContributorRoleId', '76199698-9eea-4c19-bc75-cec21354c6b6'),
      'for the table store role assignment',
    ],
    [
      'Storage Account Contributor, which can read the keys',
      (t) => assign(objectAt(t, 'variables'), 'storageTableDataContributorRoleId', '17d1049b-9a84-46fb-8f53-869881c3d3ab'),
      'for the table store role assignment',
    ],
    [
      'the table role in graph mode too',
      (t) => remove(roleDeployment(t, 'tableRoleAssignmentDeploymentName'), 'condition'),
      'graph mode must not grant the app a role on a storage account',
    ],
    [
      "a table role assignment name that ignores the app's principal",
      (t) =>
        assign(
          roleAssignment(t, 'tableRoleAssignmentDeploymentName'),
          'name',
          "[guid(resourceId('Microsoft.Storage/storageAccounts', parameters('storageAccountName')), parameters('roleDefinitionId'))]",
        ),
      "must derive from the app's principal id",
    ],
    [
      'a secret accepted in table mode',
      (t) => assign(objectAt(t, 'variables'), 'tableStoreProblem', ''),
      "a deployment with table store, a client secret must fail with 'mappingStore table uses no Entra credential",
    ],
    [
      'no seal keys accepted in graph mode',
      (t) => assign(objectAt(t, 'variables'), 'sealKeysProblem', ''),
      "a deployment with graph store, no seal keys must fail with 'mappingSealKeys is required with mappingStore graph'",
    ],
    [
      'the storage account name left out of the outputs',
      (t) => assign(objectAt(t, 'outputs', 'storageAccountName'), 'value', ''),
      'output storageAccountName must be',
    ],
    [
      'a secret output',
      (t) => assign(objectAt(t, 'outputs'), 'leak', { type: 'string', value: "[parameters('entraClientSecret')]" }),
      'output leak exposes a secret',
    ],
    [
      'an http site URL',
      (t) =>
        assign(
          objectAt(t, 'outputs', 'siteUrl'),
          'value',
          "[format('http://{0}', reference(variables('siteId'), '2024-04-01').defaultHostName)]",
        ),
      'output siteUrl must be the https URL',
    ],
  ];

  it.each(cases)('%s', (_label, breakIt, expectedProblem) => {
    const copy = brokenCopy();
    breakIt(copy);
    const problems = everyProblem(asTemplate(copy));
    expect(problems.join('\n')).toContain(expectedProblem);
  });

  it.each([
    ['an undeclared parameter', { nope: { value: 'x' } }, "names 'nope', which the template does not declare"],
    ['the client secret', { entraClientSecret: { value: 'abc' } }, "must not hold the secure parameter 'entraClientSecret'"],
    ['the seal keys', { mappingSealKeys: { value: FAKE.mappingSealKeys } }, "must not hold the secure parameter 'mappingSealKeys'"],
    ['a connection string', { corsAllowedOrigins: { value: 'endpoint=https://x/;accesskey=abc' } }, 'looks like a secret'],
    ['a value outside allowedValues', { nodeRuntime: { value: 'NODE|18-lts' } }, 'is not one of its allowedValues'],
  ])('in the parameters file: %s', (_label, extra, expectedProblem) => {
    const file = { ...parametersFile, parameters: { ...parametersFile.parameters, ...extra } };
    expect(parametersFileProblems(template, file).join('\n')).toContain(expectedProblem);
  });

  it('and the unbroken template has none', () => {
    expect(everyProblem(template)).toEqual([]);
  });
});
