/**
 * Azure Communication Services as a resource of delegated permissions: the first-party app a Teams user's token
 * for ACS is issued for. It publishes `Teams.ManageCalls` and `Teams.ManageChats` (delegated, no admin consent
 * required; ACS exchanges a token only when it carries both), named in scopes by its resource URI or its app id.
 * Sources: azure-ad-api-permissions.md (Communication Services, "Microsoft Entra permissions for communication as
 * Teams user") and manage-teams-identity.md (`New-MgServicePrincipal -AppId "1fd5118e-…"`). It publishes more
 * (VoIP, Teams Phone extensibility) that the emulator does not know, so asking for them is AADSTS70011 here.
 *
 * @packageDocumentation
 */
import { ACS_TEAMS_AUDIENCE } from '../local-directory';

/** The application id of the Azure Communication Services first-party app, which names the resource in scopes too. */
export const ACS_APP_ID = '1fd5118e-2576-4263-8130-9503064c837a';

const TEAMS_PERMISSIONS = ['Teams.ManageCalls', 'Teams.ManageChats'] as const;

const TEAMS_PERMISSIONS_BY_LOWER: ReadonlyMap<string, string> = new Map(TEAMS_PERMISSIONS.map((name) => [name.toLowerCase(), name]));

/** True when a scope's resource part names ACS: its resource URI or its app id, in any case. */
export function isAcsResource(named: string): boolean {
  const lower = named.toLowerCase();
  return lower === ACS_TEAMS_AUDIENCE || lower === ACS_APP_ID;
}

/** Canonical name of a delegated ACS permission, or undefined when ACS publishes no such permission (as far as the emulator knows). */
export function canonicalAcsPermission(name: string): string | undefined {
  return TEAMS_PERMISSIONS_BY_LOWER.get(name.toLowerCase());
}

/** `https://auth.msft.communication.azure.com/Teams.ManageCalls` for `Teams.ManageCalls`, the form of a token response's `scope`. */
export function acsScopeUrl(permission: string): string {
  return `${ACS_TEAMS_AUDIENCE}/${permission}`;
}
