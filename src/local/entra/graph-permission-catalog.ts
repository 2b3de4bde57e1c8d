import { GRAPH_RESOURCE } from '../local-directory';

/**
 * The Microsoft Graph permissions the Entra emulator knows, with their canonical spelling.
 * Entra treats permission names case-insensitively and rejects names the resource does not
 * publish (AADSTS70011), so the emulator needs the list. It is a small subset of Graph's.
 */
const DELEGATED = [
  'User.Read',
  'User.ReadWrite',
  'User.ReadBasic.All',
  'User.Read.All',
  'User.ReadWrite.All',
  'Directory.Read.All',
  'Directory.AccessAsUser.All',
  'Group.Read.All',
  'Mail.Read',
  'Calendars.Read',
  'Files.Read',
] as const;

const APPLICATION = ['User.Read.All', 'User.ReadWrite.All', 'Directory.Read.All', 'Directory.ReadWrite.All', 'Group.Read.All'] as const;

/** OpenID Connect scopes: not Graph permissions, though Entra lists the first three in Graph tokens' `scp`. */
export const OIDC_SCOPES: ReadonlySet<string> = new Set(['openid', 'profile', 'email', 'offline_access']);

const byLowerCase = (names: readonly string[]): ReadonlyMap<string, string> => new Map(names.map((name) => [name.toLowerCase(), name]));
const DELEGATED_BY_LOWER = byLowerCase(DELEGATED);
const APPLICATION_BY_LOWER = byLowerCase(APPLICATION);

/** Canonical name of a delegated Graph permission, or undefined when Graph publishes no such permission. */
export function canonicalDelegatedGraphPermission(name: string): string | undefined {
  return DELEGATED_BY_LOWER.get(name.toLowerCase());
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
