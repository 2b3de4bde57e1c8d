/**
 * The `scope` parameter of a sign-in and of its code and refresh token redemptions, read as the v2 endpoint
 * reads it: OpenID Connect scopes apart; every other scope names a resource (Microsoft Graph when bare, a URL or
 * App ID URI before the last `/`, or an app's client id) and a permission it publishes, or `.default`. The
 * resources are Microsoft Graph, Azure Communication Services (a Teams user's token for ACS) and the tenant's own
 * apps. A sign-in may ask for several resources (to get consent for each); a token is for one
 * (v2-oauth2-auth-code-flow.md).
 *
 * @packageDocumentation
 */
import { GRAPH_RESOURCE } from '../local-directory';
import { AadError } from './aad-error';
import { canonicalAcsPermission, isAcsResource } from './acs-permission-catalog';
import type { ResolvedApplication } from './application-registry';
import type { EntraTenant } from './entra-tenant';
import {
  canonicalDelegatedGraphPermission,
  compareScopeNames,
  graphPermissionNeedsAdminConsent,
  OIDC_SCOPES,
} from './graph-permission-catalog';
import { invalidScope, resourceNotFound } from './sts-refusals';

/** Microsoft Graph's application id, which names it in scopes too. */
const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

/**
 * The resource a scope is for: Microsoft Graph, Azure Communication Services, or an app of the tenant as the scope
 * named it (App ID URI or client id).
 */
export type ScopeResource =
  | { readonly kind: 'graph' }
  | { readonly kind: 'acs' }
  | { readonly kind: 'app'; readonly app: ResolvedApplication; readonly named: string };

/** The permissions asked of one resource: canonical names, or `.default` (all that are consented). */
export interface ResourceRequest {
  readonly resource: ScopeResource;
  readonly permissions: readonly string[] | '.default';
}

export interface RequestedScopes {
  /** OpenID Connect scopes, lower case. */
  readonly oidc: ReadonlySet<string>;
  /** Resources in the order the parameter first names them. */
  readonly resources: readonly ResourceRequest[];
}

/** What the user consented to at sign-in for one resource (`.default` resolved). */
export interface ResourceGrant {
  readonly resource: ScopeResource;
  readonly permissions: readonly string[];
}

/** A scope split into the resource it is for and the permission on that resource. */
export interface ScopeParts {
  readonly resource: string;
  readonly permission: string;
}

/** Splits one scope; `raw`, the whole parameter, is what a refusal quotes. A bare name means Graph, as on the v2 endpoint. */
export function splitScope(scope: string, raw: string): ScopeParts {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(scope) || scope.startsWith('api://') || /^[0-9a-f-]{36}\//i.test(scope)) {
    const slash = scope.lastIndexOf('/');
    if (slash < 0) throw invalidScope(raw);
    return { resource: scope.slice(0, slash).replace(/\/+$/, ''), permission: scope.slice(slash + 1) };
  }
  return { resource: GRAPH_RESOURCE, permission: scope };
}

/** The same resource, whatever spelling named it. */
export function resourceKey(resource: ScopeResource): string {
  return resource.kind === 'app' ? resource.app.clientId : resource.kind;
}

/** Reads a `scope` parameter; refuses unknown resources (AADSTS500011) and permissions they do not publish (AADSTS70011). */
export function parseRequestedScopes(tenant: EntraTenant, raw: string): RequestedScopes {
  const oidc = new Set<string>();
  const byResource = new Map<string, { resource: ScopeResource; names: string[]; wantsDefault: boolean }>();
  for (const scope of raw.split(' ').filter((value) => value !== '')) {
    if (OIDC_SCOPES.has(scope.toLowerCase())) {
      oidc.add(scope.toLowerCase());
      continue;
    }
    const { resource: named, permission } = splitScope(scope, raw);
    const resource = resolveResource(tenant, named);
    const key = resourceKey(resource);
    const entry = byResource.get(key) ?? { resource, names: [], wantsDefault: false };
    byResource.set(key, entry);
    if (permission === '.default') entry.wantsDefault = true;
    else entry.names.push(canonicalPermission(resource, permission, raw));
  }
  const resources = [...byResource.values()].map(({ resource, names, wantsDefault }): ResourceRequest => {
    // `.default` stands for every consented permission; naming others beside it is refused.
    if (wantsDefault && names.length > 0) throw invalidScope(raw);
    return { resource, permissions: wantsDefault ? '.default' : [...new Set(names)] };
  });
  return { oidc, resources };
}

function resolveResource(tenant: EntraTenant, named: string): ScopeResource {
  const lower = named.toLowerCase();
  if (lower === GRAPH_RESOURCE || lower === GRAPH_APP_ID) return { kind: 'graph' };
  if (isAcsResource(named)) return { kind: 'acs' };
  const app = tenant.applications.byAudience(named);
  if (app === undefined) throw resourceNotFound(named, tenant.tenantId);
  return { kind: 'app', app, named };
}

function canonicalPermission(resource: ScopeResource, permission: string, raw: string): string {
  const canonical =
    resource.kind === 'graph'
      ? canonicalDelegatedGraphPermission(permission)
      : resource.kind === 'acs'
        ? canonicalAcsPermission(permission)
        : resource.app.exposedScopes.find((exposed) => exposed.toLowerCase() === permission.toLowerCase());
  if (canonical === undefined) throw invalidScope(raw);
  return canonical;
}

/**
 * What a user consents to on the sign-in page: the named permissions a user may grant, or for `.default` every
 * permission the client is configured for (Graph) or the API exposes. ACS permissions only as far as an admin
 * granted them to the client ({@link ResolvedApplication.acsDelegatedScopes}). The sign-in is refused before
 * this when it names a Graph permission only an admin may grant ({@link permissionsNeedingAdminConsent}); the
 * filter keeps such a permission out of any grant all the same.
 */
export function grantsOf(client: ResolvedApplication, requested: RequestedScopes): ResourceGrant[] {
  return requested.resources.map(({ resource, permissions }) => {
    if (resource.kind === 'acs') {
      const consented = client.acsDelegatedScopes;
      return { resource, permissions: permissions === '.default' ? consented : permissions.filter((name) => consented.includes(name)) };
    }
    if (permissions !== '.default') return { resource, permissions: permissions.filter((name) => userMayGrant(client, resource, name)) };
    return { resource, permissions: resource.kind === 'graph' ? client.graphDelegatedScopes : resource.app.exposedScopes };
  });
}

/**
 * The Graph permissions a sign-in names that need an admin's consent the client lacks: Entra lets a user consent
 * only to permissions that do not require an admin; the others must have been granted to the app by an admin
 * beforehand, which {@link ResolvedApplication.graphDelegatedScopes} stands for (permissions-reference,
 * "AdminConsentRequired"; application-sign-in-unexpected-user-consent-error.md, AADSTS90094).
 */
export function permissionsNeedingAdminConsent(client: ResolvedApplication, requested: RequestedScopes): string[] {
  return requested.resources.flatMap(({ resource, permissions }) =>
    permissions === '.default' ? [] : permissions.filter((name) => !userMayGrant(client, resource, name)),
  );
}

/** A user's consent grants a Graph permission that needs no admin, or one an admin already consented to for the client. */
function userMayGrant(client: ResolvedApplication, resource: ScopeResource, permission: string): boolean {
  return resource.kind !== 'graph' || !graphPermissionNeedsAdminConsent(permission) || client.graphDelegatedScopes.includes(permission);
}

/** The resource and permissions of one token, from a redemption's `scope` and what was consented. */
export interface TokenScopes {
  readonly resource: ScopeResource;
  readonly permissions: readonly string[];
  readonly oidc: ReadonlySet<string>;
}

/**
 * The one resource a redemption asks for (OpenID scopes alone mean Microsoft Graph). The code grant refuses
 * several resources (AADSTS700022); a refresh takes the first one, as documented. Permissions beyond what
 * the user consented to are refused as Entra refuses missing consent (AADSTS65001). For ACS, consent is the
 * admin's grant to the client rather than the sign-in's: the account picker is no consent prompt, and with
 * a tenant-wide grant Entra issues a Teams token on a refresh token of any sign-in of the client, which is
 * how msal-browser's acquireTokenSilent gets one after a sign-in for another resource.
 */
export function tokenScopes(
  requested: RequestedScopes,
  granted: readonly ResourceGrant[],
  client: ResolvedApplication,
  severalResources: 'refuse' | 'first',
): TokenScopes {
  if (requested.resources.length > 1 && severalResources === 'refuse') {
    throw new AadError(
      400,
      'invalid_scope',
      700022,
      'The provided value for the input parameter scope is not valid because it contains more than one resource.',
    );
  }
  const asked = requested.resources[0] ?? { resource: { kind: 'graph' } as const, permissions: '.default' as const };
  // What the sign-in granted is checked again against what a user may grant: a token never carries a Graph
  // permission that needs an admin's consent the client lacks, whatever grant the code or refresh token holds.
  const consented =
    asked.resource.kind === 'acs'
      ? client.acsDelegatedScopes
      : (granted.find((grant) => resourceKey(grant.resource) === resourceKey(asked.resource))?.permissions ?? []).filter((name) =>
          userMayGrant(client, asked.resource, name),
        );
  const permissions = asked.permissions === '.default' ? consented : asked.permissions;
  const missing = permissions.some((name) => !consented.some((given) => given.toLowerCase() === name.toLowerCase()));
  if (missing || (asked.permissions === '.default' && consented.length === 0 && requested.resources.length > 0)) {
    throw consentRequired(client);
  }
  return { resource: asked.resource, permissions: [...permissions].sort(compareScopeNames), oidc: requested.oidc };
}

/**
 * The user has not consented to what is asked (AADSTS65001). The token endpoint answers `invalid_grant` with
 * suberror `consent_required`; a silent sign-in (`prompt=none`) answers at the redirect URI with OpenID Connect's
 * `consent_required` error (OpenID Connect Core 1.0 §3.1.2.6). msal reads either as an InteractionRequiredAuthError.
 */
export function consentRequired(client: ResolvedApplication, endpoint: 'token' | 'authorize' = 'token'): AadError {
  const text = `The user or administrator has not consented to use the application with ID '${client.clientId}' named '${client.displayName}'. Send an interactive authorization request for this user and resource.`;
  return endpoint === 'token'
    ? new AadError(400, 'invalid_grant', 65001, text, { suberror: 'consent_required' })
    : new AadError(400, 'consent_required', 65001, text);
}

/**
 * Entra's "Need admin approval" page (AADSTS90094, application-sign-in-unexpected-user-consent-error.md): the
 * sign-in asks for permissions only an admin may grant and no admin has. It is shown to the user, not sent to the app.
 */
export function adminConsentRequired(client: ResolvedApplication): AadError {
  return new AadError(
    400,
    'access_denied',
    90094,
    `${client.displayName} needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it.`,
  );
}
