/**
 * App Service's local managed-identity token endpoint (protocol 2019-08-01), for one system-assigned
 * identity: what `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` point at inside an App Service app, and what
 * `ManagedIdentityCredential` (msal-node's `AppService` source) calls there.
 *
 * The request, as msal-node 7 sends it: `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>`
 * with `X-IDENTITY-HEADER: <IDENTITY_HEADER>` (and `client_id`, `object_id` or `mi_res_id` for a
 * user-assigned identity). The answer: `{ access_token, expires_on, resource, token_type, client_id }`,
 * `expires_on` in epoch seconds as a string. Failures are `{ statusCode, message, correlationId }`,
 * App Service's shape, which msal-node reads (`message`, `correlationId`).
 *
 * It is as strict as App Service: plain http on loopback only, GET only, the one api-version, a
 * resource required, and the header compared in constant time (401 when missing or wrong). A
 * user-assigned identity is refused with 400 as App Service refuses one the app does not have: this app
 * has only its system-assigned identity. Tokens are v1 Entra access tokens for the resource, issued by
 * the tenant of the Entra ID emulator and signed with its keys, with the claims Entra gives a managed
 * identity's app-only token (`appid`, `oid` = `sub` = the identity's service principal, `idtyp: app`,
 * `appidacr: 2`, `xms_mirid`).
 *
 * @packageDocumentation
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntraEmulator } from '../entra/entra-emulator';
import { appTokenClaims, stableGuid, tokenTimes } from '../entra/entra-token-claims';
import { startServer } from '../kit/start-server';

/** The only api-version of the protocol served (2017-09-01, with a `secret` header, is not). */
export const APP_SERVICE_MSI_API_VERSION = '2019-08-01';

/** The path App Service on Linux serves the endpoint at (`IDENTITY_ENDPOINT` = `http://127.0.0.1:<port>/msi/token`). */
const TOKEN_PATH = '/msi/token';

/** Query parameters that name a user-assigned identity (App Service reads `principal_id`; msal-node sends `object_id`). */
const USER_ASSIGNED_PARAMETERS = ['client_id', 'principal_id', 'object_id', 'mi_res_id'] as const;

/** Resources the emulated tenant issues tokens for: Azure Storage, ACS, Graph, Key Vault and ARM. */
const DEFAULT_RESOURCES = [
  'https://storage.azure.com',
  'https://communication.azure.com',
  'https://graph.microsoft.com',
  'https://vault.azure.net',
  'https://management.azure.com',
] as const;

export interface ManagedIdentityEndpointOptions {
  /** The tenant that issues the tokens: the Entra ID emulator (its id, v1 issuer and signing keys). */
  readonly entra: Pick<EntraEmulator, 'tenantId' | 'issuerV1' | 'keys' | 'servicePrincipalId'>;
  /** The value App Service puts in IDENTITY_HEADER; a random one (as App Service makes) when absent. */
  readonly identityHeader?: string;
  /** The system-assigned identity's client id (`appid`); a stable one derived from the tenant when absent. */
  readonly clientId?: string;
  /** The `xms_mirid` claim: the Azure resource the identity belongs to. */
  readonly resourceId?: string;
  /** Resources a token may be asked for (with or without a trailing slash); Azure Storage, ACS, Graph, Key Vault and ARM by default. */
  readonly resources?: readonly string[];
  /** Token lifetime; Entra gives managed identities about 24 hours. */
  readonly lifetimeSeconds?: number;
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  readonly port?: number;
}

/** One request the endpoint answered. */
export interface ManagedIdentityRequest {
  readonly method: string;
  /** The `resource` parameter, when given. */
  readonly resource: string | undefined;
  readonly status: number;
}

export interface ManagedIdentityEndpoint {
  /** `IDENTITY_ENDPOINT`: `http://127.0.0.1:<port>/msi/token`. */
  readonly url: string;
  /** `IDENTITY_HEADER`: what callers must send in `X-IDENTITY-HEADER`. */
  readonly identityHeader: string;
  /** The two settings App Service gives the app, ready for a child process's environment. */
  readonly settings: Readonly<{ IDENTITY_ENDPOINT: string; IDENTITY_HEADER: string }>;
  /** The identity's client id (`appid`, `client_id` in answers). */
  readonly clientId: string;
  /** The identity's service principal object id (`oid` and `sub` of its tokens). */
  readonly principalId: string;
  /** Every request answered so far, in order. */
  readonly requests: readonly ManagedIdentityRequest[];
  close(): Promise<void>;
}

interface Identity {
  readonly entra: ManagedIdentityEndpointOptions['entra'];
  readonly identityHeader: Buffer;
  readonly clientId: string;
  readonly principalId: string;
  readonly resourceId: string;
  readonly resources: ReadonlySet<string>;
  readonly lifetimeSeconds: number;
}

/** An answer: a status and a JSON body. */
interface Answer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
  readonly headers?: Readonly<Record<string, string>>;
}

export async function startManagedIdentityEndpoint(options: ManagedIdentityEndpointOptions): Promise<ManagedIdentityEndpoint> {
  const lifetimeSeconds = options.lifetimeSeconds ?? 86_400;
  if (!Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 1) throw new TypeError('lifetimeSeconds must be a positive integer');
  // App Service's header is a random value per app instance; so is this one unless a test names it.
  const header = options.identityHeader ?? randomBytes(24).toString('base64url');
  if (header === '') throw new TypeError('identityHeader must not be empty');
  const { entra } = options;
  const clientId = (options.clientId ?? stableGuid(`managed-identity|${entra.tenantId}|system-assigned`)).toLowerCase();
  const identity: Identity = {
    entra,
    identityHeader: Buffer.from(header),
    clientId,
    principalId: entra.servicePrincipalId(clientId),
    resourceId:
      options.resourceId ??
      '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/local/providers/Microsoft.Web/sites/acs-auth-local',
    resources: new Set((options.resources ?? DEFAULT_RESOURCES).map(withoutTrailingSlash)),
    lifetimeSeconds,
  };
  const requests: ManagedIdentityRequest[] = [];
  const started = await startServer((req, res) => void handle(identity, requests, req, res), { port: options.port ?? 0 });
  const url = `${started.url}${TOKEN_PATH}`;
  return {
    url,
    identityHeader: header,
    settings: Object.freeze({ IDENTITY_ENDPOINT: url, IDENTITY_HEADER: header }),
    clientId,
    principalId: identity.principalId,
    requests,
    close: () => started.close(),
  };
}

async function handle(identity: Identity, requests: ManagedIdentityRequest[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  let answer: Answer;
  try {
    answer = await answerTo(identity, req, url);
  } catch {
    answer = failure(500, 'An unexpected error occurred while fetching the AAD Token.');
  }
  requests.push({ method: req.method ?? '', resource: url.searchParams.get('resource') ?? undefined, status: answer.status });
  // The request has no body worth reading (msal-node sends none); drain whatever came so the socket can be reused.
  req.resume();
  res.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8', ...answer.headers });
  res.end(JSON.stringify(answer.body));
}

/** The checks, in App Service's order: the route, the method, the secret header, then the parameters. */
async function answerTo(identity: Identity, req: IncomingMessage, url: URL): Promise<Answer> {
  if (url.pathname.replace(/\/$/, '').toLowerCase() !== TOKEN_PATH) return failure(404, 'Not found.');
  const query = url.searchParams;
  if (req.method !== 'GET') return { ...failure(405, `The ${String(req.method)} method is not supported.`), headers: { allow: 'GET' } };
  if (!headerMatches(identity.identityHeader, req.headers['x-identity-header'])) {
    return failure(401, 'The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.');
  }
  const apiVersion = query.get('api-version');
  if (apiVersion !== APP_SERVICE_MSI_API_VERSION) {
    return failure(400, `The api-version '${apiVersion ?? ''}' is not supported; use ${APP_SERVICE_MSI_API_VERSION}.`);
  }
  const resource = query.get('resource') ?? '';
  if (resource.trim() === '') return failure(400, 'The resource parameter is required.');
  if (USER_ASSIGNED_PARAMETERS.some((name) => query.has(name))) {
    // The only identity of this app is its system-assigned one.
    return failure(400, 'Unable to load the proper Managed Identity.');
  }
  if (!identity.resources.has(withoutTrailingSlash(resource))) {
    return failure(
      400,
      `AADSTS500011: The resource principal named ${resource} was not found in the tenant named ${identity.entra.tenantId}.`,
    );
  }
  return { status: 200, body: await tokenAnswer(identity, resource) };
}

/** A v1 app-only access token for `resource`, as Entra issues one to a managed identity, and App Service's answer around it. */
async function tokenAnswer(identity: Identity, resource: string): Promise<Record<string, unknown>> {
  const { entra } = identity;
  const times = tokenTimes({ lifetimeSeconds: identity.lifetimeSeconds });
  const claims = appTokenClaims({
    version: 1,
    issuer: entra.issuerV1,
    v1Issuer: entra.issuerV1,
    // v1 tokens carry the resource exactly as it was asked for.
    audience: resource,
    tenantId: entra.tenantId,
    oid: identity.principalId,
    roles: undefined,
    clientAppId: identity.clientId,
    times,
    idtyp: true,
    // A managed identity authenticates with a certificate the platform holds.
    clientAuth: '2',
  });
  const accessToken = await entra.keys.sign({ ...claims, xms_mirid: identity.resourceId }, { x5t: true });
  return {
    access_token: accessToken,
    expires_on: String(times.exp),
    resource,
    token_type: 'Bearer',
    client_id: identity.clientId,
  };
}

function headerMatches(expected: Buffer, sent: string | string[] | undefined): boolean {
  if (typeof sent !== 'string') return false;
  const given = Buffer.from(sent);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function failure(status: number, message: string): Answer {
  return { status, body: { statusCode: status, message, correlationId: randomUUID() } };
}

function withoutTrailingSlash(resource: string): string {
  return resource.replace(/\/+$/, '');
}
