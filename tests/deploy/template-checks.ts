/**
 * Checks of deploy/azuredeploy.json and its parameters file, written as functions that return a list of
 * problems (empty = fine) so the test suite can also prove each check fires on a broken copy.
 *
 * `simulateDeployment` plays the deployment offline: it resolves parameters (defaults, allowed values,
 * lengths), evaluates every expression in every resource and output with fake deployment-time values,
 * and refuses what ARM would refuse at deployment time: `reference()`/`listKeys()` of a resource that this
 * deployment does not create, or with an API version outside the allow-list, and a resource that reads another of
 * the template's resources without listing it in dependsOn. A nested deployment with
 * inner scope is played as ARM plays it: its parameters are evaluated in the outer template, its own
 * template with only those parameters, and its resources count as the deployment's.
 */
import { createHash } from 'node:crypto';

import {
  ConfigError,
  GRAPH_STORE_SETTING_NAMES,
  LEGACY_ALIASES,
  SECRET_SETTING_NAMES,
  SETTING_NAMES,
  loadConfig,
} from '../../src/config/config';
import {
  ArmExpressionError,
  SecretValue,
  callsIn,
  evaluateDeep,
  expressionsIn,
  isArmArray,
  isArmObject,
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
  // The same schema file: sites_config, whose `<site>/logs` form takes SiteLogsConfigProperties.
  'Microsoft.Web/sites/config': ['2024-04-01'],
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
  // schemas/2022-09-01/Microsoft.Resources.json (deployments, with expressionEvaluationOptions.scope)
  'Microsoft.Resources/deployments': ['2022-09-01'],
  // schemas/2023-05-01/Microsoft.Storage.json (storageAccounts with allowSharedKeyAccess, defaultToOAuthAuthentication,
  // allowCrossTenantReplication; storageAccounts_tableServices_tables); learn.microsoft.com/azure/templates/microsoft.storage/storageaccounts
  'Microsoft.Storage/storageAccounts': ['2023-05-01'],
  'Microsoft.Storage/storageAccounts/tableServices/tables': ['2023-05-01'],
};

/**
 * Built-in roles the template may give the web app on the ACS resource: Communication and Email Service
 * Owner (Microsoft.Communication actions only) and Contributor (what Microsoft's ACS Entra ID quickstart uses).
 */
export const ACS_ROLE_DEFINITION_IDS: readonly string[] = ['09976791-48a7-449e-bb21-39d1a415f350', 'b24988ac-6180-42a0-ab88-20f7382dd24c'];

/**
 * Storage Table Data Contributor: read, write and delete tables and entities, and nothing else (no keys, no
 * account management). The built-in role's id as its role definition names it (learn.microsoft.com
 * /azure/role-based-access-control/built-in-roles/storage; AzAdvertizer's copy of the definition, created 2021-06-15).
 */
export const STORAGE_TABLE_DATA_CONTRIBUTOR_ROLE_ID = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3';

/**
 * The mapping store's storage account, exactly: reachable with Entra ID only (no account key, no SAS), over HTTPS
 * with TLS 1.2, with no anonymous blob access and no replication to another tenant. A property the checks do not
 * know is a finding too, so a loosening (say publicNetworkAccess or networkAcls) gets reviewed before it ships.
 */
export const STORAGE_ACCOUNT_PROPERTIES: Readonly<Record<string, boolean | string>> = {
  supportsHttpsTrafficOnly: true,
  minimumTlsVersion: 'TLS1_2',
  allowSharedKeyAccess: false,
  defaultToOAuthAuthentication: true,
  allowBlobPublicAccess: false,
  allowCrossTenantReplication: false,
};

/** App settings read by App Service itself or its agents, not by the service. */
/** Read by App Service or an Azure SDK, not by the service's config (AZURE_TOKEN_CREDENTIALS: @azure/identity's DefaultAzureCredential). */
export const PLATFORM_SETTING = /^(WEBSITE_|SCM_|APPLICATIONINSIGHTS_|ApplicationInsightsAgent_|AZURE_TOKEN_CREDENTIALS$)/;

/** SKUs on which App Service cannot keep an app loaded (Free and Shared). */
export const SKUS_WITHOUT_ALWAYS_ON: readonly string[] = ['F1', 'D1'];

export const FAKE = {
  subscriptionId: '11111111-2222-4333-8444-555555555555',
  tenantId: '66666666-7777-4888-9999-aaaaaaaaaaaa',
  resourceGroup: 'rg-acs-auth',
  location: 'westeurope',
  principalId: 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff',
  /** The principal a recreated web app of the same name gets. */
  otherPrincipalId: 'cccccccc-dddd-4eee-8fff-000000000000',
  clientId: '12345678-90ab-4cde-8f01-234567890abc',
  clientSecret: 'fake-client-secret-used-only-by-tests',
  /** An ACS resource of an earlier deployment, in another resource group, as `existingAcsResourceId` names it. */
  existingAcsResourceId:
    '/subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/rg-hero-sample/providers/Microsoft.Communication/communicationServices/CommunicationServices-hero',
  /** A SHA-1 thumbprint in the lower case some tools print; App Service names the file in upper case. */
  certificateThumbprint: '0123456789abcdef0123456789abcdef01234567',
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

export interface SimulationOptions {
  /** The principal id `reference(..., 'full').identity` gives: a recreated app gets a new one. */
  readonly principalId?: string;
  /** Where the deployment runs (a nested deployment may name another resource group or subscription). */
  readonly subscriptionId?: string;
  readonly resourceGroup?: string;
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
  /** The resource group the resource is deployed in (or, for one outside the template, lives in). */
  readonly resourceGroupId: string;
  readonly deployed: boolean;
  readonly definition: ArmResourceDefinition;
  /** The resource with every expression evaluated; undefined when evaluation failed. */
  readonly evaluated: Readonly<Record<string, ArmValue>> | undefined;
}

export interface Simulation {
  readonly problems: string[];
  /** The principal id the web app's system-assigned identity has in this simulation. */
  readonly principalId: string;
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

function isOptional<T>(value: unknown, check: (value: unknown) => value is T): value is T | undefined {
  return value === undefined || check(value);
}
const isString = (value: unknown): value is string => typeof value === 'string';
const isNumber = (value: unknown): value is number => typeof value === 'number';
const isArray = (value: unknown): value is readonly unknown[] => Array.isArray(value);

function isParameterDefinition(value: unknown): value is ArmParameterDefinition {
  return (
    isRecord(value) &&
    isString(value['type']) &&
    isOptional(value['allowedValues'], isArray) &&
    isOptional(value['minLength'], isNumber) &&
    isOptional(value['maxLength'], isNumber) &&
    (value['metadata'] === undefined || (isRecord(value['metadata']) && isOptional(value['metadata']['description'], isString)))
  );
}

function isResourceDefinition(value: unknown): value is ArmResourceDefinition {
  return (
    isRecord(value) &&
    isString(value['type']) &&
    isString(value['apiVersion']) &&
    isString(value['name']) &&
    isOptional(value['scope'], isString)
  );
}

function isOutputDefinition(value: unknown): value is { readonly type: string; readonly value: unknown } {
  return isRecord(value) && isString(value['type']);
}

/**
 * Whether a parsed JSON value has the shape of a deployment template, as far as the checks rely on it (the
 * checks themselves judge the values); a broken shape is a broken test fixture, not a finding.
 */
export function isArmTemplate(value: unknown): value is ArmTemplate {
  if (!isRecord(value)) return false;
  const { $schema, contentVersion, parameters, variables, resources, outputs } = value;
  return (
    isString($schema) &&
    isString(contentVersion) &&
    isRecord(parameters) &&
    Object.values(parameters).every(isParameterDefinition) &&
    isOptional(variables, isRecord) &&
    isArray(resources) &&
    resources.every(isResourceDefinition) &&
    (outputs === undefined || (isRecord(outputs) && Object.values(outputs).every(isOutputDefinition)))
  );
}

/** Whether a parsed JSON value has the shape of a deployment parameters file. */
export function isArmParametersFile(value: unknown): value is ArmParametersFile {
  if (!isRecord(value)) return false;
  const { $schema, contentVersion, parameters } = value;
  return isString($schema) && isString(contentVersion) && isRecord(parameters) && Object.values(parameters).every(isRecord);
}

/** The single item of a list, or undefined when it has none or several. */
function theOnly<T>(items: readonly T[]): T | undefined {
  return items.length === 1 ? items[0] : undefined;
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
  if (types.length !== names.length)
    throw new ArmExpressionError(`resource type ${type} needs ${types.length} name segment(s), got ${names.length}`);
  return `${prefix}/providers/${namespace}/${types.map((segment, i) => `${segment}/${names[i]}`).join('/')}`;
}

/** A resource the template refers to by full id without deploying it (an existing resource), or undefined. */
function externalResource(id: string): SimulatedResource | undefined {
  const match = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/([^/]+)\/([^/]+)$/i.exec(id);
  if (!match) return undefined;
  const [, subscriptionId, resourceGroup, namespace, type, name] = match;
  if (!subscriptionId || !resourceGroup || !namespace || !type || !name) return undefined;
  const definition: ArmResourceDefinition = { type: `${namespace}/${type}`, apiVersion: '', name };
  return {
    type: definition.type,
    name,
    id,
    resourceGroupId: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`,
    deployed: true,
    definition,
    evaluated: undefined,
  };
}

/** A storage account's endpoint for one service, as its primaryEndpoints give it (public cloud, standard DNS). */
function storageEndpoint(account: string, service: string): string {
  return `https://${account}.${service}.core.windows.net/`;
}

/** What `reference()` gives for a resource after deployment (the properties the template may read). */
function runtimeState(resource: SimulatedResource, full: boolean, principalId: string): ArmValue {
  const { type, name, definition } = resource;
  let properties: Record<string, ArmValue> = {};
  if (type === 'Microsoft.Communication/communicationServices') {
    properties = { hostName: `${name}.unitedstates.communication.azure.com`, provisioningState: 'Succeeded' };
  } else if (type === 'Microsoft.Web/sites') {
    properties = { defaultHostName: `${name}.azurewebsites.net`, state: 'Running' };
  } else if (type === 'Microsoft.Storage/storageAccounts') {
    properties = {
      primaryEndpoints: Object.fromEntries(
        ['blob', 'queue', 'table', 'file', 'web', 'dfs'].map((service) => [service, storageEndpoint(name, service)]),
      ),
      provisioningState: 'Succeeded',
    };
  } else if (type === 'Microsoft.Insights/components') {
    properties = {
      ConnectionString: `InstrumentationKey=${hash([name]).slice(0, 8)}-0000-4000-8000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/`,
    };
  }
  if (!full) return properties;
  const identityType = isRecord(definition['identity']) ? definition['identity']['type'] : undefined;
  const identity: ArmValue =
    typeof identityType === 'string' && identityType.includes('SystemAssigned')
      ? { type: identityType, principalId, tenantId: FAKE.tenantId }
      : { type: 'None' };
  return { id: resource.id, name, type, properties, identity };
}

function listKeysOf(resource: SimulatedResource): ArmValue {
  const key = Buffer.from(hash([resource.id])).toString('base64');
  if (resource.type === 'Microsoft.Storage/storageAccounts') {
    // What listKeys() gives for a storage account (even one that refuses shared keys): two account keys.
    return {
      keys: ['key1', 'key2'].map((keyName, index) => ({
        keyName,
        value: new SecretValue(index === 0 ? key : key.split('').reverse().join(''), ['listKeys']),
        permissions: 'FULL',
      })),
    };
  }
  if (resource.type !== 'Microsoft.Communication/communicationServices') {
    throw new ArmExpressionError(`listKeys() of ${resource.type} is not modelled`);
  }
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
  const expected =
    type === 'bool' ? 'boolean' : type === 'int' ? 'number' : type === 'array' ? 'array' : type.includes('object') ? 'object' : 'string';
  const actual = Array.isArray(value) ? 'array' : typeof value;
  if (actual !== expected) problems.push(`parameter '${name}' must be a ${definition.type}, got ${JSON.stringify(value)}`);
  if (definition.allowedValues && !definition.allowedValues.some((allowed) => JSON.stringify(allowed) === JSON.stringify(value))) {
    problems.push(`parameter '${name}' value ${JSON.stringify(value)} is not one of its allowedValues`);
  }
  if (typeof value === 'string') {
    if (definition.minLength !== undefined && value.length < definition.minLength)
      problems.push(`parameter '${name}' is shorter than its minLength`);
    if (definition.maxLength !== undefined && value.length > definition.maxLength)
      problems.push(`parameter '${name}' is longer than its maxLength`);
  }
  return problems;
}

/** A nested deployment whose template is evaluated in its own scope (the only kind this template may use). */
function isInnerScopeDeployment(definition: ArmResourceDefinition): boolean {
  if (definition.type !== 'Microsoft.Resources/deployments' || !isRecord(definition['properties'])) return false;
  const options = definition['properties']['expressionEvaluationOptions'];
  return isRecord(options) && typeof options['scope'] === 'string' && options['scope'].toLowerCase() === 'inner';
}

/** The nested template of an inner-scope deployment, if it has one. */
function nestedTemplateOf(definition: ArmResourceDefinition): ArmTemplate | undefined {
  const properties = definition['properties'];
  const template = isInnerScopeDeployment(definition) && isRecord(properties) ? properties['template'] : undefined;
  return isArmTemplate(template) ? template : undefined;
}

/** The definition without its nested template: the part the outer scope evaluates. */
function withoutNestedTemplate(definition: ArmResourceDefinition): ArmResourceDefinition {
  const properties = definition['properties'];
  if (nestedTemplateOf(definition) === undefined || !isRecord(properties)) return definition;
  const { template: _template, ...outerProperties } = properties;
  return { ...definition, properties: outerProperties };
}

/** Plays a deployment of the template offline with the given parameter values. */
export function simulateDeployment(
  template: ArmTemplate,
  supplied: Readonly<Record<string, unknown>>,
  options: SimulationOptions = {},
): Simulation {
  const principalId = options.principalId ?? FAKE.principalId;
  const subscriptionId = options.subscriptionId ?? FAKE.subscriptionId;
  const resourceGroupName = options.resourceGroup ?? FAKE.resourceGroup;
  const resourceGroupId = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroupName}`;
  const problems: string[] = [];
  const referenceCalls: string[] = [];
  const listKeysCalls: string[] = [];
  const declared = template.parameters ?? {};
  const variableDefinitions = template.variables ?? {};

  for (const name of Object.keys(supplied)) {
    if (!Object.hasOwn(declared, name)) problems.push(`value supplied for undeclared parameter '${name}'`);
  }

  const deploymentFunctions: Record<string, ArmFunction> = {
    resourceGroup: () => ({ id: resourceGroupId, name: resourceGroupName, location: FAKE.location }),
    subscription: () => ({ id: `/subscriptions/${subscriptionId}`, subscriptionId, tenantId: FAKE.tenantId }),
    uniqueString: (args) =>
      BigInt(`0x${hash(args).slice(0, 16)}`)
        .toString(32)
        .padStart(13, 'a')
        .slice(0, 13),
    guid: (args) => {
      const digest = hash(args);
      return `${digest.slice(0, 8)}-${digest.slice(8, 12)}-${digest.slice(12, 16)}-${digest.slice(16, 20)}-${digest.slice(20, 32)}`;
    },
    resourceId: ([type, ...names]) =>
      resourceIdOf(
        resourceGroupId,
        text(type, 'resourceId() type'),
        names.map((n) => text(n, 'resourceId() name')),
      ),
    subscriptionResourceId: ([type, ...names]) =>
      resourceIdOf(
        `/subscriptions/${subscriptionId}`,
        text(type, 'subscriptionResourceId() type'),
        names.map((n) => text(n, 'name')),
      ),
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
    // A value handed down by an outer deployment may already carry a secret's taint.
    problems.push(...checkParameterValue(name, definition, value instanceof SecretValue ? value.text : value));
    parameterValues[name] =
      isSecureType(definition.type) && typeof value === 'string' ? new SecretValue(value, [`parameter:${name}`]) : (value as ArmValue);
  }

  const variableCache = new Map<string, ArmValue>();
  const evaluating = new Set<string>();
  const functions: Record<string, ArmFunction> = {
    ...deploymentFunctions,
    parameters: ([name]) => {
      const key = text(name, 'parameters() argument');
      if (!Object.hasOwn(parameterValues, key))
        throw new ArmExpressionError(`parameters('${key}') is not a declared parameter with a value`);
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
  const mutableResources: { -readonly [K in keyof SimulatedResource]: SimulatedResource[K] }[] = [];
  template.resources.forEach((definition, index) => {
    const where = `resources[${index}] (${definition.type})`;
    try {
      const name = text(evaluateDeep(definition.name, functions), 'name');
      const deployed = definition.condition === undefined ? true : evaluateDeep(definition.condition, functions);
      if (typeof deployed !== 'boolean') throw new ArmExpressionError('condition must be a bool');
      const id =
        definition.scope === undefined ? resourceIdOf(resourceGroupId, definition.type, name.split('/')) : `${definition.type}/${name}`;
      mutableResources.push({ type: definition.type, name, id, resourceGroupId, deployed, definition, evaluated: undefined });
    } catch (error) {
      problems.push(`${where}: ${(error as Error).message}`);
    }
  });

  // What the resource being evaluated reads with reference()/listKeys(): it must depend on those of this template.
  let readByCurrent: SimulatedResource[] = [];
  const resolveTarget = (target: ArmValue | undefined, fn: string): SimulatedResource => {
    const key = text(target, `${fn}() target`);
    // A full resource id may name an existing resource outside the template: ARM reads its state.
    const found =
      mutableResources.find((resource) => resource.id.toLowerCase() === key.toLowerCase() || resource.name === key) ??
      externalResource(key);
    if (!found) throw new ArmExpressionError(`${fn}('${key}') names no resource of this template and no existing resource by id`);
    if (!found.deployed) {
      throw new ArmExpressionError(
        `${fn}() of ${found.type} '${found.name}', which this deployment does not create (ARM evaluates it anyway: guard it with if())`,
      );
    }
    readByCurrent.push(found);
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
    return runtimeState(resource, typeof full === 'string' && full.toLowerCase() === 'full', principalId);
  };
  functions['listKeys'] = ([target, apiVersion]) => {
    const resource = resolveTarget(target, 'listKeys');
    if (apiVersion === undefined) throw new ArmExpressionError('listKeys() needs an API version');
    checkApiVersion(resource, apiVersion, 'listKeys');
    listKeysCalls.push(resource.id);
    return listKeysOf(resource);
  };

  // Every resource is evaluated, deployed or not: ARM resolves reference()/list*() in all of them.
  const nestedResources: SimulatedResource[] = [];
  mutableResources.forEach((resource) => {
    readByCurrent = [];
    try {
      const { condition: _condition, ...body } = withoutNestedTemplate(resource.definition);
      const evaluated = evaluateDeep(body, functions);
      if (!isArmObject(evaluated)) throw new ArmExpressionError('a resource must evaluate to an object');
      resource.evaluated = evaluated;
      // ARM orders deployments by dependsOn alone when reference() names a resource by id.
      const dependsOn = isArmArray(evaluated['dependsOn']) ? evaluated['dependsOn'] : [];
      for (const read of new Set(readByCurrent)) {
        const ours = mutableResources.includes(read) && read !== resource;
        if (ours && !dependsOn.some((id) => typeof id === 'string' && id.toLowerCase() === read.id.toLowerCase())) {
          problems.push(`${resource.type} '${resource.name}' reads ${read.type} '${read.name}' but does not list it in dependsOn`);
        }
      }
    } catch (error) {
      problems.push(`${resource.type} '${resource.name}': ${(error as Error).message}`);
    }
    resources.push(resource);
    const nested = nestedTemplateOf(resource.definition);
    if (nested === undefined || resource.evaluated === undefined || !resource.deployed) return;
    const properties = isRecord(resource.evaluated['properties']) ? resource.evaluated['properties'] : {};
    const handed = isRecord(properties['parameters']) ? properties['parameters'] : {};
    const values = Object.fromEntries(Object.entries(handed).map(([name, entry]) => [name, isRecord(entry) ? entry['value'] : undefined]));
    // A nested deployment may run in another resource group or subscription (top-level properties of the resource).
    const target = {
      subscriptionId: typeof resource.evaluated['subscriptionId'] === 'string' ? resource.evaluated['subscriptionId'] : subscriptionId,
      resourceGroup: typeof resource.evaluated['resourceGroup'] === 'string' ? resource.evaluated['resourceGroup'] : resourceGroupName,
    };
    const inner = simulateDeployment(nested, values, { ...options, ...target });
    problems.push(...inner.problems.map((problem) => `nested deployment '${resource.name}': ${problem}`));
    referenceCalls.push(...inner.referenceCalls);
    listKeysCalls.push(...inner.listKeysCalls);
    nestedResources.push(...inner.resources);
  });
  resources.push(...nestedResources);

  const outputs: Record<string, ArmValue> = {};
  for (const [name, output] of Object.entries(template.outputs ?? {})) {
    try {
      outputs[name] = evaluateDeep(output.value, functions);
    } catch (error) {
      problems.push(`output '${name}': ${(error as Error).message}`);
    }
  }

  return { problems, principalId, parameters: parameterValues, resources, outputs, referenceCalls, listKeysCalls };
}

export type EntraCredential = 'secret' | 'certificate';

export type MappingStore = 'graph' | 'table';

/**
 * Parameter values a first-time user of the Graph store (the default) supplies: the API's client id, the seal
 * keys and one Entra credential (a client secret, or the thumbprint of a certificate loaded into the app), plus
 * the scenario's choices.
 */
export function scenarioParameters(
  overrides: Readonly<Record<string, unknown>> = {},
  credential: EntraCredential = 'secret',
): Record<string, unknown> {
  const entra =
    credential === 'secret' ? { entraClientSecret: FAKE.clientSecret } : { entraClientCertificateThumbprint: FAKE.certificateThumbprint };
  return { entraClientId: FAKE.clientId, mappingSealKeys: FAKE.mappingSealKeys, ...entra, ...overrides };
}

/** Parameter values a first-time user of the table store supplies: the API's client id, and nothing secret. */
export function tableScenarioParameters(overrides: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  return { entraClientId: FAKE.clientId, mappingStore: 'table', ...overrides };
}

// ---------------------------------------------------------------------------------------------------
// Static checks

/** parameters('x') and variables('y') references, with where they occur. */
function references(
  value: unknown,
  fn: 'parameters' | 'variables',
  path: string,
): { readonly name: string | undefined; readonly path: string }[] {
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

  // A nested template with inner scope has parameters and variables of its own: it is checked on its own,
  // and the outer checks see only what the outer scope evaluates.
  const ownResources = (template.resources ?? []).map(withoutNestedTemplate);
  (template.resources ?? []).forEach((resource, index) => {
    if (resource.type !== 'Microsoft.Resources/deployments') return;
    const nested = nestedTemplateOf(resource);
    if (nested === undefined) {
      problems.push(
        `resources[${index}]: a nested deployment must hold its template (properties.template, template-shaped) and evaluate it in its own scope (expressionEvaluationOptions.scope 'inner')`,
      );
      return;
    }
    problems.push(...staticTemplateProblems(nested).map((problem) => `resources[${index}] (nested template): ${problem}`));
  });
  const own: ArmTemplate = { ...template, resources: ownResources };

  const parameters = template.parameters ?? {};
  const variables = template.variables ?? {};
  const body = { resources: own.resources, outputs: template.outputs };

  let allRefs: { name: string | undefined; path: string; fn: string }[] = [];
  try {
    allRefs = [
      ...references(own, 'parameters', '$').map((ref) => ({ ...ref, fn: 'parameters' })),
      ...references(own, 'variables', '$').map((ref) => ({ ...ref, fn: 'variables' })),
    ];
  } catch (error) {
    problems.push(`an expression does not parse: ${(error as Error).message}`);
  }
  for (const ref of allRefs) {
    const pool = ref.fn === 'parameters' ? parameters : variables;
    if (ref.name === undefined) problems.push(`${ref.fn}() at ${ref.path} must take one string literal`);
    else if (!Object.hasOwn(pool, ref.name))
      problems.push(`${ref.fn}('${ref.name}') at ${ref.path} names an undeclared ${ref.fn === 'parameters' ? 'parameter' : 'variable'}`);
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

  // An optional secret may default to nothing (''), never to a value.
  for (const [name, definition] of Object.entries(parameters)) {
    if (isSecureType(definition.type) && definition.defaultValue !== undefined && definition.defaultValue !== '') {
      problems.push(`secure parameter '${name}' must not have a defaultValue other than ''`);
    }
  }

  template.resources?.forEach((resource, index) => {
    const known = KNOWN_API_VERSIONS[resource.type];
    if (!known) problems.push(`resources[${index}]: type ${resource.type} has no entry in the API version allow-list`);
    else if (!known.includes(resource.apiVersion))
      problems.push(`resources[${index}]: ${resource.type}@${resource.apiVersion} is not in the API version allow-list`);
  });
  return problems;
}

// ---------------------------------------------------------------------------------------------------
// Checks of one simulated deployment

export interface ScenarioExpectation {
  readonly acsAuthMode: string;
  readonly enableApplicationInsights: boolean;
  /** The mapping store the parameters chose; the Graph store when not said. */
  readonly mappingStore?: MappingStore;
  /** The Entra credential the parameters chose (Graph store only); a client secret when not said. */
  readonly credential?: EntraCredential;
}

function deployedOfType(simulation: Simulation, type: string): SimulatedResource[] {
  return simulation.resources.filter((resource) => resource.type === type && resource.deployed);
}

function containsSecret(value: ArmValue): boolean {
  if (value instanceof SecretValue) return true;
  if (isArmArray(value)) return value.some(containsSecret);
  if (isArmObject(value)) return Object.values(value).some(containsSecret);
  return false;
}

/** App settings of the deployed web app, by name (values keep their secret taint). */
export function appSettingsOf(simulation: Simulation): Map<string, ArmValue> {
  const site = deployedOfType(simulation, 'Microsoft.Web/sites')[0];
  const properties = site?.evaluated?.['properties'];
  const siteConfig = isRecord(properties) ? properties['siteConfig'] : undefined;
  const list = isRecord(siteConfig) ? siteConfig['appSettings'] : undefined;
  const settings = new Map<string, ArmValue>();
  if (!isArmArray(list)) return settings;
  for (const entry of list) {
    if (isArmObject(entry) && typeof entry['name'] === 'string') settings.set(entry['name'], entry['value'] ?? null);
  }
  return settings;
}

export function siteProblems(simulation: Simulation): string[] {
  const problems: string[] = [];
  const sites = deployedOfType(simulation, 'Microsoft.Web/sites');
  const site = theOnly(sites);
  if (!site) return [`expected exactly one deployed Microsoft.Web/sites, found ${sites.length}`];
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
  expect('siteConfig.alwaysOn', config['alwaysOn'], !(typeof sku === 'string' && SKUS_WITHOUT_ALWAYS_ON.includes(sku)));
  expect('identity.type', identity['type'], 'SystemAssigned');

  // App Service's own CORS answers preflights before the app sees them and keeps its list when the app's
  // CORS_ALLOWED_ORIGINS changes (the original sample set ["*"] there): CORS belongs to the app alone.
  const configs = deployedOfType(simulation, 'Microsoft.Web/sites/config');
  if (config['cors'] !== undefined) problems.push('siteConfig.cors must not be set: platform CORS overrides CORS_ALLOWED_ORIGINS');
  for (const resource of configs.filter((entry) => entry.name.endsWith('/web'))) {
    const webProperties = resource.evaluated?.['properties'];
    if (isRecord(webProperties) && webProperties['cors'] !== undefined) {
      problems.push(`${resource.name}: platform CORS (properties.cors) must not be set: it overrides CORS_ALLOWED_ORIGINS`);
    }
  }

  // On Linux, `az webapp log tail` and the portal's Log stream show the container's output only when it is kept.
  const logs = configs.find((entry) => entry.name === `${site.name}/logs`);
  const logProperties = isRecord(logs?.evaluated?.['properties']) ? logs.evaluated['properties'] : {};
  const httpLogs = isRecord(logProperties['httpLogs']) ? logProperties['httpLogs'] : {};
  const fileSystem = isRecord(httpLogs['fileSystem']) ? httpLogs['fileSystem'] : {};
  if (fileSystem['enabled'] !== true) {
    problems.push(`container logging must be on: a Microsoft.Web/sites/config '${site.name}/logs' with httpLogs.fileSystem.enabled true`);
  } else {
    const quota = fileSystem['retentionInMb'];
    if (typeof quota !== 'number' || quota < 25 || quota > 100)
      problems.push('httpLogs.fileSystem.retentionInMb must be 25..100 (the API refuses other values)');
  }

  const plans = deployedOfType(simulation, 'Microsoft.Web/serverfarms');
  const plan = plans[0]?.evaluated;
  if (plans.length !== 1 || !plan) problems.push('expected exactly one App Service plan');
  else {
    expect('plan kind', plan['kind'], 'linux');
    expect('plan properties.reserved (Linux)', isRecord(plan['properties']) ? plan['properties']['reserved'] : undefined, true);
    expect('plan sku.name', isRecord(plan['sku']) ? plan['sku']['name'] : undefined, sku);
    if (properties['serverFarmId'] !== plans[0]?.id) problems.push("the web app must run on the template's App Service plan");
  }
  return problems;
}

export function appSettingProblems(simulation: Simulation, expected: ScenarioExpectation): string[] {
  const problems: string[] = [];
  const settings = appSettingsOf(simulation);
  const site = deployedOfType(simulation, 'Microsoft.Web/sites')[0];
  const properties = isRecord(site?.evaluated?.['properties']) ? site.evaluated['properties'] : {};
  const config = isRecord(properties['siteConfig']) ? properties['siteConfig'] : {};
  const raw = isArmArray(config['appSettings']) ? config['appSettings'] : [];
  if (raw.length !== settings.size) problems.push('app setting names must be strings and unique');

  const serviceNames = new Set<string>(SETTING_NAMES);
  const aliases = new Set(Object.values(LEGACY_ALIASES).flat());
  for (const name of settings.keys()) {
    if (aliases.has(name)) problems.push(`app setting ${name} is a deprecated alias; use its new name`);
    // AZURE_TOKEN_CREDENTIALS only narrows DefaultAzureCredential's chain (to the managed identity); every other
    // AZURE_* setting would hand it a credential of its own (a client secret, a certificate) outside the config.
    else if (name.startsWith('AZURE_') && name !== 'AZURE_TOKEN_CREDENTIALS')
      problems.push(`app setting ${name} is read by DefaultAzureCredential, not by this service's config`);
    else if (!serviceNames.has(name) && !PLATFORM_SETTING.test(name))
      problems.push(`app setting ${name} is neither read by the service (SETTING_NAMES) nor a platform setting`);
  }

  if (settings.has('')) problems.push('an app setting has an empty name (App Service refuses it)');

  const valueOf = (name: string): string | undefined => {
    const value = settings.get(name);
    if (value === undefined) return undefined;
    return value instanceof SecretValue ? value.text : typeof value === 'string' ? value : JSON.stringify(value);
  };
  for (const name of ['ENTRA_TENANT_ID', 'ENTRA_CLIENT_ID']) {
    if (!valueOf(name)) problems.push(`required app setting ${name} is missing or empty`);
  }
  const store = expected.mappingStore ?? 'graph';
  if (valueOf('MAPPING_STORE') !== store)
    problems.push(`app setting MAPPING_STORE must be ${JSON.stringify(store)}, got ${JSON.stringify(valueOf('MAPPING_STORE'))}`);
  problems.push(
    ...(store === 'graph'
      ? graphStoreSettingProblems(simulation, settings, valueOf, expected)
      : tableStoreSettingProblems(simulation, settings, valueOf, expected)),
  );

  const [wanted, unwanted] =
    expected.acsAuthMode === 'managedIdentity' ? ['ACS_ENDPOINT', 'ACS_CONNECTION_STRING'] : ['ACS_CONNECTION_STRING', 'ACS_ENDPOINT'];
  if (!valueOf(wanted)) problems.push(`${expected.acsAuthMode} mode must set ${wanted}`);
  if (settings.has(unwanted)) problems.push(`${expected.acsAuthMode} mode must not set ${unwanted}`);
  if (expected.acsAuthMode === 'managedIdentity' && simulation.listKeysCalls.length > 0) {
    problems.push('managedIdentity mode must not read the ACS keys (listKeys() was evaluated)');
  }
  // The service must reach the intended resource: the seals name it, and its identities live there.
  const acs = intendedAcs(simulation);
  const acsValue = valueOf(wanted) ?? '';
  if (typeof acs === 'string') problems.push(acs);
  else if (!new RegExp(`(^|endpoint=)https://${acs.name}\\.`).test(acsValue))
    problems.push(`${wanted} must point at the Communication Services resource ${acs.name}`);

  const secureParameters = new Set(Object.keys(simulation.parameters).filter((name) => simulation.parameters[name] instanceof SecretValue));
  for (const [name, value] of settings) {
    const secret = SECRET_SETTING_NAMES.includes(name);
    if (secret) {
      const fromSecretSource =
        value instanceof SecretValue &&
        value.origins.every(
          (origin) => origin === 'listKeys' || (origin.startsWith('parameter:') && secureParameters.has(origin.slice('parameter:'.length))),
        );
      if (!fromSecretSource) problems.push(`secret app setting ${name} must come only from a securestring parameter or listKeys()`);
      else if (value.text === '') problems.push(`secret app setting ${name} is written empty: leave it out`);
    } else if (containsSecret(value)) {
      problems.push(`app setting ${name} is not a secret setting but its value derives from a secret`);
    }
  }

  const expectSetting = (name: string, value: string): void => {
    if (valueOf(name) !== value)
      problems.push(`app setting ${name} must be ${JSON.stringify(value)}, got ${JSON.stringify(valueOf(name))}`);
  };
  expectSetting('NODE_ENV', 'production');
  expectSetting('TRUST_PROXY', '1');
  expectSetting('WEBSITE_RUN_FROM_PACKAGE', '1');
  expectSetting('SCM_DO_BUILD_DURING_DEPLOYMENT', 'false');
  // DefaultAzureCredential tries the managed identity only: a missing identity fails at once and plainly, instead of
  // falling through to developer credentials (Azure CLI, VS Code) that an App Service never has.
  expectSetting('AZURE_TOKEN_CREDENTIALS', 'ManagedIdentityCredential');
  if (expected.enableApplicationInsights) {
    if (!valueOf('APPLICATIONINSIGHTS_CONNECTION_STRING'))
      problems.push('Application Insights is enabled but APPLICATIONINSIGHTS_CONNECTION_STRING is empty');
    expectSetting('ApplicationInsightsAgent_EXTENSION_VERSION', '~3');
  } else {
    if (valueOf('APPLICATIONINSIGHTS_CONNECTION_STRING'))
      problems.push('Application Insights is disabled but APPLICATIONINSIGHTS_CONNECTION_STRING is set');
    if (valueOf('ApplicationInsightsAgent_EXTENSION_VERSION'))
      problems.push('Application Insights is disabled but its agent is switched on');
  }

  // The service's own parser has the last word: it must start, in the expected mode, using every setting.
  const env = Object.fromEntries([...settings.keys()].map((name) => [name, valueOf(name)]));
  try {
    const config = loadConfig(env);
    if (config.environment !== 'production') problems.push('the service would not run as production');
    if (config.server.trustProxy !== 1) problems.push('the service must trust exactly one proxy hop (App Service front end)');
    if (config.acs.auth.kind !== expected.acsAuthMode)
      problems.push(`the service would use ACS ${config.acs.auth.kind}, not ${expected.acsAuthMode}`);
    if (config.entra.clientId !== simulation.parameters['entraClientId'])
      problems.push('ENTRA_CLIENT_ID does not carry the entraClientId parameter');
    const mappings = config.mappings;
    if (mappings.store !== store)
      problems.push(`the service would keep the mappings in the ${mappings.store} store, not the ${store} store`);
    else if (mappings.store === 'graph' && mappings.graph.credential.kind !== (expected.credential ?? 'secret'))
      problems.push(`the service would use a ${mappings.graph.credential.kind}, not a ${expected.credential ?? 'secret'}`);
    else if (mappings.store === 'table') {
      if (mappings.table.auth.kind !== 'managedIdentity')
        problems.push(`the service would reach the table with a ${mappings.table.auth.kind}, not its managed identity`);
      if (mappings.table.tableName !== simulation.parameters['mappingTableName'])
        problems.push('MAPPING_TABLE_NAME does not carry the mappingTableName parameter');
    }
    if (config.unusedSettings.length > 0)
      problems.push(`the service would warn that ${config.unusedSettings.join(', ')} are set but unused by the ${store} store`);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems.map((problem) => `loadConfig: ${problem}`));
  }
  return problems;
}

/** Settings of the Graph store: the seal keys and exactly one Entra credential, and nothing of the table store. */
function graphStoreSettingProblems(
  simulation: Simulation,
  settings: ReadonlyMap<string, ArmValue>,
  valueOf: (name: string) => string | undefined,
  expected: ScenarioExpectation,
): string[] {
  const problems: string[] = [];
  if (!valueOf('MAPPING_SEAL_KEYS')) problems.push('required app setting MAPPING_SEAL_KEYS is missing or empty');
  for (const name of ['MAPPING_TABLE_ENDPOINT', 'MAPPING_TABLE_CONNECTION_STRING', 'MAPPING_TABLE_NAME']) {
    if (settings.has(name)) problems.push(`graph mode must not write ${name}`);
  }
  // Exactly one Entra credential. With the certificate, App Service loads it (WEBSITE_LOAD_CERTIFICATES) and
  // writes /var/ssl/private/<THUMBPRINT>.p12, which the service reads; no secret is written at all.
  if ((expected.credential ?? 'secret') === 'secret') {
    if (!valueOf('ENTRA_CLIENT_SECRET')) problems.push('secret mode must set ENTRA_CLIENT_SECRET');
    if (settings.has('ENTRA_CLIENT_CERTIFICATE_PATH')) problems.push('secret mode must not set ENTRA_CLIENT_CERTIFICATE_PATH');
    if (valueOf('WEBSITE_LOAD_CERTIFICATES')) problems.push('secret mode must not load certificates (WEBSITE_LOAD_CERTIFICATES)');
  } else {
    const thumbprintParameter = simulation.parameters['entraClientCertificateThumbprint'];
    const thumbprint = (typeof thumbprintParameter === 'string' ? thumbprintParameter : '').toUpperCase();
    if (settings.has('ENTRA_CLIENT_SECRET')) problems.push('certificate mode must not write ENTRA_CLIENT_SECRET');
    if (valueOf('WEBSITE_LOAD_CERTIFICATES') !== thumbprint) {
      problems.push(
        `certificate mode must load exactly the certificate (WEBSITE_LOAD_CERTIFICATES=${thumbprint}), got ${JSON.stringify(valueOf('WEBSITE_LOAD_CERTIFICATES'))}`,
      );
    }
    if (valueOf('ENTRA_CLIENT_CERTIFICATE_PATH') !== `/var/ssl/private/${thumbprint}.p12`) {
      problems.push(
        `certificate mode must point ENTRA_CLIENT_CERTIFICATE_PATH at /var/ssl/private/${thumbprint}.p12, got ${JSON.stringify(valueOf('ENTRA_CLIENT_CERTIFICATE_PATH'))}`,
      );
    }
  }
  return problems;
}

/**
 * Settings of the table store: its endpoint and name, for the account and table the template creates, and
 * nothing of the Graph store. This is where "a deployment in table mode has no secret among its app settings"
 * is checked: no setting named in SECRET_SETTING_NAMES, no value derived from a securestring parameter or a
 * listKeys() call (the evaluator taints both), and no listKeys() at all; only ACS_CONNECTION_STRING when the
 * deployment asked for it with acsAuthMode connectionString. (Any other list*() function is not modelled, so a
 * template calling one fails the simulation outright.) APPLICATIONINSIGHTS_CONNECTION_STRING is not a secret: it
 * carries the instrumentation key, which Microsoft documents as not a secret (it only lets telemetry be sent).
 */
function tableStoreSettingProblems(
  simulation: Simulation,
  settings: ReadonlyMap<string, ArmValue>,
  valueOf: (name: string) => string | undefined,
  expected: ScenarioExpectation,
): string[] {
  const problems: string[] = [];
  for (const name of [...GRAPH_STORE_SETTING_NAMES, 'WEBSITE_LOAD_CERTIFICATES', 'MAPPING_TABLE_CONNECTION_STRING']) {
    if (settings.has(name)) problems.push(`table mode must not write ${name}`);
  }
  const allowedSecrets = expected.acsAuthMode === 'connectionString' ? ['ACS_CONNECTION_STRING'] : [];
  for (const [name, value] of settings) {
    if (allowedSecrets.includes(name)) continue;
    if (SECRET_SETTING_NAMES.includes(name)) problems.push(`table mode must write no secret setting, but writes ${name}`);
    else if (value instanceof SecretValue)
      problems.push(`table mode must write no secret, but ${name} derives from ${value.origins.join(', ')}`);
  }
  if (expected.acsAuthMode === 'managedIdentity' && simulation.listKeysCalls.length > 0)
    problems.push(
      `table mode with a managed identity must read no keys, but listKeys() of ${simulation.listKeysCalls.join(', ')} was evaluated`,
    );

  const table = intendedTable(simulation);
  if (typeof table === 'string') return [...problems, table];
  const endpoint = storageEndpoint(table.account.name, 'table').replace(/\/$/, '');
  if ((valueOf('MAPPING_TABLE_ENDPOINT') ?? '').replace(/\/$/, '') !== endpoint)
    problems.push(
      `MAPPING_TABLE_ENDPOINT must be ${endpoint}, the storage account's, got ${JSON.stringify(valueOf('MAPPING_TABLE_ENDPOINT'))}`,
    );
  if (valueOf('MAPPING_TABLE_NAME') !== table.tableName)
    problems.push(
      `MAPPING_TABLE_NAME must name the table the template creates, ${table.tableName}, got ${JSON.stringify(valueOf('MAPPING_TABLE_NAME'))}`,
    );
  return problems;
}

/** The storage account and table of the table store (the template must create exactly one of each), or what is wrong. */
export function intendedTable(simulation: Simulation): { readonly account: SimulatedResource; readonly tableName: string } | string {
  const accounts = deployedOfType(simulation, 'Microsoft.Storage/storageAccounts');
  const account = theOnly(accounts);
  if (!account) return `mappingStore table needs exactly one storage account, found ${accounts.length}`;
  const tables = deployedOfType(simulation, 'Microsoft.Storage/storageAccounts/tableServices/tables');
  const table = theOnly(tables);
  if (!table) return `mappingStore table needs exactly one table, found ${tables.length}`;
  const [accountName, service, tableName] = table.name.split('/');
  if (accountName !== account.name || service !== 'default' || tableName === undefined)
    return `the table ${table.name} must be <account>/default/<name> in the storage account ${account.name}`;
  return { account, tableName };
}

/**
 * The Communication Services resource the app must use: the one the template creates, or the existing one
 * `existingAcsResourceId` names (then the template must create none).
 */
export function intendedAcs(simulation: Simulation): { readonly name: string; readonly resourceGroupId: string } | string {
  const created = deployedOfType(simulation, 'Microsoft.Communication/communicationServices');
  const existingId = simulation.parameters['existingAcsResourceId'];
  if (typeof existingId === 'string' && existingId !== '') {
    if (created.length > 0) return 'with existingAcsResourceId the template must not create a Communication Services resource';
    const existing = externalResource(existingId);
    return existing ?? `existingAcsResourceId ${JSON.stringify(existingId)} is not a resource id`;
  }
  return theOnly(created) ?? `expected one new Communication Services resource, found ${created.length}`;
}

const ACS_SCOPE = 'Microsoft.Communication/communicationServices/';
const STORAGE_SCOPE = 'Microsoft.Storage/storageAccounts/';

function roleDefinitionIdOf(id: string): string {
  return `/subscriptions/${FAKE.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${id}`;
}

/**
 * The app's role assignments: on the ACS resource (managedIdentity mode) and on the mappings' storage account
 * (mappingStore table), nowhere else. An assignment counts as the table store's when its scope is a storage
 * account, or when it has no such scope but gives the table role; every other one is judged as the ACS one.
 */
export function roleAssignmentProblems(simulation: Simulation, expected: ScenarioExpectation): string[] {
  const assignments = deployedOfType(simulation, 'Microsoft.Authorization/roleAssignments');
  const isTableStore = (assignment: SimulatedResource): boolean => {
    const scope = assignment.evaluated?.['scope'];
    const properties = assignment.evaluated?.['properties'];
    if (typeof scope === 'string' && scope.startsWith(STORAGE_SCOPE)) return true;
    if (typeof scope === 'string' && scope.startsWith(ACS_SCOPE)) return false;
    return isArmObject(properties) && properties['roleDefinitionId'] === roleDefinitionIdOf(STORAGE_TABLE_DATA_CONTRIBUTOR_ROLE_ID);
  };
  return [
    ...acsRoleAssignmentProblems(
      simulation,
      expected,
      assignments.filter((assignment) => !isTableStore(assignment)),
    ),
    ...tableRoleAssignmentProblems(
      simulation,
      expected,
      assignments.filter((assignment) => isTableStore(assignment)),
    ),
  ];
}

/** Who the assignment gives the role to, and how it names the role; the same for both assignments. */
function assigneeProblems(simulation: Simulation, assignment: SimulatedResource, what: string, roleIds: readonly string[]): string[] {
  const problems: string[] = [];
  const evaluated = assignment.evaluated ?? {};
  const properties = isRecord(evaluated['properties']) ? evaluated['properties'] : {};
  if (properties['principalId'] !== simulation.principalId)
    problems.push(`the ${what} role assignment must name the web app's system-assigned identity`);
  if (properties['principalType'] !== 'ServicePrincipal')
    problems.push(`the ${what} role assignment's principalType must be ServicePrincipal`);
  const roleDefinitionId = properties['roleDefinitionId'];
  if (typeof roleDefinitionId !== 'string' || !roleIds.map(roleDefinitionIdOf).includes(roleDefinitionId))
    problems.push(`unexpected roleDefinitionId ${JSON.stringify(roleDefinitionId)} for the ${what} role assignment`);
  return problems;
}

function acsRoleAssignmentProblems(
  simulation: Simulation,
  expected: ScenarioExpectation,
  assignments: readonly SimulatedResource[],
): string[] {
  if (expected.acsAuthMode !== 'managedIdentity') {
    return assignments.length === 0 ? [] : ['connectionString mode must not grant the app a role on the ACS resource'];
  }
  const assignment = theOnly(assignments);
  if (!assignment) return [`managedIdentity mode needs exactly one role assignment on the ACS resource, found ${assignments.length}`];
  const acs = intendedAcs(simulation);
  if (typeof acs === 'string') return [acs];
  const problems: string[] = [];
  const scope = assignment.evaluated?.['scope'];
  // A resource-relative scope names a resource of the group the assignment is deployed in.
  if (scope !== `${ACS_SCOPE}${acs.name}` || assignment.resourceGroupId !== acs.resourceGroupId) {
    problems.push(
      `the role assignment must be scoped to the ACS resource ${acs.resourceGroupId}/…/${acs.name}, got scope ${JSON.stringify(scope)} in ${assignment.resourceGroupId}`,
    );
  }
  return [...problems, ...assigneeProblems(simulation, assignment, 'ACS', ACS_ROLE_DEFINITION_IDS)];
}

function tableRoleAssignmentProblems(
  simulation: Simulation,
  expected: ScenarioExpectation,
  assignments: readonly SimulatedResource[],
): string[] {
  if ((expected.mappingStore ?? 'graph') === 'graph') {
    return assignments.length === 0 ? [] : ['graph mode must not grant the app a role on a storage account'];
  }
  const assignment = theOnly(assignments);
  if (!assignment) return [`table mode needs exactly one role assignment on the storage account, found ${assignments.length}`];
  const table = intendedTable(simulation);
  if (typeof table === 'string') return [table];
  const problems: string[] = [];
  const scope = assignment.evaluated?.['scope'];
  if (scope !== `${STORAGE_SCOPE}${table.account.name}` || assignment.resourceGroupId !== table.account.resourceGroupId) {
    problems.push(
      `the table store's role assignment must be scoped to the storage account ${table.account.name} (not its resource group), got scope ${JSON.stringify(scope)} in ${assignment.resourceGroupId}`,
    );
  }
  return [...problems, ...assigneeProblems(simulation, assignment, 'table store', [STORAGE_TABLE_DATA_CONTRIBUTOR_ROLE_ID])];
}

/**
 * The storage account and table of the table store, hardened exactly as STORAGE_ACCOUNT_PROPERTIES says, and
 * neither of them in graph mode.
 */
export function storageProblems(simulation: Simulation, expected: ScenarioExpectation): string[] {
  const accounts = deployedOfType(simulation, 'Microsoft.Storage/storageAccounts');
  const tables = deployedOfType(simulation, 'Microsoft.Storage/storageAccounts/tableServices/tables');
  if ((expected.mappingStore ?? 'graph') === 'graph') {
    return accounts.length + tables.length === 0 ? [] : ['graph mode must not deploy a storage account or a table'];
  }
  const table = intendedTable(simulation);
  if (typeof table === 'string') return [table];
  const problems: string[] = [];
  const { account } = table;
  const evaluated = account.evaluated ?? {};
  const expect = (what: string, actual: unknown, wanted: unknown): void => {
    if (actual !== wanted) problems.push(`storage account ${what} must be ${JSON.stringify(wanted)}, got ${JSON.stringify(actual)}`);
  };
  if (!/^[a-z0-9]{3,24}$/.test(account.name))
    problems.push(`storage account name ${account.name} must be 3 to 24 lower-case letters and digits`);
  expect('kind', evaluated['kind'], 'StorageV2');
  expect('sku.name', isRecord(evaluated['sku']) ? evaluated['sku']['name'] : undefined, simulation.parameters['mappingStorageSku']);
  expect('location', evaluated['location'], simulation.parameters['location']);
  const properties = isRecord(evaluated['properties']) ? evaluated['properties'] : {};
  for (const [name, wanted] of Object.entries(STORAGE_ACCOUNT_PROPERTIES)) expect(`properties.${name}`, properties[name], wanted);
  for (const name of Object.keys(properties).filter((key) => !Object.hasOwn(STORAGE_ACCOUNT_PROPERTIES, key)))
    problems.push(
      `storage account properties.${name} is not one the checks know (STORAGE_ACCOUNT_PROPERTIES): review it, then add it there`,
    );
  if (table.tableName !== simulation.parameters['mappingTableName'])
    problems.push(`the table must be named by mappingTableName, got ${table.tableName}`);
  return problems;
}

export function outputProblems(simulation: Simulation): string[] {
  const problems: string[] = [];
  const { siteUrl, principalId, storageAccountName, mappingTableEndpoint } = simulation.outputs;
  const expectedPrincipal = simulation.principalId;
  if (typeof siteUrl !== 'string' || !siteUrl.startsWith('https://')) problems.push('output siteUrl must be the https URL of the web app');
  if (principalId !== expectedPrincipal) problems.push("output principalId must be the web app's managed identity");
  const table = simulation.parameters['mappingStore'] === 'table' ? intendedTable(simulation) : undefined;
  const account = typeof table === 'object' ? table.account.name : '';
  if (storageAccountName !== account) problems.push(`output storageAccountName must be ${JSON.stringify(account)}`);
  const endpoint = typeof table === 'object' ? storageEndpoint(account, 'table') : '';
  if (mappingTableEndpoint !== endpoint) problems.push(`output mappingTableEndpoint must be ${JSON.stringify(endpoint)}`);
  for (const [name, value] of Object.entries(simulation.outputs)) {
    if (containsSecret(value)) problems.push(`output ${name} exposes a secret (outputs are readable in the deployment history)`);
  }
  return problems;
}

/**
 * The role assignments of a web app recreated under the same name (a new principal) must have other names:
 * Azure refuses to change the principal of an existing assignment (RoleAssignmentUpdateNotPermitted).
 */
export function roleAssignmentRecreationProblems(template: ArmTemplate, parameters: Readonly<Record<string, unknown>>): string[] {
  const namesOf = (principalId: string): string[] =>
    deployedOfType(simulateDeployment(template, parameters, { principalId }), 'Microsoft.Authorization/roleAssignments').map(
      (assignment) => assignment.name,
    );
  const first = namesOf(FAKE.principalId);
  if (JSON.stringify(first) !== JSON.stringify(namesOf(FAKE.principalId)))
    return ['the role assignment names must be the same on every deployment for the same principal'];
  const recreated = namesOf(FAKE.otherPrincipalId);
  return first
    .filter((name) => recreated.includes(name))
    .map(
      (name) =>
        `the role assignment name ${name} must derive from the app's principal id, or recreating the app fails with RoleAssignmentUpdateNotPermitted`,
    );
}

/**
 * Parameter sets ARM must refuse at validation, before any resource is touched, and the words its message
 * must contain. The template has no other way to say "exactly one of two optional parameters", nor "required
 * with mappingStore graph, refused with table".
 */
export const REFUSED_PARAMETERS: readonly {
  readonly label: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly message: string;
}[] = [
  {
    label: 'graph store, both a secret and a certificate',
    parameters: scenarioParameters({ entraClientCertificateThumbprint: FAKE.certificateThumbprint }),
    message: 'not both',
  },
  {
    label: 'graph store, no Entra credential',
    parameters: scenarioParameters({ entraClientSecret: '' }),
    message: 'the API needs one credential',
  },
  {
    label: 'graph store, a thumbprint that is not 40 characters long',
    parameters: scenarioParameters({ entraClientCertificateThumbprint: 'ABCDEF' }, 'certificate'),
    message: 'must be the 40-character SHA-1 thumbprint',
  },
  {
    label: 'graph store, a certificate on a Free plan, which loads no certificates',
    parameters: scenarioParameters({ appServicePlanSku: 'F1' }, 'certificate'),
    message: 'Basic tier and above',
  },
  {
    label: 'graph store, no seal keys',
    parameters: scenarioParameters({ mappingSealKeys: '' }),
    message: 'mappingSealKeys is required with mappingStore graph',
  },
  {
    label: 'graph store, a seal key too short to hold 32 bytes',
    parameters: scenarioParameters({ mappingSealKeys: `k1:${Buffer.alloc(16, 1).toString('base64')}` }),
    message: 'mappingSealKeys is required with mappingStore graph',
  },
  {
    label: 'table store, a client secret',
    parameters: tableScenarioParameters({ entraClientSecret: FAKE.clientSecret }),
    message: 'mappingStore table uses no Entra credential and no seal keys',
  },
  {
    label: 'table store, a certificate',
    parameters: tableScenarioParameters({ entraClientCertificateThumbprint: FAKE.certificateThumbprint }),
    message: 'mappingStore table uses no Entra credential and no seal keys',
  },
  {
    label: 'table store, seal keys',
    parameters: tableScenarioParameters({ mappingSealKeys: FAKE.mappingSealKeys }),
    message: 'mappingStore table uses no Entra credential and no seal keys',
  },
];

/** The template's own message in a problem, the part after 'Invalid parameters: ', if it has one. */
export function refusalMessageOf(problem: string): string | undefined {
  const at = problem.indexOf('Invalid parameters: ');
  return at < 0 ? undefined : problem.slice(at + 'Invalid parameters: '.length);
}

export function parameterRefusalProblems(template: ArmTemplate): string[] {
  return REFUSED_PARAMETERS.flatMap(({ label, parameters, message }) => {
    const refused = simulateDeployment(template, parameters).problems.some((problem) => refusalMessageOf(problem)?.includes(message));
    return refused ? [] : [`a deployment with ${label} must fail with '${message}'`];
  });
}

/** Everything about one simulated deployment. */
export function deploymentProblems(
  template: ArmTemplate,
  parameters: Readonly<Record<string, unknown>>,
  expected: ScenarioExpectation,
): string[] {
  const simulation = simulateDeployment(template, parameters);
  return [
    ...simulation.problems,
    ...siteProblems(simulation),
    ...appSettingProblems(simulation, expected),
    ...storageProblems(simulation, expected),
    ...roleAssignmentProblems(simulation, expected),
    ...roleAssignmentRecreationProblems(template, parameters),
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
