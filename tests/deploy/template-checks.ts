/**
 * Checks of deploy/azuredeploy.json and its parameters file, written as functions that return a list of
 * problems (empty = fine) so the test suite can also prove each check fires on a broken copy.
 *
 * `simulateDeployment` plays the deployment offline: it resolves parameters (defaults, allowed values,
 * lengths), evaluates every expression in every resource and output with fake deployment-time values,
 * and refuses what ARM would refuse at deployment time: `reference()`/`listKeys()` of a resource that this
 * deployment does not create, or with an API version outside the allow-list.
 */
import { createHash } from 'node:crypto';

import { ConfigError, LEGACY_ALIASES, SECRET_SETTING_NAMES, SETTING_NAMES, loadConfig } from '../../src/config/config';
import {
  ArmExpressionError,
  SecretValue,
  callsIn,
  evaluateDeep,
  expressionsIn,
  type ArmFunction,
  type ArmValue,
} from './arm-expressions';

export const DEPLOYMENT_TEMPLATE_SCHEMA = 'https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#';
export const DEPLOYMENT_PARAMETERS_SCHEMA = 'https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#';

/**
 * Resource API versions the ARM JSON schemas know, per resource type. Each entry was checked against
 * github.com/Azure/azure-resource-manager-schemas (schemas/<version>/<namespace>.json) and the page named.
 */
export const KNOWN_API_VERSIONS: Readonly<Record<string, readonly string[]>> = {
  // schemas/2024-04-01/Microsoft.Web.json; learn.microsoft.com/azure/templates/microsoft.web/change-log/sites (2024-04-01)
  'Microsoft.Web/serverfarms': ['2024-04-01'],
  'Microsoft.Web/sites': ['2024-04-01'],
  // schemas/2023-04-01/Microsoft.Communication.json; azure-rest-api-specs
  // communication/resource-manager/Microsoft.Communication/stable/2023-04-01/CommunicationServices.json
  'Microsoft.Communication/communicationServices': ['2023-04-01'],
  // schemas/2022-04-01/Microsoft.Authorization.json; learn.microsoft.com/rest/api/authorization/role-assignments/create
  // ("2022-04-01 is the first stable version", learn.microsoft.com/azure/role-based-access-control/role-assignments-template)
  'Microsoft.Authorization/roleAssignments': ['2022-04-01'],
  // schemas/2020-02-02/Microsoft.Insights.Application.json; azure-rest-api-specs
  // applicationinsights/resource-manager/Microsoft.Insights/stable/2020-02-02/components_API.json
  'Microsoft.Insights/components': ['2020-02-02'],
  // schemas/2023-09-01/Microsoft.OperationalInsights.json; learn.microsoft.com/azure/templates/microsoft.operationalinsights/change-log/workspaces
  'Microsoft.OperationalInsights/workspaces': ['2023-09-01'],
};

/**
 * Built-in roles the template may give the web app on the ACS resource: Communication and Email Service
 * Owner (Microsoft.Communication actions only) and Contributor (what Microsoft's ACS Entra ID quickstart uses).
 */
export const ACS_ROLE_DEFINITION_IDS: readonly string[] = ['09976791-48a7-449e-bb21-39d1a415f350', 'b24988ac-6180-42a0-ab88-20f7382dd24c'];

/** App settings read by App Service itself or its agents, not by the service. */
export const PLATFORM_SETTING = /^(WEBSITE_|SCM_|APPLICATIONINSIGHTS_|ApplicationInsightsAgent_)/;

/** SKUs on which App Service cannot keep an app loaded (Free and Shared). */
export const SKUS_WITHOUT_ALWAYS_ON: readonly string[] = ['F1', 'D1'];

export const FAKE = {
  subscriptionId: '11111111-2222-4333-8444-555555555555',
  tenantId: '66666666-7777-4888-9999-aaaaaaaaaaaa',
  resourceGroup: 'rg-acs-auth',
  location: 'westeurope',
  principalId: 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff',
  clientId: '12345678-90ab-4cde-8f01-234567890abc',
  clientSecret: 'fake-client-secret-used-only-by-tests',
  /** A well-formed key ring (32 bytes of 0x01): the shape MAPPING_SEAL_KEYS needs, with no value to anyone. */
  mappingSealKeys: `tests:${Buffer.alloc(32, 1).toString('base64')}`,
} as const;

export interface ArmParameterDefinition {
  readonly type: string;
  readonly defaultValue?: unknown;
  readonly allowedValues?: readonly unknown[];
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly metadata?: { readonly description?: string };
}

export interface ArmResourceDefinition {
  readonly type: string;
  readonly apiVersion: string;
  readonly name: string;
  readonly condition?: unknown;
  readonly scope?: string;
  readonly [key: string]: unknown;
}

export interface ArmTemplate {
  readonly $schema: string;
  readonly contentVersion: string;
  readonly parameters: Readonly<Record<string, ArmParameterDefinition>>;
  readonly variables?: Readonly<Record<string, unknown>>;
  readonly resources: readonly ArmResourceDefinition[];
  readonly outputs?: Readonly<Record<string, { readonly type: string; readonly value: unknown }>>;
}

export interface ArmParametersFile {
  readonly $schema: string;
  readonly contentVersion: string;
  readonly parameters: Readonly<Record<string, { readonly value?: unknown; readonly reference?: unknown }>>;
}

export interface SimulatedResource {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  readonly deployed: boolean;
  readonly definition: ArmResourceDefinition;
  /** The resource with every expression evaluated; undefined when evaluation failed. */
  readonly evaluated: Readonly<Record<string, ArmValue>> | undefined;
}

export interface Simulation {
  readonly problems: string[];
  readonly parameters: Readonly<Record<string, ArmValue>>;
  readonly resources: readonly SimulatedResource[];
  readonly outputs: Readonly<Record<string, ArmValue>>;
  readonly referenceCalls: readonly string[];
  readonly listKeysCalls: readonly string[];
}

const SECURE_TYPES = new Set(['securestring', 'secureobject']);

function isSecureType(type: string): boolean {
  return SECURE_TYPES.has(type.toLowerCase());
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof SecretValue);
}

function hash(parts: readonly ArmValue[]): string {
  return createHash('sha1')
    .update(parts.map((part) => (part instanceof SecretValue ? part.text : JSON.stringify(part))).join('|'))
    .digest('hex');
}

function text(value: ArmValue | undefined, what: string): string {
  if (typeof value === 'string') return value;
  if (value instanceof SecretValue) return value.text;
  throw new ArmExpressionError(`${what} must be a string, got ${JSON.stringify(value)}`);
}

function resourceIdOf(prefix: string, type: string, names: readonly string[]): string {
  const [namespace, ...types] = type.split('/');
  if (types.length !== names.length) throw new ArmExpressionError(`resource type ${type} needs ${types.length} name segment(s), got ${names.length}`);
  return `${prefix}/providers/${namespace}/${types.map((segment, i) => `${segment}/${names[i]}`).join('/')}`;
}

const RESOURCE_GROUP_ID = `/subscriptions/${FAKE.subscriptionId}/resourceGroups/${FAKE.resourceGroup}`;

/** What `reference()` gives for a resource after deployment (the properties the template may read). */
function runtimeState(resource: SimulatedResource, full: boolean): ArmValue {
  const { type, name, definition } = resource;
  let properties: Record<string, ArmValue> = {};
  if (type === 'Microsoft.Communication/communicationServices') {
    properties = { hostName: `${name}.unitedstates.communication.azure.com`, provisioningState: 'Succeeded' };
  } else if (type === 'Microsoft.Web/sites') {
    properties = { defaultHostName: `${name}.azurewebsites.net`, state: 'Running' };
  } else if (type === 'Microsoft.Insights/components') {
    properties = {
      ConnectionString: `InstrumentationKey=${hash([name]).slice(0, 8)}-0000-4000-8000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/`,
    };
  }
  if (!full) return properties;
  const identityType = isRecord(definition['identity']) ? definition['identity']['type'] : undefined;
  const identity: ArmValue =
    typeof identityType === 'string' && identityType.includes('SystemAssigned')
      ? { type: identityType, principalId: FAKE.principalId, tenantId: FAKE.tenantId }
      : { type: 'None' };
  return { id: resource.id, name, type, properties, identity };
}

function listKeysOf(resource: SimulatedResource): ArmValue {
  if (resource.type !== 'Microsoft.Communication/communicationServices') {
    throw new ArmExpressionError(`listKeys() of ${resource.type} is not modelled`);
  }
  const key = Buffer.from(hash([resource.id])).toString('base64');
  const endpoint = `https://${resource.name}.unitedstates.communication.azure.com/`;
  return {
    primaryKey: new SecretValue(key, ['listKeys']),
    secondaryKey: new SecretValue(key.split('').reverse().join(''), ['listKeys']),
    primaryConnectionString: new SecretValue(`endpoint=${endpoint};accesskey=${key}`, ['listKeys']),
    secondaryConnectionString: new SecretValue(`endpoint=${endpoint};accesskey=${key.split('').reverse().join('')}`, ['listKeys']),
  };
}

function checkParameterValue(name: string, definition: ArmParameterDefinition, value: unknown): string[] {
  const problems: string[] = [];
  const type = definition.type.toLowerCase();
  const expected = type === 'bool' ? 'boolean' : type === 'int' ? 'number' : type === 'array' ? 'array' : type.includes('object') ? 'object' : 'string';
  const actual = Array.isArray(value) ? 'array' : typeof value;
  if (actual !== expected) problems.push(`parameter '${name}' must be a ${definition.type}, got ${JSON.stringify(value)}`);
  if (definition.allowedValues && !definition.allowedValues.some((allowed) => JSON.stringify(allowed) === JSON.stringify(value))) {
    problems.push(`parameter '${name}' value ${JSON.stringify(value)} is not one of its allowedValues`);
  }
  if (typeof value === 'string') {
    if (definition.minLength !== undefined && value.length < definition.minLength) problems.push(`parameter '${name}' is shorter than its minLength`);
    if (definition.maxLength !== undefined && value.length > definition.maxLength) problems.push(`parameter '${name}' is longer than its maxLength`);
  }
  return problems;
}

/** Plays a deployment of the template offline with the given parameter values. */
export function simulateDeployment(template: ArmTemplate, supplied: Readonly<Record<string, unknown>>): Simulation {
  const problems: string[] = [];
  const referenceCalls: string[] = [];
  const listKeysCalls: string[] = [];
  const declared = template.parameters ?? {};
  const variableDefinitions = template.variables ?? {};

  for (const name of Object.keys(supplied)) {
    if (!Object.hasOwn(declared, name)) problems.push(`value supplied for undeclared parameter '${name}'`);
  }

  const deploymentFunctions: Record<string, ArmFunction> = {
    resourceGroup: () => ({ id: RESOURCE_GROUP_ID, name: FAKE.resourceGroup, location: FAKE.location }),
    subscription: () => ({ id: `/subscriptions/${FAKE.subscriptionId}`, subscriptionId: FAKE.subscriptionId, tenantId: FAKE.tenantId }),
    uniqueString: (args) => BigInt(`0x${hash(args).slice(0, 16)}`).toString(32).padStart(13, 'a').slice(0, 13),
    guid: (args) => {
      const digest = hash(args);
      return `${digest.slice(0, 8)}-${digest.slice(8, 12)}-${digest.slice(12, 16)}-${digest.slice(16, 20)}-${digest.slice(20, 32)}`;
    },
    resourceId: ([type, ...names]) => resourceIdOf(RESOURCE_GROUP_ID, text(type, 'resourceId() type'), names.map((n) => text(n, 'resourceId() name'))),
    subscriptionResourceId: ([type, ...names]) =>
      resourceIdOf(`/subscriptions/${FAKE.subscriptionId}`, text(type, 'subscriptionResourceId() type'), names.map((n) => text(n, 'name'))),
  };

  // Parameters: supplied value, else the default (which may use deployment functions), then validated.
  const parameterValues: Record<string, ArmValue> = {};
  for (const [name, definition] of Object.entries(declared)) {
    let value: unknown;
    if (Object.hasOwn(supplied, name)) value = supplied[name];
    else if (definition.defaultValue !== undefined) value = evaluateDeep(definition.defaultValue, deploymentFunctions);
    else {
      problems.push(`parameter '${name}' has no default and no value was supplied`);
      continue;
    }
    problems.push(...checkParameterValue(name, definition, value));
    parameterValues[name] = isSecureType(definition.type) && typeof value === 'string' ? new SecretValue(value, [`parameter:${name}`]) : (value as ArmValue);
  }

  const variableCache = new Map<string, ArmValue>();
  const evaluating = new Set<string>();
  const functions: Record<string, ArmFunction> = {
    ...deploymentFunctions,
    parameters: ([name]) => {
      const key = text(name, 'parameters() argument');
      if (!Object.hasOwn(parameterValues, key)) throw new ArmExpressionError(`parameters('${key}') is not a declared parameter with a value`);
      return parameterValues[key] as ArmValue;
    },
    variables: ([name]) => {
      const key = text(name, 'variables() argument');
      if (!Object.hasOwn(variableDefinitions, key)) throw new ArmExpressionError(`variables('${key}') is not declared`);
      const cached = variableCache.get(key);
      if (cached !== undefined) return cached;
      if (evaluating.has(key)) throw new ArmExpressionError(`variable '${key}' refers to itself`);
      evaluating.add(key);
      const value = evaluateDeep(variableDefinitions[key], functions);
      evaluating.delete(key);
      variableCache.set(key, value);
      return value;
    },
  };

  // Resources: name, id and condition first, so reference()/listKeys() know what this deployment creates.
  const resources: SimulatedResource[] = [];
  const mutableResources: Array<{ -readonly [K in keyof SimulatedResource]: SimulatedResource[K] }> = [];
  template.resources.forEach((definition, index) => {
    const where = `resources[${index}] (${definition.type})`;
    try {
      const name = text(evaluateDeep(definition.name, functions), 'name');
      const deployed = definition.condition === undefined ? true : evaluateDeep(definition.condition, functions);
      if (typeof deployed !== 'boolean') throw new ArmExpressionError('condition must be a bool');
      const id = definition.scope === undefined ? resourceIdOf(RESOURCE_GROUP_ID, definition.type, name.split('/')) : `${definition.type}/${name}`;
      mutableResources.push({ type: definition.type, name, id, deployed, definition, evaluated: undefined });
    } catch (error) {
      problems.push(`${where}: ${(error as Error).message}`);
    }
  });

  const resolveTarget = (target: ArmValue | undefined, fn: string): SimulatedResource => {
    const key = text(target, `${fn}() target`);
    const found = mutableResources.find((resource) => resource.id.toLowerCase() === key.toLowerCase() || resource.name === key);
    if (!found) throw new ArmExpressionError(`${fn}('${key}') names no resource of this template`);
    if (!found.deployed) {
      throw new ArmExpressionError(`${fn}() of ${found.type} '${found.name}', which this deployment does not create (ARM evaluates it anyway: guard it with if())`);
    }
    return found;
  };
  const checkApiVersion = (resource: SimulatedResource, apiVersion: ArmValue | undefined, fn: string): void => {
    if (apiVersion === undefined) return;
    const version = text(apiVersion, `${fn}() apiVersion`);
    if (!(KNOWN_API_VERSIONS[resource.type] ?? []).includes(version)) {
      throw new ArmExpressionError(`${fn}() of ${resource.type} uses API version ${version}, which is not in the allow-list`);
    }
  };
  functions['reference'] = ([target, apiVersion, full]) => {
    const resource = resolveTarget(target, 'reference');
    checkApiVersion(resource, apiVersion, 'reference');
    referenceCalls.push(resource.id);
    return runtimeState(resource, typeof full === 'string' && full.toLowerCase() === 'full');
  };
  functions['listKeys'] = ([target, apiVersion]) => {
    const resource = resolveTarget(target, 'listKeys');
    if (apiVersion === undefined) throw new ArmExpressionError('listKeys() needs an API version');
    checkApiVersion(resource, apiVersion, 'listKeys');
    listKeysCalls.push(resource.id);
    return listKeysOf(resource);
  };

  // Every resource is evaluated, deployed or not: ARM resolves reference()/list*() in all of them.
  mutableResources.forEach((resource) => {
    try {
      const { condition: _condition, ...body } = resource.definition;
      resource.evaluated = evaluateDeep(body, functions) as Record<string, ArmValue>;
    } catch (error) {
      problems.push(`${resource.type} '${resource.name}': ${(error as Error).message}`);
    }
    resources.push(resource);
  });

  const outputs: Record<string, ArmValue> = {};
  for (const [name, output] of Object.entries(template.outputs ?? {})) {
    try {
      outputs[name] = evaluateDeep(output.value, functions);
    } catch (error) {
      problems.push(`output '${name}': ${(error as Error).message}`);
    }
  }

  return { problems, parameters: parameterValues, resources, outputs, referenceCalls, listKeysCalls };
}

/** Parameter values a first-time user supplies: the two required ones, plus the scenario's choices. */
export function scenarioParameters(overrides: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  return { entraClientId: FAKE.clientId, entraClientSecret: FAKE.clientSecret, mappingSealKeys: FAKE.mappingSealKeys, ...overrides };
}

// ---------------------------------------------------------------------------------------------------
// Static checks

/** parameters('x') and variables('y') references, with where they occur. */
function references(value: unknown, fn: 'parameters' | 'variables', path: string): Array<{ readonly name: string | undefined; readonly path: string }> {
  return expressionsIn(value, path).flatMap(({ path: at, node }) =>
    callsIn(node)
      .filter((call) => call.name.toLowerCase() === fn.toLowerCase())
      .map((call) => ({ name: call.args.length === 1 && call.args[0]?.kind === 'string' ? call.args[0].value : undefined, path: at })),
  );
}

export function staticTemplateProblems(template: ArmTemplate): string[] {
  const problems: string[] = [];
  if (template.$schema !== DEPLOYMENT_TEMPLATE_SCHEMA) problems.push(`$schema must be ${DEPLOYMENT_TEMPLATE_SCHEMA}`);
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(template.contentVersion ?? '')) problems.push('contentVersion must look like 1.0.0.0');
  if (!Array.isArray(template.resources) || template.resources.length === 0) problems.push('resources must be a non-empty array');

  const parameters = template.parameters ?? {};
  const variables = template.variables ?? {};
  const body = { resources: template.resources, outputs: template.outputs };

  let allRefs: Array<{ name: string | undefined; path: string; fn: string }> = [];
  try {
    allRefs = [
      ...references(template, 'parameters', '$').map((ref) => ({ ...ref, fn: 'parameters' })),
      ...references(template, 'variables', '$').map((ref) => ({ ...ref, fn: 'variables' })),
    ];
  } catch (error) {
    problems.push(`an expression does not parse: ${(error as Error).message}`);
  }
  for (const ref of allRefs) {
    const pool = ref.fn === 'parameters' ? parameters : variables;
    if (ref.name === undefined) problems.push(`${ref.fn}() at ${ref.path} must take one string literal`);
    else if (!Object.hasOwn(pool, ref.name)) problems.push(`${ref.fn}('${ref.name}') at ${ref.path} names an undeclared ${ref.fn === 'parameters' ? 'parameter' : 'variable'}`);
  }

  const usedParameters = new Set(
    [...references(body, 'parameters', '$'), ...references(variables, 'parameters', '$.variables')].map((ref) => ref.name),
  );
  for (const name of Object.keys(parameters)) {
    if (!usedParameters.has(name)) problems.push(`parameter '${name}' is declared but never used in resources, variables or outputs`);
  }
  for (const name of Object.keys(variables)) {
    const users = [
      ...references(body, 'variables', '$'),
      ...Object.entries(variables)
        .filter(([other]) => other !== name)
        .flatMap(([other, value]) => references(value, 'variables', `$.variables.${other}`)),
    ];
    if (!users.some((ref) => ref.name === name)) problems.push(`variable '${name}' is declared but never used`);
  }

  for (const [name, definition] of Object.entries(parameters)) {
    if (isSecureType(definition.type) && definition.defaultValue !== undefined) problems.push(`secure parameter '${name}' must not have a defaultValue`);
  }

  template.resources?.forEach((resource, index) => {
    const known = KNOWN_API_VERSIONS[resource.type];
    if (!known) problems.push(`resources[${index}]: type ${resource.type} has no entry in the API version allow-list`);
    else if (!known.includes(resource.apiVersion)) problems.push(`resources[${index}]: ${resource.type}@${resource.apiVersion} is not in the API version allow-list`);
  });
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// Checks of one simulated deployment

export interface ScenarioExpectation {
  readonly acsAuthMode: string;
  readonly enableApplicationInsights: boolean;
}

function deployedOfType(simulation: Simulation, type: string): SimulatedResource[] {
  return simulation.resources.filter((resource) => resource.type === type && resource.deployed);
}

function containsSecret(value: ArmValue): boolean {
  if (value instanceof SecretValue) return true;
  if (Array.isArray(value)) return value.some(containsSecret);
  if (isRecord(value)) return Object.values(value).some((item) => containsSecret(item as ArmValue));
  return false;
}

/** App settings of the deployed web app, by name (values keep their secret taint). */
export function appSettingsOf(simulation: Simulation): Map<string, ArmValue> {
  const site = deployedOfType(simulation, 'Microsoft.Web/sites')[0];
  const properties = site?.evaluated?.['properties'];
  const siteConfig = isRecord(properties) ? properties['siteConfig'] : undefined;
  const list = isRecord(siteConfig) ? siteConfig['appSettings'] : undefined;
  const settings = new Map<string, ArmValue>();
  if (!Array.isArray(list)) return settings;
  for (const entry of list as readonly ArmValue[]) {
    if (isRecord(entry) && typeof entry['name'] === 'string') settings.set(entry['name'], (entry['value'] ?? null) as ArmValue);
  }
  return settings;
}

export function siteProblems(simulation: Simulation): string[] {
  const problems: string[] = [];
  const sites = deployedOfType(simulation, 'Microsoft.Web/sites');
  if (sites.length !== 1) return [`expected exactly one deployed Microsoft.Web/sites, found ${sites.length}`];
  const site = sites[0] as SimulatedResource;
  const evaluated = site.evaluated;
  if (!evaluated) return ['the web app did not evaluate'];
  const properties = isRecord(evaluated['properties']) ? evaluated['properties'] : {};
  const config = isRecord(properties['siteConfig']) ? properties['siteConfig'] : {};
  const identity = isRecord(evaluated['identity']) ? evaluated['identity'] : {};
  const sku = simulation.parameters['appServicePlanSku'];

  const expect = (what: string, actual: unknown, expected: unknown): void => {
    if (actual !== expected) problems.push(`${what} must be ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  };
  expect('kind', evaluated['kind'], 'app,linux');
  expect('properties.httpsOnly', properties['httpsOnly'], true);
  expect('siteConfig.minTlsVersion', config['minTlsVersion'], '1.2');
  expect('siteConfig.scmMinTlsVersion', config['scmMinTlsVersion'], '1.2');
  expect('siteConfig.ftpsState', config['ftpsState'], 'Disabled');
  expect('siteConfig.http20Enabled', config['http20Enabled'], true);
  expect('siteConfig.healthCheckPath', config['healthCheckPath'], '/health');
  expect('siteConfig.appCommandLine', config['appCommandLine'], 'node dist/main.js');
  expect('siteConfig.linuxFxVersion', config['linuxFxVersion'], simulation.parameters['nodeRuntime']);
  if (typeof config['linuxFxVersion'] !== 'string' || !/^NODE\|\d+-lts$/.test(config['linuxFxVersion'])) {
    problems.push('siteConfig.linuxFxVersion must be a Node.js LTS runtime such as NODE|22-lts');
  }
  expect('siteConfig.alwaysOn', config['alwaysOn'], !SKUS_WITHOUT_ALWAYS_ON.includes(String(sku)));
  expect('identity.type', identity['type'], 'SystemAssigned');

  const plans = deployedOfType(simulation, 'Microsoft.Web/serverfarms');
  const plan = plans[0]?.evaluated;
  if (plans.length !== 1 || !plan) problems.push('expected exactly one App Service plan');
  else {
    expect('plan kind', plan['kind'], 'linux');
    expect('plan properties.reserved (Linux)', isRecord(plan['properties']) ? plan['properties']['reserved'] : undefined, true);
    expect('plan sku.name', isRecord(plan['sku']) ? plan['sku']['name'] : undefined, sku);
    if (properties['serverFarmId'] !== plans[0]?.id) problems.push('the web app must run on the template\'s App Service plan');
  }
  return problems;
}

export function appSettingProblems(simulation: Simulation, expected: ScenarioExpectation): string[] {
  const problems: string[] = [];
  const settings = appSettingsOf(simulation);
  const site = deployedOfType(simulation, 'Microsoft.Web/sites')[0];
  const properties = isRecord(site?.evaluated?.['properties']) ? site.evaluated['properties'] : {};
  const config = isRecord(properties['siteConfig']) ? properties['siteConfig'] : {};
  const raw = Array.isArray(config['appSettings']) ? (config['appSettings'] as readonly ArmValue[]) : [];
  if (raw.length !== settings.size) problems.push('app setting names must be strings and unique');

  const serviceNames = new Set<string>(SETTING_NAMES);
  const aliases = new Set(Object.values(LEGACY_ALIASES).flat());
  for (const name of settings.keys()) {
    if (aliases.has(name)) problems.push(`app setting ${name} is a deprecated alias; use its new name`);
    else if (/^AZURE_/.test(name)) problems.push(`app setting ${name} is read by DefaultAzureCredential, not by this service's config`);
    else if (!serviceNames.has(name) && !PLATFORM_SETTING.test(name)) problems.push(`app setting ${name} is neither read by the service (SETTING_NAMES) nor a platform setting`);
  }

  const valueOf = (name: string): string | undefined => {
    const value = settings.get(name);
    if (value === undefined) return undefined;
    return value instanceof SecretValue ? value.text : typeof value === 'string' ? value : JSON.stringify(value);
  };
  for (const name of ['ENTRA_TENANT_ID', 'ENTRA_CLIENT_ID', 'ENTRA_CLIENT_SECRET', 'MAPPING_SEAL_KEYS']) {
    if (!valueOf(name)) problems.push(`required app setting ${name} is missing or empty`);
  }
  const [wanted, unwanted] = expected.acsAuthMode === 'managedIdentity' ? ['ACS_ENDPOINT', 'ACS_CONNECTION_STRING'] : ['ACS_CONNECTION_STRING', 'ACS_ENDPOINT'];
  if (!valueOf(wanted as string)) problems.push(`${expected.acsAuthMode} mode must set ${wanted}`);
  if (settings.has(unwanted as string)) problems.push(`${expected.acsAuthMode} mode must not set ${unwanted}`);
  if (expected.acsAuthMode === 'managedIdentity' && simulation.listKeysCalls.length > 0) {
    problems.push('managedIdentity mode must not read the ACS keys (listKeys() was evaluated)');
  }

  const secureParameters = new Set(Object.keys(simulation.parameters).filter((name) => simulation.parameters[name] instanceof SecretValue));
  for (const [name, value] of settings) {
    const secret = SECRET_SETTING_NAMES.includes(name);
    if (secret) {
      const fromSecretSource =
        value instanceof SecretValue &&
        value.origins.every((origin) => origin === 'listKeys' || (origin.startsWith('parameter:') && secureParameters.has(origin.slice('parameter:'.length))));
      if (!fromSecretSource) problems.push(`secret app setting ${name} must come only from a securestring parameter or listKeys()`);
    } else if (containsSecret(value)) {
      problems.push(`app setting ${name} is not a secret setting but its value derives from a secret`);
    }
  }

  const expectSetting = (name: string, value: string): void => {
    if (valueOf(name) !== value) problems.push(`app setting ${name} must be ${JSON.stringify(value)}, got ${JSON.stringify(valueOf(name))}`);
  };
  expectSetting('NODE_ENV', 'production');
  expectSetting('TRUST_PROXY', '1');
  expectSetting('WEBSITE_RUN_FROM_PACKAGE', '1');
  expectSetting('SCM_DO_BUILD_DURING_DEPLOYMENT', 'false');
  if (expected.enableApplicationInsights) {
    if (!valueOf('APPLICATIONINSIGHTS_CONNECTION_STRING')) problems.push('Application Insights is enabled but APPLICATIONINSIGHTS_CONNECTION_STRING is empty');
    expectSetting('ApplicationInsightsAgent_EXTENSION_VERSION', '~3');
  } else {
    if (valueOf('APPLICATIONINSIGHTS_CONNECTION_STRING')) problems.push('Application Insights is disabled but APPLICATIONINSIGHTS_CONNECTION_STRING is set');
    if (valueOf('ApplicationInsightsAgent_EXTENSION_VERSION')) problems.push('Application Insights is disabled but its agent is switched on');
  }

  // The service's own parser has the last word: it must start, in the expected mode.
  const env = Object.fromEntries([...settings.keys()].map((name) => [name, valueOf(name)]));
  try {
    const config = loadConfig(env);
    if (config.environment !== 'production') problems.push('the service would not run as production');
    if (config.server.trustProxy !== 1) problems.push('the service must trust exactly one proxy hop (App Service front end)');
    if (config.acs.auth.kind !== expected.acsAuthMode) problems.push(`the service would use ACS ${config.acs.auth.kind}, not ${expected.acsAuthMode}`);
    if (config.entra.clientId !== simulation.parameters['entraClientId']) problems.push('ENTRA_CLIENT_ID does not carry the entraClientId parameter');
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems.map((problem) => `loadConfig: ${problem}`));
  }
  return problems;
}

export function roleAssignmentProblems(simulation: Simulation, expected: ScenarioExpectation): string[] {
  const assignments = deployedOfType(simulation, 'Microsoft.Authorization/roleAssignments');
  if (expected.acsAuthMode !== 'managedIdentity') {
    return assignments.length === 0 ? [] : ['connectionString mode must not grant the app a role on the ACS resource'];
  }
  if (assignments.length !== 1) return [`managedIdentity mode needs exactly one role assignment, found ${assignments.length}`];
  const problems: string[] = [];
  const evaluated = (assignments[0] as SimulatedResource).evaluated ?? {};
  const properties = isRecord(evaluated['properties']) ? evaluated['properties'] : {};
  const acs = deployedOfType(simulation, 'Microsoft.Communication/communicationServices')[0];
  if (!acs) return ['no Communication Services resource is deployed'];
  if (evaluated['scope'] !== `Microsoft.Communication/communicationServices/${acs.name}`) {
    problems.push(`the role assignment must be scoped to the ACS resource, got scope ${JSON.stringify(evaluated['scope'])}`);
  }
  if (properties['principalId'] !== FAKE.principalId) problems.push("the role assignment must name the web app's system-assigned identity");
  if (properties['principalType'] !== 'ServicePrincipal') problems.push('principalType must be ServicePrincipal');
  const roleIds = ACS_ROLE_DEFINITION_IDS.map((id) => `/subscriptions/${FAKE.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${id}`);
  if (!roleIds.includes(String(properties['roleDefinitionId']))) problems.push(`unexpected roleDefinitionId ${JSON.stringify(properties['roleDefinitionId'])}`);
  return problems;
}

export function outputProblems(simulation: Simulation): string[] {
  const problems: string[] = [];
  const { siteUrl, principalId } = simulation.outputs;
  if (typeof siteUrl !== 'string' || !siteUrl.startsWith('https://')) problems.push('output siteUrl must be the https URL of the web app');
  if (principalId !== FAKE.principalId) problems.push("output principalId must be the web app's managed identity");
  for (const [name, value] of Object.entries(simulation.outputs)) {
    if (containsSecret(value)) problems.push(`output ${name} exposes a secret (outputs are readable in the deployment history)`);
  }
  return problems;
}

/** Everything about one simulated deployment. */
export function deploymentProblems(template: ArmTemplate, parameters: Readonly<Record<string, unknown>>, expected: ScenarioExpectation): string[] {
  const simulation = simulateDeployment(template, parameters);
  return [
    ...simulation.problems,
    ...siteProblems(simulation),
    ...appSettingProblems(simulation, expected),
    ...roleAssignmentProblems(simulation, expected),
    ...outputProblems(simulation),
  ];
}

// ---------------------------------------------------------------------------------------------------
// The example parameters file

const SECRET_LOOKING = /accesskey=|password|secret|-----BEGIN/i;

export function parametersFileProblems(template: ArmTemplate, file: ArmParametersFile): string[] {
  const problems: string[] = [];
  if (file.$schema !== DEPLOYMENT_PARAMETERS_SCHEMA) problems.push(`$schema must be ${DEPLOYMENT_PARAMETERS_SCHEMA}`);
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(file.contentVersion ?? '')) problems.push('contentVersion must look like 1.0.0.0');
  for (const [name, entry] of Object.entries(file.parameters ?? {})) {
    const definition = template.parameters[name];
    if (!definition) {
      problems.push(`parameters file names '${name}', which the template does not declare`);
      continue;
    }
    if (isSecureType(definition.type)) {
      problems.push(`parameters file must not hold the secure parameter '${name}'; pass it on the command line or let the CLI prompt`);
      continue;
    }
    const value = entry.value;
    if (typeof value === 'string' && SECRET_LOOKING.test(value)) problems.push(`parameters file value of '${name}' looks like a secret`);
    const placeholder = typeof value === 'string' && /^<[^<>]+>$/.test(value);
    if (!placeholder) problems.push(...checkParameterValue(name, definition, value));
  }
  for (const [name, definition] of Object.entries(template.parameters)) {
    if (definition.defaultValue === undefined && !isSecureType(definition.type) && !Object.hasOwn(file.parameters ?? {}, name)) {
      problems.push(`parameters file must show the required parameter '${name}'`);
    }
  }
  return problems;
}
