/**
 * A local Microsoft Entra ID (AAD STS) for local mode and tests: tenant metadata (v1 and v2), signing
 * keys, the v2 token endpoint (On-Behalf-Of, client credentials, authorization code with PKCE, refresh
 * token), the authorize endpoint with an account picker for the demo users, logout, and helpers that mint
 * the user tokens a real tenant would issue to this API. Apps authenticate with a client secret or a certificate
 * (a signed client assertion). It is as strict as Entra on what it accepts, and it answers refusals with
 * Entra's error envelope and AADSTS codes, so msal-node raises the same errors it raises against the
 * real service.
 *
 * This module holds the public types and puts the pieces together. As in the ACS and Graph emulators
 * (and node-oidc-provider), each endpoint is an action in `actions/`, each grant type of the token
 * endpoint is in `actions/grants/`, and the route table below is the map to them.
 *
 * @packageDocumentation
 */
import express from 'express';
import { createEmulatorKit, type EmulatorKit, type FaultInjector, type RequestCounters } from '../kit/faults';
import { startServer, type StartedServer } from '../kit/start-server';
import { isLoopbackHost } from '../../validation/formats';
import type { DemoUser } from '../local-directory';
import { aadEnvelope, aadErrorHandler, stsHeaders } from './aad-error';
import { discoveryKeysV1Action, discoveryKeysV2Action } from './actions/discovery-keys';
import { authorizeAction, authorizeFormBody } from './actions/authorize';
import { instanceDiscoveryAction } from './actions/instance-discovery';
import { localTeamsTokenAction, localUserTokenAction, localUserTokenBody } from './actions/local-tokens';
import { openIdConfigurationV1Action, openIdConfigurationV2Action } from './actions/openid-configuration';
import { logoutAction } from './actions/logout';
import { signInAction } from './actions/sign-in';
import { tokenAction, tokenOtherMethodsAction } from './actions/token';
import { publicDocumentCors, tokenCors, tokenPreflightAction } from './cross-origin';
import { EntraTenant } from './entra-tenant';
import { listenerUrlStep } from './listener-url';
import type { SigningKeySet } from './signing-keys';
import { mintAccessToken, mintTeamsToken } from './token-minting';
import { tokenRequestBody } from './token-request';

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
  /**
   * Delegated permissions of Azure Communication Services (`Teams.ManageCalls`, `Teams.ManageChats`) an admin granted
   * to this app: a code or refresh token of any sign-in of the app gets a Teams user's token for ACS with these (the
   * resource's `.default` stands for them); any other is refused as unconsented (AADSTS65001).
   */
  readonly acsDelegatedScopes?: readonly string[];
  /**
   * The Single-page application platform (`spa.redirectUris`): the authorization code flow with PKCE, codes and
   * refresh tokens redeemed only cross-origin (with an `Origin` header) and without a credential.
   */
  readonly spa?: { readonly redirectUris: readonly string[] };
  /** The Web platform (`web.redirectUris`): codes redeemed server-side (no `Origin`) with the app's secret or certificate. */
  readonly web?: { readonly redirectUris: readonly string[] };
  /** Delegated permissions this app exposes as an API (`api.oauth2PermissionScopes`), e.g. `access_as_user`. */
  readonly exposedScopes?: readonly string[];
  /** `api.requestedAccessTokenVersion`: the format of access tokens issued for this app as a resource (default 1, as `null`). */
  readonly accessTokenVersion?: 1 | 2;
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
  /**
   * Also answer over plain http on loopback, for browsers: they cannot trust the throwaway CA of the https
   * listener. The same tenant, keys and state answer on both; tokens are identical (issuers stay https).
   * Services keep using https and the CA.
   */
  readonly browserHttp?: { readonly port?: number };
  /** The emulator's clock in epoch milliseconds (default `Date.now`): tests move it to expire codes and refresh tokens. */
  readonly clock?: () => number;
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
  /** `iat` in epoch seconds (default now); `exp` = `iat` + lifetime. */
  readonly issuedAt?: number;
  /** Default `Teams.ManageCalls Teams.ManageChats`. */
  readonly scp?: string;
  /** How the client app authenticated (`appidacr`): "0" a public client (default), "1" a secret, "2" a certificate. */
  readonly clientAuth?: '0' | '1' | '2';
}

/** What Entra demands before it issues a token for this user: MFA (conditional access) or consent. */
export type InteractionKind = 'mfa' | 'consent';

export interface EntraEmulator {
  /** Base URL, e.g. `https://127.0.0.1:49152` (the authority host). */
  readonly url: string;
  readonly tenantId: string;
  /** `${url}/${tenantId}`: the msal authority. */
  readonly authority: string;
  /** Base URL of the plain-http loopback listener for browsers (`browserHttp`), e.g. `http://127.0.0.1:49153`; else undefined. */
  readonly browserUrl: string | undefined;
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
  /**
   * Route names: `metadata.v1`, `metadata.v2`, `keys.v1`, `keys.v2`, `discovery.instance`, `authorize`, `signIn`, `token`,
   * `token.preflight`, `logout`, `local.userToken`, `local.teamsToken`, `unmatched`.
   */
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

/**
 * Starts the Entra ID emulator over HTTPS (MSAL refuses other schemes) on loopback, port 0 by default, and
 * with `browserHttp` also over plain http on loopback for browsers.
 * Throws a TypeError for invalid options (non-GUID ids, unknown Graph permission names, no applications).
 */
export async function createEntraEmulator(options: EntraEmulatorOptions): Promise<EntraEmulator> {
  const tenant = await EntraTenant.create(options);
  const kit = createEmulatorKit(aadEnvelope(() => tenant.baseUrl()));
  const started = await startServer(
    entraRoutes(tenant, kit, () => tenant.baseUrl()),
    {
      tls: options.tls,
      host: options.host,
      port: options.port,
    },
  );
  tenant.listeningAt(started.url);
  let browser: StartedServer | undefined;
  try {
    browser = await startBrowserListener(tenant, kit, options);
  } catch (error) {
    await started.close();
    throw error;
  }
  const { url } = started;
  return {
    url,
    tenantId: tenant.tenantId,
    authority: `${url}/${tenant.tenantId}`,
    browserUrl: browser?.url,
    issuerV1: tenant.issuerV1,
    issuerV2: tenant.issuerV2(),
    keys: tenant.keys,
    faults: kit.faults,
    counters: kit.counters,
    mintAccessToken: (mintOptions) => mintAccessToken(tenant, mintOptions),
    mintTeamsToken: (mintOptions) => mintTeamsToken(tenant, mintOptions),
    requireInteraction: (oid, kind) => {
      tenant.interactions.require(oid, kind);
    },
    clearInteraction: (oid) => {
      tenant.interactions.clear(oid);
    },
    servicePrincipalId: (clientId) => tenant.servicePrincipalId(clientId),
    connectionsAccepted: () => started.connectionsAccepted() + (browser?.connectionsAccepted() ?? 0),
    close: async () => {
      await Promise.all([started.close(), browser?.close()]);
    },
  };
}

/** The plain-http listener for browsers, on loopback only: it serves sign-ins and tokens without TLS. */
async function startBrowserListener(
  tenant: EntraTenant,
  kit: EmulatorKit,
  options: EntraEmulatorOptions,
): Promise<StartedServer | undefined> {
  if (options.browserHttp === undefined) return undefined;
  const host = options.host ?? '127.0.0.1';
  if (!isLoopbackHost(host)) throw new TypeError(`browserHttp serves plain http, so only on loopback; host is '${host}'`);
  let url = '';
  const browser = await startServer(
    entraRoutes(tenant, kit, () => url, { browser: true }),
    { host, port: options.browserHttp.port ?? 0 },
  );
  url = browser.url;
  return browser;
}

/** The route table: every path the emulator answers, the name it is counted (and faulted) under, and its handler. */
function entraRoutes(
  tenant: EntraTenant,
  kit: EmulatorKit,
  listenerUrl: () => string,
  listener: { readonly browser: boolean } = { browser: false },
): express.Express {
  const routes = express();
  routes.disable('x-powered-by');
  routes.set('etag', false);
  // Plain http can be reached by any web page through DNS rebinding (a name of theirs resolving to 127.0.0.1); the
  // Host header then names their domain. https is safe from it, since the certificate names only loopback.
  if (listener.browser) routes.use(requireLoopbackHost);
  routes.use(listenerUrlStep(listenerUrl), stsHeaders);

  const discovery = [publicDocumentCors, kit.step('discovery.instance'), instanceDiscoveryAction()];
  routes.get('/common/discovery/instance', ...discovery);
  routes.get(
    '/:tenant/v2.0/.well-known/openid-configuration',
    publicDocumentCors,
    kit.step('metadata.v2'),
    openIdConfigurationV2Action(tenant),
  );
  routes.get('/:tenant/.well-known/openid-configuration', publicDocumentCors, kit.step('metadata.v1'), openIdConfigurationV1Action(tenant));
  routes.get('/:tenant/discovery/v2.0/keys', publicDocumentCors, kit.step('keys.v2'), discoveryKeysV2Action(tenant));
  routes.get('/:tenant/discovery/keys', publicDocumentCors, kit.step('keys.v1'), discoveryKeysV1Action(tenant));
  routes.get('/:tenant/oauth2/v2.0/authorize', kit.step('authorize'), authorizeAction(tenant));
  routes.post('/:tenant/oauth2/v2.0/authorize', kit.step('authorize'), authorizeFormBody, authorizeAction(tenant));
  routes.post('/:tenant/login', kit.step('signIn'), authorizeFormBody, signInAction(tenant));
  routes.options('/:tenant/oauth2/v2.0/token', tokenCors(tenant), kit.step('token.preflight'), tokenPreflightAction(tenant));
  routes.post('/:tenant/oauth2/v2.0/token', tokenCors(tenant), kit.step('token'), tokenRequestBody, tokenAction(tenant));
  routes.all('/:tenant/oauth2/v2.0/token', kit.step('token'), tokenOtherMethodsAction(tenant));
  routes.get('/:tenant/oauth2/v2.0/logout', kit.step('logout'), logoutAction(tenant));
  routes.post('/:tenant/oauth2/v2.0/logout', kit.step('logout'), authorizeFormBody, logoutAction(tenant));
  // Emulator only: stand-ins for the interactive sign-ins of real client apps (see actions/local-tokens.ts). Not on
  // the browsers' listener, which has no need of them.
  if (!listener.browser) {
    routes.post('/_local/users/:name/token', kit.step('local.userToken'), localUserTokenBody, localUserTokenAction(tenant));
    routes.post('/_local/users/:name/teams-token', kit.step('local.teamsToken'), localTeamsTokenAction(tenant));
  }

  routes.use(kit.unmatched);
  routes.use(aadErrorHandler(() => tenant.baseUrl()));
  return routes;
}

/**
 * Refuses a request whose Host is not a loopback name (421, as for a request sent to the wrong server), and one
 * with no Host at all (HTTP/1.0), which names no host to trust either.
 */
const requireLoopbackHost: express.RequestHandler = (req, res, next) => {
  // Express types `hostname` as a string, but it is undefined when the request has no Host header.
  const hostname: string | undefined = req.hostname;
  if (hostname !== undefined && isLoopbackHost(hostname)) {
    next();
    return;
  }
  res.status(421).type('text/plain').send('This listener answers only to a loopback host name.');
};
