import { GRAPH_RESOURCE } from '../local-directory';

/**
 * The Microsoft Graph permissions the Entra emulator knows, with their canonical spelling.
 * Entra treats permission names case-insensitively and rejects names the resource does not
 * publish (AADSTS70011), so the emulator needs the list. It is a small subset of Graph's.
 *
 * Each delegated permission says whether only an admin may grant it: the "AdminConsentRequired" row of the
 * Microsoft Graph permissions reference (https://learn.microsoft.com/en-us/graph/permissions-reference). A user
 * signing in can consent to the others for themselves; these need an admin's consent for the app, or Entra
 * refuses the sign-in with AADSTS90094 ("…needs permission to access resources in your organization that only an
 * admin can grant", https://learn.microsoft.com/en-us/entra/identity/enterprise-apps/application-sign-in-unexpected-user-consent-error).
 */
const DELEGATED: ReadonlyMap<string, { readonly adminConsent: boolean }> = new Map([
  ['User.Read', { adminConsent: false }],
  ['User.ReadWrite', { adminConsent: false }],
  ['User.ReadBasic.All', { adminConsent: false }],
  ['User.Read.All', { adminConsent: true }],
  ['User.ReadWrite.All', { adminConsent: true }],
  ['Directory.Read.All', { adminConsent: true }],
  ['Directory.AccessAsUser.All', { adminConsent: true }],
  ['Group.Read.All', { adminConsent: true }],
  ['Mail.Read', { adminConsent: false }],
  ['Calendars.Read', { adminConsent: false }],
  ['Files.Read', { adminConsent: false }],
]);

const APPLICATION = ['User.Read.All', 'User.ReadWrite.All', 'Directory.Read.All', 'Directory.ReadWrite.All', 'Group.Read.All'] as const;

/** OpenID Connect scopes: not Graph permissions, though Entra lists the first three in Graph tokens' `scp`. */
export const OIDC_SCOPES: ReadonlySet<string> = new Set(['openid', 'profile', 'email', 'offline_access']);

const byLowerCase = (names: readonly string[]): ReadonlyMap<string, string> => new Map(names.map((name) => [name.toLowerCase(), name]));
const DELEGATED_BY_LOWER = byLowerCase([...DELEGATED.keys()]);
const APPLICATION_BY_LOWER = byLowerCase(APPLICATION);

/** Canonical name of a delegated Graph permission, or undefined when Graph publishes no such permission. */
export function canonicalDelegatedGraphPermission(name: string): string | undefined {
  return DELEGATED_BY_LOWER.get(name.toLowerCase());
}

/** True when only an admin may grant this delegated Graph permission (canonical name); a name not listed counts as one, failing closed. */
export function graphPermissionNeedsAdminConsent(permission: string): boolean {
  return DELEGATED.get(permission)?.adminConsent ?? true;
}

/** Canonical name of a Graph application permission (app role), or undefined. */
export function canonicalApplicationGraphPermission(name: string): string | undefined {
  return APPLICATION_BY_LOWER.get(name.toLowerCase());
}

/** `https://graph.microsoft.com/User.Read` for `User.Read`, the form token responses use in `scope`. */
export function graphScopeUrl(permission: string): string {
  return `${GRAPH_RESOURCE}/${permission}`;
}

/** Entra lists permission and scope names in `scp`, `roles` and `scope` case-insensitively sorted. */
export function compareScopeNames(a: string, b: string): number {
  return a.toLowerCase().localeCompare(b.toLowerCase());
}
