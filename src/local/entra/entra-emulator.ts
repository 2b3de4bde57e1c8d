import { randomUUID, timingSafeEqual, createHash, X509Certificate, type KeyObject } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { compactVerify, createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JWK, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { createEmulatorKit, type FaultInjector, type RequestCounters } from '../kit/faults';
import { startServer } from '../kit/start-server';
import { ACS_TEAMS_AUDIENCE, DEMO_USERS, GRAPH_RESOURCE, LOCAL_SPA_CLIENT_ID, LOCAL_TENANT_ID, type DemoUser } from '../local-directory';
import { AadError, aadEnvelope, aadErrorHandler, stsHeaders } from './aad-error';
import { appTokenClaims, opaque, stableGuid, tokenTimes, userTokenClaims, nameClaims, pairwiseSubject } from './entra-token-claims';
import {
  canonicalApplicationGraphPermission,
  canonicalDelegatedGraphPermission,
  graphScopeUrl,
  OIDC_SCOPES,
} from './graph-permission-catalog';
import { SigningKeySet } from './signing-keys';

/**
 * A local Microsoft Entra ID (AAD STS) for local mode and tests: tenant metadata (v1 and v2), signing
 * keys, the v2 token endpoint (On-Behalf-Of and client credentials), and helpers that mint the user
 * tokens a real tenant would issue to this API. Apps authenticate with a client secret or a certificate
 * (a signed client assertion). It is as strict as Entra on what it accepts, and it
 * answers refusals with Entra's error envelope and AADSTS codes, so msal-node raises the same errors
 * it raises against the real service.
 */

/** An app registration in the emulated tenant. */
export interface RegisteredApplication {
  /** Application (client) id, a GUID. */
  readonly clientId: string;
  /** The client secret; an app with neither a secret nor a certificate cannot authenticate (a public client). */
  readonly clientSecret?: string;
  /** Certificates uploaded to the registration (public part, PEM): the app may sign client assertions with their keys. */
  readonly certificates?: readonly { readonly certPem: string }[];
  /** App ID URI, accepted as `aud` of v1 tokens; `api://{clientId}` when absent. */
  readonly appIdUri?: string;
  /** Shown in `app_displayname` of Graph tokens. */
  readonly displayName?: string;
  /** Delegated Graph permissions consented for this app (e.g. `User.Read`, `User.ReadWrite`). */
  readonly graphDelegatedScopes?: readonly string[];
  /** Graph application permissions granted to this app (e.g. `User.ReadWrite.All`), for client credentials. */
  readonly graphApplicationRoles?: readonly string[];
}

export interface EntraEmulatorOptions {
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  /** The tenant's id (default LOCAL_TENANT_ID). */
  readonly tenantId?: string;
  /** App registrations; the first one is the default audience of minted API tokens. */
  readonly applications: readonly RegisteredApplication[];
  /** Users of the tenant (default: the demo users). */
  readonly users?: readonly DemoUser[];
  /** Token-signing keys (created when absent); hand the same set to the Graph and ACS emulators. */
  readonly keys?: SigningKeySet;
  readonly host?: string;
  readonly port?: number;
}

export interface MintAccessTokenOptions {
  /** Demo user name (`alice`, `bob`, `carol`, or any name in `users`) or a user's oid. Default: the first user. */
  readonly user?: string;
  /** Object id; overrides `user`. For app-only tokens, the calling app's service principal id by default. */
  readonly oid?: string;
  /** Tenant id claim (default the emulator's tenant). */
  readonly tid?: string;
  /** Delegated scopes, space separated (default `access_as_user`); `null` or `''` gives an app-only token. */
  readonly scp?: string | null;
  readonly roles?: readonly string[];
  /** `aud`; default: v1 the first application's App ID URI, v2 its client id. */
  readonly audience?: string;
  /** Token format: 1 (Entra's default for APIs) or 2. */
  readonly version?: 1 | 2;
  /** Default 3600. */
  readonly lifetimeSeconds?: number;
  /** `nbf` in epoch seconds (default `iat`). */
  readonly notBefore?: number;
  /** `iat` in epoch seconds (default now); `exp` = `iat` + lifetime. */
  readonly issuedAt?: number;
  /** `iss` (default the emulator's v1 or v2 issuer). */
  readonly issuer?: string;
  /** The calling app (`appid` in v1, `azp` in v2), default LOCAL_SPA_CLIENT_ID. */
  readonly clientAppId?: string;
  /** Extra or overriding claims; a claim set to `undefined` is removed. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

export interface MintTeamsTokenOptions {
  /** Demo user name or oid. Default: the first user. */
  readonly user?: string;
  readonly oid?: string;
  /** The client app the Teams user signed in to (`appid`). */
  readonly appId: string;
  /** Default 3600. */
  readonly lifetimeSeconds?: number;
  /** Default `Teams.ManageCalls Teams.ManageChats`. */
  readonly scp?: string;
}

/** What Entra demands before it issues a token for this user: MFA (conditional access) or consent. */
export type InteractionKind = 'mfa' | 'consent';

export interface EntraEmulator {
  /** Base URL, e.g. `https://127.0.0.1:49152` (the authority host). */
  readonly url: string;
  readonly tenantId: string;
  /** `${url}/${tenantId}`: the msal authority. */
  readonly authority: string;
  /** `https://sts.windows.net/{tid}/`, as in Entra's v1 metadata and v1 tokens. */
  readonly issuerV1: string;
  /**
   * `${url}/{tid}/v2.0`. In the cloud it is `https://login.microsoftonline.com/{tid}/v2.0`, i.e. on the
   * authority's own host; the emulator keeps that relationship (issuer host = authority host), so
   * services that derive the v2 issuer from their configured authority host work unchanged.
   */
  readonly issuerV2: string;
  readonly keys: SigningKeySet;
  readonly faults: FaultInjector;
  /** Route names: `metadata.v1`, `metadata.v2`, `keys.v1`, `keys.v2`, `discovery.instance`, `token`, `local.userToken`, `local.teamsToken`, `unmatched`. */
  readonly counters: RequestCounters;
  /** A user access token for an API, as Entra would issue it. */
  mintAccessToken(options?: MintAccessTokenOptions): Promise<string>;
  /** A Teams user's Entra token for ACS (`aud` = ACS_TEAMS_AUDIENCE, v1). */
  mintTeamsToken(options: MintTeamsTokenOptions): Promise<string>;
  /** Make On-Behalf-Of for this user fail as Entra does when MFA (conditional access) or consent is needed. */
  requireInteraction(oid: string, kind: InteractionKind): void;
  clearInteraction(oid: string): void;
  /** The stable service principal object id of an app (the `oid` of its app-only tokens). */
  servicePrincipalId(clientId: string): string;
  /** TCP connections accepted so far (keep-alive reuse shows as few connections for many requests). */
  connectionsAccepted(): number;
  close(): Promise<void>;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const FORM = 'application/x-www-form-urlencoded';
/** Clock skew tolerated on assertion `exp`/`nbf`: 5 minutes, the Microsoft libraries' default (the STS's own value is unconfirmed). */
const CLOCK_SKEW_SECONDS = 300;
/** Entra's default access-token lifetime is random between 60 and 90 minutes. */
const lifetimeForIssuedToken = (): number => 3600 + Math.floor(Math.random() * 1800);
/** The public cloud's fields, the same in the v1 and v2 OpenID metadata. */
const CLOUD_METADATA = {
  tenant_region_scope: 'NA',
  cloud_instance_name: 'microsoftonline.com',
  cloud_graph_host_name: 'graph.windows.net',
  msgraph_host: 'graph.microsoft.com',
  rbac_url: 'https://pas.windows.net',
} as const;
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/**
 * Longest client assertion accepted (`exp` beyond now, on top of the skew). msal-node makes assertions
 * that live 600 s; whether Entra caps the lifetime, and where, is unconfirmed.
 */
const MAX_CLIENT_ASSERTION_SECONDS = 600;
const CERTIFICATE_CREDENTIALS_DOC = 'Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .';

/** A certificate credential of an app registration, indexed the way client assertions name it. */
interface RegisteredCertificate {
  /** base64url SHA-256 of the DER: the `x5t#S256` header. */
  readonly x5tS256: string;
  /** base64url SHA-1 of the DER: the legacy `x5t` header. */
  readonly x5t: string;
  readonly publicKey: KeyObject;
  readonly validFrom: Date;
  readonly validTo: Date;
  readonly der: Buffer;
}

/** How the client proved its identity, as the issued tokens' `appidacr`/`azpacr` say: 1 secret, 2 certificate. */
type ClientAuthMethod = '1' | '2';

interface AuthenticatedClient {
  readonly app: ResolvedApplication;
  readonly clientAuth: ClientAuthMethod;
}

interface ResolvedApplication {
  readonly clientId: string;
  readonly clientSecret: string | undefined;
  readonly certificates: readonly RegisteredCertificate[];
  readonly appIdUri: string;
  readonly displayName: string;
  readonly graphDelegatedScopes: readonly string[];
  readonly graphApplicationRoles: readonly string[];
}

function resolveApplications(applications: readonly RegisteredApplication[]): ResolvedApplication[] {
  if (!Array.isArray(applications as unknown) || applications.length === 0) throw new TypeError('applications must list at least one app registration');
  const seen = new Set<string>();
  return applications.map((app) => {
    if (!GUID.test(app.clientId)) throw new TypeError(`application clientId must be a GUID, got '${app.clientId}'`);
    const clientId = app.clientId.toLowerCase();
    if (seen.has(clientId)) throw new TypeError(`application ${clientId} is registered twice`);
    seen.add(clientId);
    if (app.clientSecret !== undefined && app.clientSecret === '') throw new TypeError(`application ${clientId}: clientSecret must not be empty`);
    const delegated = (app.graphDelegatedScopes ?? []).map((name) => {
      const canonical = canonicalDelegatedGraphPermission(name);
      if (canonical === undefined) throw new TypeError(`application ${clientId}: '${name}' is not a delegated Graph permission the emulator knows`);
      return canonical;
    });
    const roles = (app.graphApplicationRoles ?? []).map((name) => {
      const canonical = canonicalApplicationGraphPermission(name);
      if (canonical === undefined) throw new TypeError(`application ${clientId}: '${name}' is not a Graph application permission the emulator knows`);
      return canonical;
    });
    const certificates = (app.certificates ?? []).map((certificate, index) => {
      let x509: X509Certificate;
      try {
        x509 = new X509Certificate(certificate.certPem);
      } catch {
        throw new TypeError(`application ${clientId}: certificates[${index}] is not a PEM certificate`);
      }
      return {
        x5tS256: createHash('sha256').update(x509.raw).digest('base64url'),
        x5t: createHash('sha1').update(x509.raw).digest('base64url'),
        publicKey: x509.publicKey,
        validFrom: new Date(x509.validFrom),
        validTo: new Date(x509.validTo),
        der: x509.raw,
      };
    });
    return {
      clientId,
      clientSecret: app.clientSecret,
      certificates,
      appIdUri: app.appIdUri ?? `api://${clientId}`,
      displayName: app.displayName ?? `app ${clientId.slice(0, 8)}`,
      graphDelegatedScopes: [...new Set(delegated)],
      graphApplicationRoles: [...new Set(roles)],
    };
  });
}

function secretsEqual(given: string, expected: string): boolean {
  // Hash first so the comparison is constant-time whatever the lengths.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function missingParameter(name: string): AadError {
  return new AadError(400, 'invalid_request', 900144, `The request body must contain the following parameter: '${name}'.`);
}

/** Form parameters, refusing repeated ones (Entra answers a malformed request). */
function formParameters(req: Request): Map<string, string> {
  const params = new Map<string, string>();
  // A body that is not form-encoded is not read at all, as Entra does: the request then lacks every parameter.
  if (!req.is(FORM) || typeof req.body !== 'string') return params;
  for (const [key, value] of new URLSearchParams(req.body)) {
    if (params.has(key)) throw new AadError(400, 'invalid_request', 9002313, `Invalid request. Request is malformed or invalid. Parameter '${key}' is repeated.`);
    params.set(key, value);
  }
  return params;
}

interface BasicCredentials {
  readonly clientId: string;
  readonly secret: string;
}

function basicCredentials(req: Request): BasicCredentials | undefined {
  const header = req.get('authorization');
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!match) throw new AadError(401, 'invalid_client', 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new AadError(401, 'invalid_client', 7000216, 'Malformed HTTP Basic client credentials.');
  // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
  const decode = (value: string): string => decodeURIComponent(value.replace(/\+/g, ' '));
  return { clientId: decode(decoded.slice(0, colon)), secret: decode(decoded.slice(colon + 1)) };
}

interface ParsedScopes {
  /** Graph permissions asked for (canonical names), or `.default`. */
  readonly graph: readonly string[] | '.default';
  /** OpenID Connect scopes asked for. */
  readonly oidc: readonly string[];
}

function invalidScope(scope: string): AadError {
  return new AadError(400, 'invalid_scope', 70011, `The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid.`);
}

/** Splits and checks a v2 `scope` parameter aimed at Microsoft Graph. */
function parseDelegatedScopes(raw: string, tenantId: string): ParsedScopes {
  const requested = raw.split(' ').filter((scope) => scope !== '');
  const graph: string[] = [];
  const oidc: string[] = [];
  let wantsDefault = false;
  for (const scope of requested) {
    if (OIDC_SCOPES.has(scope.toLowerCase())) {
      oidc.push(scope.toLowerCase());
      continue;
    }
    let resource: string;
    let permission: string;
    const slash = scope.lastIndexOf('/');
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(scope) || scope.startsWith('api://')) {
      if (slash < 0) throw invalidScope(raw);
      resource = scope.slice(0, slash).replace(/\/+$/, '');
      permission = scope.slice(slash + 1);
    } else {
      // A bare permission name means Microsoft Graph, as on the real v2 endpoint.
      resource = GRAPH_RESOURCE;
      permission = scope;
    }
    if (resource.toLowerCase() !== GRAPH_RESOURCE) {
      // Only Graph exists as a downstream resource in the emulated tenant.
      throw new AadError(400, 'invalid_resource', 500011, `The resource principal named ${resource} was not found in the tenant named ${tenantId}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`);
    }
    if (permission === '.default') {
      wantsDefault = true;
      continue;
    }
    const canonical = canonicalDelegatedGraphPermission(permission);
    if (canonical === undefined) throw invalidScope(raw);
    graph.push(canonical);
  }
  if (wantsDefault && graph.length > 0) throw invalidScope(raw);
  if (!wantsDefault && graph.length === 0) throw invalidScope(raw);
  return { graph: wantsDefault ? '.default' : [...new Set(graph)], oidc: [...new Set(oidc)] };
}

const byLowerCaseName = (a: string, b: string): number => a.toLowerCase().localeCompare(b.toLowerCase());

/** The unverified header and claims of a compact JWT, or the given refusal when it is not one. */
function decodeUnverified(jwt: string, refusal: () => AadError): { header: ProtectedHeaderParameters; claims: JWTPayload } {
  try {
    return { header: decodeProtectedHeader(jwt), claims: decodeJwt(jwt) };
  } catch {
    throw refusal();
  }
}

/**
 * Starts the Entra ID emulator over HTTPS (MSAL refuses other schemes) on loopback, port 0 by default.
 * Throws a TypeError for invalid options (non-GUID ids, unknown Graph permission names, no applications).
 */
export async function createEntraEmulator(options: EntraEmulatorOptions): Promise<EntraEmulator> {
  const tenantId = (options.tenantId ?? LOCAL_TENANT_ID).toLowerCase();
  if (!GUID.test(tenantId)) throw new TypeError(`tenantId must be a GUID, got '${tenantId}'`);
  const applications = resolveApplications(options.applications);
  const users = options.users ?? Object.values(DEMO_USERS);
  const keys = options.keys ?? (await SigningKeySet.create());
  const issuerV1 = `https://sts.windows.net/${tenantId}/`;
  const interactions = new Map<string, InteractionKind>();
  const conditionalAccessPolicyId = randomUUID();

  let url = '';
  const baseUrl = (): string => url;
  const issuerV2 = (): string => `${url}/${tenantId}/v2.0`;
  const kit = createEmulatorKit(aadEnvelope(baseUrl));

  const applicationById = (clientId: string): ResolvedApplication | undefined =>
    applications.find((app) => app.clientId === clientId.toLowerCase());
  const servicePrincipalId = (clientId: string): string => stableGuid(`service-principal|${tenantId}|${clientId.toLowerCase()}`);
  // Indexed, so a tenant of 100,000 users (the memory benchmark) costs no linear scan per token request.
  const usersByOid = new Map(users.map((user) => [user.oid.toLowerCase(), user] as const));
  const userByOid = (oid: string): DemoUser | undefined => usersByOid.get(oid.toLowerCase());

  const resolveUser = (user: string | undefined, oid: string | undefined): { oid: string; user: DemoUser | undefined } => {
    if (oid !== undefined) return { oid, user: userByOid(oid) };
    if (user === undefined) {
      const first = users[0];
      if (first === undefined) throw new TypeError('the emulator has no users; pass user or oid');
      return { oid: first.oid, user: first };
    }
    const named = users.find((candidate) => candidate.name === user) ?? userByOid(user);
    if (named !== undefined) return { oid: named.oid, user: named };
    if (GUID.test(user)) return { oid: user, user: undefined };
    throw new TypeError(`unknown user '${user}': pass a user name from the directory or an oid`);
  };

  const requireTenant = (req: Request, alsoAllowed: readonly string[] = []): void => {
    const tenant = String(req.params['tenant'] ?? '');
    if (tenant.toLowerCase() === tenantId || alsoAllowed.includes(tenant.toLowerCase())) return;
    throw new AadError(400, 'invalid_tenant', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`);
  };

  const mintAccessToken = async (opts: MintAccessTokenOptions = {}): Promise<string> => {
    const version = opts.version ?? 1;
    if (version !== 1 && version !== 2) throw new TypeError('version must be 1 or 2');
    const lifetimeSeconds = opts.lifetimeSeconds ?? 3600;
    if (!Number.isFinite(lifetimeSeconds)) throw new TypeError('lifetimeSeconds must be a number');
    const api = applications[0] as ResolvedApplication;
    const audience = opts.audience ?? (version === 1 ? api.appIdUri : api.clientId);
    const audienceAppId = applications.find((app) => app.appIdUri === audience || app.clientId === audience.toLowerCase())?.clientId ?? audience;
    const clientAppId = opts.clientAppId ?? LOCAL_SPA_CLIENT_ID;
    const issuer = opts.issuer ?? (version === 1 ? issuerV1 : issuerV2());
    const tid = opts.tid ?? tenantId;
    const times = tokenTimes({ issuedAt: opts.issuedAt, notBefore: opts.notBefore, lifetimeSeconds });
    const scp = opts.scp === undefined ? 'access_as_user' : opts.scp;
    let payload: JWTPayload;
    if (scp === null || scp === '') {
      payload = appTokenClaims({
        version, issuer, v1Issuer: issuerV1, audience, tenantId: tid,
        oid: opts.oid ?? servicePrincipalId(clientAppId), roles: opts.roles, clientAppId, times,
      });
    } else {
      const who = resolveUser(opts.user, opts.oid);
      payload = userTokenClaims({
        version, issuer, audience, audienceAppId, tenantId: tid, oid: who.oid, user: who.user,
        scp, roles: opts.roles, clientAppId, clientAuth: '0', times,
      });
    }
    return keys.sign({ ...payload, ...opts.claims } as JWTPayload, { x5t: version === 1 });
  };

  const mintTeamsToken = async (opts: MintTeamsTokenOptions): Promise<string> => {
    if (typeof opts.appId !== 'string' || opts.appId === '') throw new TypeError('appId is required');
    const who = resolveUser(opts.user, opts.oid);
    const times = tokenTimes({ lifetimeSeconds: opts.lifetimeSeconds ?? 3600 });
    const payload = userTokenClaims({
      version: 1, issuer: issuerV1, audience: ACS_TEAMS_AUDIENCE, audienceAppId: ACS_TEAMS_AUDIENCE, tenantId,
      oid: who.oid, user: who.user, scp: opts.scp ?? 'Teams.ManageCalls Teams.ManageChats', roles: undefined,
      clientAppId: opts.appId, clientAuth: '0', times,
    });
    return keys.sign(payload, { x5t: true });
  };

  // ---- client authentication: client_secret_post, client_secret_basic or private_key_jwt (certificate) ----
  const unknownApplication = (clientId: string): AadError =>
    new AadError(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);

  const authenticateClient = async (req: Request, params: Map<string, string>): Promise<AuthenticatedClient> => {
    const basic = basicCredentials(req);
    const bodyClientId = params.get('client_id');
    const bodySecret = params.get('client_secret');
    if (params.has('client_assertion') || params.has('client_assertion_type')) {
      if (basic !== undefined || bodySecret !== undefined) {
        // One authentication method per request (RFC 6749 §2.3); Entra's exact answer is unconfirmed.
        throw new AadError(401, 'invalid_client', 7000215, 'More than one client authentication method was used (client_assertion and a client secret).');
      }
      return { app: await authenticateWithAssertion(params, bodyClientId), clientAuth: '2' };
    }
    if (basic !== undefined && bodySecret !== undefined) {
      // RFC 6749 §2.3: a client must not use more than one authentication method per request (Entra's exact answer is unconfirmed).
      throw new AadError(401, 'invalid_client', 7000215, 'More than one client authentication method was used (HTTP Basic and client_secret).');
    }
    if (basic !== undefined && bodyClientId !== undefined && bodyClientId.toLowerCase() !== basic.clientId.toLowerCase()) {
      throw new AadError(401, 'invalid_client', 700016, 'The client_id in the request body does not match the HTTP Basic client credentials.');
    }
    const clientId = basic?.clientId ?? bodyClientId;
    if (clientId === undefined || clientId === '') throw missingParameter('client_id');
    const app = applicationById(clientId);
    if (app === undefined) throw unknownApplication(clientId);
    const secret = basic?.secret ?? bodySecret;
    if (secret === undefined || secret === '') {
      throw new AadError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    if (app.clientSecret === undefined || !secretsEqual(secret, app.clientSecret)) {
      throw new AadError(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`);
    }
    return { app, clientAuth: '1' };
  };

  /**
   * A certificate credential (RFC 7523 client authentication): a JWT signed with the key of a certificate
   * uploaded to the app registration, named by its thumbprint in `x5t#S256` (msal-node 7: PS256) or
   * the legacy SHA-1 `x5t` (RS256). Checked in Entra's order as far as it is known: the key, the
   * signature, then the claims. The assertion may be presented again while it is valid: msal reuses
   * one for up to 10 minutes, so refusing a repeated `jti` would break every real client.
   */
  const authenticateWithAssertion = async (params: Map<string, string>, bodyClientId: string | undefined): Promise<ResolvedApplication> => {
    const assertionType = params.get('client_assertion_type');
    const assertion = params.get('client_assertion');
    if (assertionType === undefined || assertionType === '') throw missingParameter('client_assertion_type');
    if (assertionType !== CLIENT_ASSERTION_TYPE) {
      // The code Entra uses for another assertion type is unconfirmed.
      throw new AadError(400, 'invalid_request', 9002313, `Invalid request. Request is malformed or invalid. The 'client_assertion_type' '${assertionType}' is not supported; use '${CLIENT_ASSERTION_TYPE}'.`);
    }
    if (assertion === undefined || assertion === '') throw missingParameter('client_assertion');
    const { header, claims } = decodeUnverified(
      assertion,
      () => new AadError(401, 'invalid_client', 50027, 'JWT token is invalid or malformed. The client_assertion could not be parsed.'),
    );
    // RFC 7521 §4.2: client_id may be left out when the assertion names the client.
    const clientId = bodyClientId ?? (typeof claims.iss === 'string' ? claims.iss : undefined);
    if (clientId === undefined || clientId === '') throw missingParameter('client_id');
    const app = applicationById(clientId);
    if (app === undefined) throw unknownApplication(clientId);

    const s256 = typeof header['x5t#S256'] === 'string' ? header['x5t#S256'] : undefined;
    const sha1 = typeof header.x5t === 'string' ? header.x5t : undefined;
    const presented = s256 ?? sha1 ?? '';
    // Entra shows thumbprints as upper-case hex.
    const shown = Buffer.from(presented, 'base64url').toString('hex').toUpperCase();
    const certificate = app.certificates.find((candidate) => (s256 !== undefined ? candidate.x5tS256 === s256 : sha1 !== undefined && candidate.x5t === sha1));
    if (certificate === undefined) {
      throw new AadError(401, 'invalid_client', 700027, `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${app.clientId}'.]`);
    }
    const foundKey = `Found key 'Start=${certificate.validFrom.toISOString()}, End=${certificate.validTo.toISOString()}'`;
    const invalidSignature = (reason: string): AadError =>
      new AadError(401, 'invalid_client', 700027, `Client assertion contains an invalid signature. [Reason - ${reason}, Thumbprint of key used by client: '${shown}', ${foundKey}]`);
    const now = new Date();
    // A key credential past its end date no longer signs in (the reason text is unconfirmed).
    if (now < certificate.validFrom || now > certificate.validTo) throw invalidSignature('The key used is expired.');
    // Entra's handling of a mismatching x5c for a registered certificate is unconfirmed; the emulator refuses it.
    if (header.x5c !== undefined) {
      const first = Array.isArray(header.x5c) ? header.x5c[0] : undefined;
      if (typeof first !== 'string' || !Buffer.from(first, 'base64').equals(certificate.der)) {
        throw invalidSignature('The x5c header does not hold the certificate the thumbprint names.');
      }
    }
    if (header.alg !== 'RS256' && header.alg !== 'PS256') {
      throw invalidSignature(`The signing algorithm '${String(header.alg)}' is not supported; use PS256 or RS256.`);
    }
    try {
      await compactVerify(assertion, certificate.publicKey, { algorithms: [header.alg] });
    } catch {
      throw invalidSignature('The provided signature value did not match the expected signature value.');
    }

    if (typeof claims.iss !== 'string' || typeof claims.sub !== 'string' || claims.iss.toLowerCase() !== app.clientId || claims.sub.toLowerCase() !== app.clientId) {
      throw new AadError(401, 'invalid_client', 700021, `Client assertion application identifier doesn't match 'client_id' parameter. ${CERTIFICATE_CREDENTIALS_DOC}`);
    }
    // The documented audience is the v2 token endpoint. Entra's code for another audience is unconfirmed:
    // 50027 is its "invalid JWT" code, whose documented causes include an unexpected audience.
    const tokenEndpoint = `${url}/${tenantId}/oauth2/v2.0/token`;
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(tokenEndpoint)) {
      throw new AadError(401, 'invalid_client', 50027, `Invalid JWT token. The audience '${audiences.map(String).join(',')}' of the client assertion is not the token endpoint '${tokenEndpoint}'. ${CERTIFICATE_CREDENTIALS_DOC}`);
    }
    // `exp` and `jti` are required by the documentation; `nbf` is optional (Entra reports a missing one as 1970).
    if (typeof claims.exp !== 'number') throw new AadError(401, 'invalid_client', 50027, `Invalid JWT token. The client assertion has no 'exp' claim. ${CERTIFICATE_CREDENTIALS_DOC}`);
    if (typeof claims.jti !== 'string' || claims.jti === '') {
      throw new AadError(401, 'invalid_client', 50027, `Invalid JWT token. The client assertion has no 'jti' claim. ${CERTIFICATE_CREDENTIALS_DOC}`);
    }
    const nbf = typeof claims.nbf === 'number' ? claims.nbf : 0;
    const nowSeconds = Math.floor(now.getTime() / 1000);
    if (claims.exp + CLOCK_SKEW_SECONDS <= nowSeconds || nbf - CLOCK_SKEW_SECONDS > nowSeconds || claims.exp > nowSeconds + MAX_CLIENT_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS) {
      throw new AadError(401, 'invalid_client', 700024, `Client assertion is not within its valid time range. Current time: ${now.toISOString()}, assertion valid from ${new Date(nbf * 1000).toISOString()}, expiry time of assertion ${new Date(claims.exp * 1000).toISOString()}. ${CERTIFICATE_CREDENTIALS_DOC}`);
    }
    return app;
  };

  // ---- the user assertion of an On-Behalf-Of request ----
  const validateAssertion = async (assertion: string, app: ResolvedApplication): Promise<JWTPayload> => {
    const { header, claims } = decodeUnverified(assertion, () => new AadError(400, 'invalid_grant', 50027, 'JWT token is invalid or malformed.'));
    const kid = typeof header.kid === 'string' ? header.kid : typeof header.x5t === 'string' ? header.x5t : undefined;
    if (header.alg !== 'RS256' || kid === undefined || !keys.publishedKids.includes(kid)) {
      throw new AadError(400, 'invalid_grant', 50013, `Assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '${kid ?? ''}']`);
    }
    try {
      await compactVerify(assertion, createLocalJWKSet(keys.publicJwks()), { algorithms: ['RS256'] });
    } catch {
      throw new AadError(400, 'invalid_grant', 50013, `Assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '${kid}']`);
    }
    // The issuer must be this tenant's, in the spelling that goes with the token version.
    const versionMatches = (claims.iss === issuerV1 && claims['ver'] === '1.0') || (claims.iss === issuerV2() && claims['ver'] === '2.0');
    if (!versionMatches || claims['tid'] !== tenantId) {
      throw new AadError(400, 'invalid_grant', 50013, `Assertion is invalid. The token issuer '${String(claims.iss)}' doesn't match the api version or the tenant '${tenantId}'.`);
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number' || typeof claims.nbf !== 'number' || claims.exp + CLOCK_SKEW_SECONDS <= now || claims.nbf - CLOCK_SKEW_SECONDS > now) {
      const expiry = typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : 'none';
      throw new AadError(400, 'invalid_grant', 500133, `Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: ${new Date().toISOString()}, expiry time of assertion ${expiry}.`);
    }
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.some((aud) => aud === app.clientId || aud === app.appIdUri)) {
      throw new AadError(400, 'invalid_grant', 500131, `Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '${audiences.join(',')}' and the expected audience is '${app.clientId}' or one of the Application Id URIs of this application.`);
    }
    if (typeof claims['scp'] !== 'string' || claims['scp'] === '') {
      // On-Behalf-Of works only for user (delegated) tokens; Entra's exact code for app-only assertions is unconfirmed.
      throw new AadError(400, 'invalid_grant', 50013, 'Assertion is not a user token. On-Behalf-Of can only be used with delegated (user) access tokens; app-only tokens have no scp claim.');
    }
    return claims;
  };

  const issueOnBehalfOf = async (res: Response, params: Map<string, string>, { app, clientAuth }: AuthenticatedClient): Promise<void> => {
    const requestedTokenUse = params.get('requested_token_use');
    if (requestedTokenUse === undefined) throw missingParameter('requested_token_use');
    if (requestedTokenUse !== 'on_behalf_of') throw new AadError(400, 'invalid_request', 9002313, `Invalid request. The value '${requestedTokenUse}' of 'requested_token_use' is not supported.`);
    const assertion = params.get('assertion');
    if (assertion === undefined || assertion === '') throw missingParameter('assertion');
    const scopeParameter = params.get('scope');
    if (scopeParameter === undefined || scopeParameter.trim() === '') throw missingParameter('scope');

    const assertionClaims = await validateAssertion(assertion, app);
    const scopes = parseDelegatedScopes(scopeParameter, tenantId);
    const oid = String(assertionClaims['oid'] ?? '');
    const user = userByOid(oid);
    if (user === undefined) {
      // The assertion names a user the tenant does not have (the envelope fields for this case are unconfirmed).
      throw new AadError(400, 'invalid_grant', 50034, `The user account ${oid} does not exist in the ${tenantId} directory. To sign into this application, the account must be added to the directory.`);
    }
    const interaction = interactions.get(oid.toLowerCase());
    if (interaction === 'mfa') {
      throw new AadError(400, 'interaction_required', 50079, `Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '${GRAPH_RESOURCE}'.`, {
        claims: JSON.stringify({ access_token: { capolids: { essential: true, values: [conditionalAccessPolicyId] } } }),
      });
    }
    const consentMissing = (): AadError =>
      new AadError(400, 'invalid_grant', 65001, `The user or administrator has not consented to use the application with ID '${app.clientId}' named '${app.displayName}'. Send an interactive authorization request for this user and resource.`, { suberror: 'consent_required' });
    if (interaction === 'consent') throw consentMissing();
    if (scopes.graph === '.default') {
      if (app.graphDelegatedScopes.length === 0) throw consentMissing();
    } else if (scopes.graph.some((permission) => !app.graphDelegatedScopes.includes(permission))) {
      throw consentMissing();
    }

    // Entra puts every consented permission of the resource in the token, not only the requested ones.
    const granted = [...app.graphDelegatedScopes].sort(byLowerCaseName);
    const oidcInToken = scopes.oidc.filter((scope) => scope !== 'offline_access');
    const lifetime = lifetimeForIssuedToken();
    const times = tokenTimes({ lifetimeSeconds: lifetime });
    const payload: JWTPayload = {
      aud: GRAPH_RESOURCE,
      iss: issuerV1,
      iat: times.iat,
      nbf: times.nbf,
      exp: times.exp,
      acct: 0,
      acr: '1',
      aio: opaque(48),
      amr: ['pwd'],
      app_displayname: app.displayName,
      appid: app.clientId,
      appidacr: clientAuth,
      ...nameClaims(user, 1),
      idtyp: 'user',
      ipaddr: '127.0.0.1',
      oid: user.oid,
      rh: opaque(32),
      scp: [...oidcInToken, ...granted].sort(byLowerCaseName).join(' '),
      sub: pairwiseSubject(user.oid, GRAPH_RESOURCE),
      tenant_region_scope: 'NA',
      tid: tenantId,
      uti: opaque(16),
      ver: '1.0',
      xms_st: { sub: pairwiseSubject(user.oid, app.clientId) },
    };
    // Graph tokens carry a `nonce` header, which is why third parties cannot validate them.
    const accessToken = await keys.sign(payload, { x5t: true, header: { nonce: opaque(32) } });
    res.status(200).json({
      token_type: 'Bearer',
      scope: [...granted.map(graphScopeUrl), ...oidcInToken].join(' '),
      expires_in: lifetime,
      ext_expires_in: lifetime,
      access_token: accessToken,
      // Entra returns client_info (the user's uid/utid) when asked with client_info=1, as msal always asks.
      ...(params.get('client_info') === '1'
        ? { client_info: Buffer.from(JSON.stringify({ uid: user.oid, utid: tenantId })).toString('base64url') }
        : {}),
    });
  };

  const issueClientCredentials = async (res: Response, params: Map<string, string>, { app, clientAuth }: AuthenticatedClient): Promise<void> => {
    const scope = params.get('scope');
    if (scope === undefined || scope.trim() === '') throw missingParameter('scope');
    const scopes = scope.split(' ').filter((value) => value !== '');
    const only = scopes.length === 1 ? (scopes[0] as string) : '';
    if (!only.endsWith('/.default')) {
      throw new AadError(400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    }
    const resource = only.slice(0, -'/.default'.length).replace(/\/+$/, '');
    if (resource.toLowerCase() !== GRAPH_RESOURCE) {
      throw new AadError(400, 'invalid_resource', 500011, `The resource principal named ${resource} was not found in the tenant named ${tenantId}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`);
    }
    const lifetime = lifetimeForIssuedToken();
    const payload = appTokenClaims({
      version: 1, issuer: issuerV1, v1Issuer: issuerV1, audience: GRAPH_RESOURCE, tenantId,
      oid: servicePrincipalId(app.clientId), roles: [...app.graphApplicationRoles].sort(byLowerCaseName), clientAppId: app.clientId,
      times: tokenTimes({ lifetimeSeconds: lifetime }), idtyp: true, clientAuth,
    });
    const accessToken = await keys.sign(
      { ...payload, app_displayname: app.displayName, tenant_region_scope: 'NA' },
      { x5t: true, header: { nonce: opaque(32) } },
    );
    res.status(200).json({ token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: accessToken });
  };

  // ---- documents ----
  const v2Metadata = (): Record<string, unknown> => ({
    token_endpoint: `${url}/${tenantId}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${url}/${tenantId}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: issuerV2(),
    request_uri_parameter_supported: false,
    userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
    authorization_endpoint: `${url}/${tenantId}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${url}/${tenantId}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${url}/${tenantId}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
    kerberos_endpoint: `${url}/${tenantId}/kerberos`,
    ...CLOUD_METADATA,
  });

  const v1Metadata = (): Record<string, unknown> => ({
    token_endpoint: `${url}/${tenantId}/oauth2/token`,
    authorization_endpoint: `${url}/${tenantId}/oauth2/authorize`,
    device_authorization_endpoint: `${url}/${tenantId}/oauth2/devicecode`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    // The cloud's v1 metadata points at the common keys, which are the same keys the tenant signs with.
    jwks_uri: `${url}/common/discovery/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${url}/${tenantId}/oauth2/logout`,
    response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
    scopes_supported: ['openid'],
    issuer: issuerV1,
    claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'amr', 'nonce', 'email', 'given_name', 'family_name', 'nickname'],
    microsoft_multi_refresh_token: true,
    check_session_iframe: `${url}/${tenantId}/oauth2/checksession`,
    userinfo_endpoint: `${url}/${tenantId}/openid/userinfo`,
    kerberos_endpoint: `${url}/${tenantId}/kerberos`,
    ...CLOUD_METADATA,
  });

  /** Keys in Entra's order of fields; no `alg` (Entra publishes none) and no `x5c` (the emulator's signing keys have no certificates). */
  const keysDocument = (issuer: string | undefined): { keys: JWK[] } => ({
    keys: keys.publicJwks().keys.map((jwk) => ({
      kty: jwk.kty,
      use: 'sig',
      kid: jwk.kid,
      x5t: jwk.kid,
      n: jwk.n,
      e: jwk.e,
      cloud_instance_name: 'microsoftonline.com',
      ...(issuer === undefined ? {} : { issuer }),
    })),
  });

  // ---- routes ----
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(stsHeaders);

  app.get('/common/discovery/instance', kit.step('discovery.instance'), (req, res) => {
    const endpoint = req.query['authorization_endpoint'];
    if (typeof endpoint !== 'string' || endpoint === '') throw missingParameter('authorization_endpoint');
    let tenant = 'common';
    try {
      tenant = new URL(endpoint).pathname.split('/').filter((segment) => segment !== '')[0] ?? 'common';
    } catch {
      throw new AadError(400, 'invalid_instance', 50049, 'Unknown or invalid instance.');
    }
    const host = new URL(url).host;
    res.json({
      tenant_discovery_endpoint: `${url}/${tenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    });
  });

  app.get('/:tenant/v2.0/.well-known/openid-configuration', kit.step('metadata.v2'), (req, res) => {
    requireTenant(req);
    res.json(v2Metadata());
  });

  app.get('/:tenant/.well-known/openid-configuration', kit.step('metadata.v1'), (req, res) => {
    requireTenant(req);
    res.json(v1Metadata());
  });

  app.get('/:tenant/discovery/v2.0/keys', kit.step('keys.v2'), (req, res) => {
    requireTenant(req, ['common', 'organizations']);
    // Tenant-independent key sets carry the issuer template; a tenant's own keys carry its issuer
    // (whether the cloud substitutes the tenant id here is unconfirmed).
    const tenant = String(req.params['tenant']).toLowerCase();
    res.json(keysDocument(tenant === tenantId ? issuerV2() : `${url}/{tenantid}/v2.0`));
  });

  app.get('/:tenant/discovery/keys', kit.step('keys.v1'), (req, res) => {
    requireTenant(req, ['common', 'organizations']);
    // Whether v1 key documents carry `issuer` is unconfirmed; the emulator leaves it out.
    res.json(keysDocument(undefined));
  });

  app.post('/:tenant/oauth2/v2.0/token', kit.step('token'), express.text({ type: FORM, limit: '256kb' }), async (req, res) => {
    requireTenant(req);
    const params = formParameters(req);
    const grantType = params.get('grant_type');
    if (grantType === undefined || grantType === '') throw missingParameter('grant_type');
    if (grantType !== JWT_BEARER && grantType !== 'client_credentials') {
      throw new AadError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grantType}'.`);
    }
    const client = await authenticateClient(req, params);
    if (grantType === JWT_BEARER) await issueOnBehalfOf(res, params, client);
    else await issueClientCredentials(res, params, client);
  });

  app.all('/:tenant/oauth2/v2.0/token', kit.step('token'), (req) => {
    requireTenant(req);
    throw new AadError(400, 'invalid_request', 900561, `The endpoint only accepts POST, OPTIONS requests. Received a ${req.method} request.`);
  });

  // Exists only in the emulator: the local-mode CLI (`npm run token -- alice`) gets a user token here,
  // standing in for the interactive sign-in a real client app would do.
  app.post('/_local/users/:name/token', kit.step('local.userToken'), express.json({ limit: '16kb' }), async (req, res) => {
    const name = String(req.params['name']);
    const user = users.find((candidate) => candidate.name === name);
    if (user === undefined) throw new AadError(404, 'not_found', undefined, `No user named '${name}' in the local directory.`);
    const body: unknown = req.body ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AadError(400, 'invalid_request', undefined, 'The body must be a JSON object.');
    const { version, scp, lifetimeSeconds, roles } = body as Record<string, unknown>;
    // App roles assigned to the user (e.g. AcsAuth.Admin), as an admin would assign them in the portal.
    if (roles !== undefined && (!Array.isArray(roles) || roles.some((role) => typeof role !== 'string' || role.trim() === ''))) {
      throw new AadError(400, 'invalid_request', undefined, 'roles must be an array of app role names.');
    }
    if (version !== undefined && version !== 1 && version !== 2) throw new AadError(400, 'invalid_request', undefined, 'version must be 1 or 2.');
    if (scp !== undefined && (typeof scp !== 'string' || scp.trim() === '')) throw new AadError(400, 'invalid_request', undefined, 'scp must be a non-empty string.');
    if (lifetimeSeconds !== undefined && (!Number.isInteger(lifetimeSeconds) || (lifetimeSeconds as number) < 60 || (lifetimeSeconds as number) > 86_400)) {
      throw new AadError(400, 'invalid_request', undefined, 'lifetimeSeconds must be an integer between 60 and 86400.');
    }
    const lifetime = (lifetimeSeconds as number | undefined) ?? 3600;
    const accessToken = await mintAccessToken({
      user: user.name,
      version: version as 1 | 2 | undefined,
      scp: scp as string | undefined,
      lifetimeSeconds: lifetime,
      ...(roles === undefined ? {} : { roles: roles as string[] }),
    });
    res.status(200).json({ token_type: 'Bearer', access_token: accessToken, expires_in: lifetime });
  });

  // Also emulator-only: a Teams user's Entra token for ACS (what a Teams client app would obtain with
  // Teams.ManageCalls and Teams.ManageChats), issued to the first registered app, for /api/token/teams.
  app.post('/_local/users/:name/teams-token', kit.step('local.teamsToken'), (req, res, next) => {
    const name = String(req.params['name']);
    const user = users.find((candidate) => candidate.name === name);
    if (user === undefined) throw new AadError(404, 'not_found', undefined, `No user named '${name}' in the local directory.`);
    const appId = (applications[0] as ResolvedApplication).clientId;
    mintTeamsToken({ user: user.name, appId }).then(
      (accessToken) => res.status(200).json({ token_type: 'Bearer', access_token: accessToken, expires_in: 3600 }),
      next,
    );
  });

  app.use(kit.unmatched);
  app.use(aadErrorHandler(baseUrl));

  const started = await startServer(app, { tls: options.tls, host: options.host, port: options.port });
  url = started.url;

  return {
    url,
    tenantId,
    authority: `${url}/${tenantId}`,
    issuerV1,
    issuerV2: issuerV2(),
    keys,
    faults: kit.faults,
    counters: kit.counters,
    mintAccessToken,
    mintTeamsToken,
    requireInteraction: (oid, kind) => {
      if (kind !== 'mfa' && kind !== 'consent') throw new TypeError("kind must be 'mfa' or 'consent'");
      interactions.set(oid.toLowerCase(), kind);
    },
    clearInteraction: (oid) => {
      interactions.delete(oid.toLowerCase());
    },
    servicePrincipalId,
    connectionsAccepted: () => started.connectionsAccepted(),
    close: () => started.close(),
  };
}
