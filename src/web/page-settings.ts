/**
 * What the sign-in page (client/web/) is told about this deployment, at `/page-settings.json`: which app it
 * signs in as, where, and for which scopes. All of it is public (an SPA's client id and its authority are in
 * every sign-in URL), so nothing secret may ever be added here.
 *
 * @packageDocumentation
 */

import type { Config } from '../config/config';

/** The ACS resource's delegated permissions a Teams user's token must carry for the exchange. */
export const TEAMS_EXCHANGE_SCOPES: readonly string[] = Object.freeze([
  'https://auth.msft.communication.azure.com/Teams.ManageCalls',
  'https://auth.msft.communication.azure.com/Teams.ManageChats',
]);

export interface PageSettings {
  /** `local` when the service runs on the emulators: the page then says the users are demo users. */
  readonly mode: 'local' | 'azure';
  /** The page's own Single-page application registration (WEB_PAGE_CLIENT_ID). */
  readonly clientId: string;
  /** msal-browser's authority: `<authority host>/<tenant id>`, https. */
  readonly authority: string;
  /** Hosts msal-browser trusts without asking instance discovery (the emulator's); empty in Azure. */
  readonly knownAuthorities: readonly string[];
  /**
   * Local mode: where the browser reads the authority's OpenID metadata, on the Entra emulator's plain-http
   * loopback listener. msal-browser refuses an http authority but takes its metadata as given, so the
   * browser signs in over http on loopback without trusting the emulators' throwaway CA.
   */
  readonly authorityMetadataUrl: string | undefined;
  /** The scope the API requires, on its App ID URI (`api://<client id>/access_as_user`). */
  readonly apiScope: string;
  readonly teams: {
    /** The ACS permissions a Teams user's token needs. */
    readonly scopes: readonly string[];
    /** False when TEAMS_CLIENT_ID names another app: ACS would refuse the page's Teams tokens. */
    readonly exchange: boolean;
  };
}

/** The Entra emulator's listener for browsers, in local mode. */
export interface LocalBrowserSignIn {
  /** Its base URL, `http://127.0.0.1:<port>`. */
  readonly browserUrl: string;
}

/** The page's settings for a service with the page on; `local` only in local mode. */
export function pageSettingsOf(config: Pick<Config, 'entra'>, clientId: string, local: LocalBrowserSignIn | undefined): PageSettings {
  const { entra } = config;
  const appIdUri = entra.audiences.find((audience) => audience !== entra.clientId) ?? `api://${entra.clientId}`;
  return {
    mode: local === undefined ? 'azure' : 'local',
    clientId,
    authority: `${entra.authorityHost}/${entra.tenantId}`,
    knownAuthorities: local === undefined ? [] : [new URL(entra.authorityHost).host],
    authorityMetadataUrl: local === undefined ? undefined : `${local.browserUrl}/${entra.tenantId}/v2.0/.well-known/openid-configuration`,
    apiScope: `${appIdUri}/${entra.requiredScope}`,
    teams: { scopes: TEAMS_EXCHANGE_SCOPES, exchange: entra.teamsClientId === clientId },
  };
}

/** The origins the page talks to besides its own: the authority, and in local mode the emulator's browser listener. */
export function signInOrigins(settings: PageSettings): string[] {
  const origins = [new URL(settings.authority).origin];
  if (settings.authorityMetadataUrl !== undefined) origins.push(new URL(settings.authorityMetadataUrl).origin);
  return [...new Set(origins)];
}
