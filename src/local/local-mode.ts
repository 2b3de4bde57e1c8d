/**
 * Everything the service does only in local mode: start the emulators, tell the `token` and `mappings`
 * commands where they are (the session and admin files), print the banner, and clean up on stop.
 * `server.ts` loads this module with a dynamic import when local mode starts, so a deployment in Azure
 * mode never loads an emulator, node-forge or this file (a test checks the loaded modules).
 *
 * @packageDocumentation
 */

import type { Logger } from '../observability/logger';
import { startLocalAzure, type LocalAzure, type LocalAzureOptions } from './local-azure';
import { LOCAL_SPA_CLIENT_ID, LOCAL_TENANT_ID } from './local-directory';
import { adminFilePath, removeLocalFile, removeLocalSession, sessionFilePath, writeLocalAdmin, writeLocalSession } from './local-session';

/** Local mode, started: the emulators and what the service does with them around its own start and stop. */
export interface LocalMode {
  /** The running emulators, for tests and the admin command. */
  readonly azure: LocalAzure;
  /** Settings that point the service at the emulators (layered over the caller's environment). */
  readonly settings: Readonly<Record<string, string>>;
  /** The throwaway CA that signed the emulators' TLS certificates. */
  readonly caCertPem: string;
  /** Once the service listens: write the session files, log the emulators and print the banner. */
  announce(serviceUrl: string, logger: Logger, options: { readonly banner: boolean }): Promise<void>;
  /** Remove the session files (only if this process wrote them) and stop the emulators. */
  close(): Promise<void>;
}

export interface LocalModeOptions {
  /** Where the `token` command finds this run; `.local-azure/session.json` in the working folder by default. */
  readonly sessionFile?: string;
  /** MAPPING_STORE of the run: `table` starts Azurite's Table service too and points the service at it. */
  readonly mappingStore?: 'graph' | 'table';
  /**
   * Serve the sign-in page (WEB_PAGE not off): the Entra emulator then also listens on plain http on loopback
   * for the browser, and the settings name the sample SPA as the page's app (WEB_PAGE_CLIENT_ID).
   */
  readonly webPage?: boolean;
  /** Further emulator options, for tests (short-lived ACS tokens, say). */
  readonly localAzure?: Pick<LocalAzureOptions, 'acsTokenLifetimeSeconds' | 'certificates' | 'rsaKeys'>;
}

export async function startLocalMode(options: LocalModeOptions = {}): Promise<LocalMode> {
  const sessionFile = options.sessionFile ?? sessionFilePath();
  // This run's secrets for the admin command (mode 0600), next to the session file.
  const adminFile = adminFilePath(sessionFile);
  const azure = await startLocalAzure({
    ...options.localAzure,
    ...(options.mappingStore === undefined ? {} : { mappingStore: options.mappingStore }),
    ...(options.webPage === true ? { browserSignIn: {} } : {}),
  });
  return {
    azure,
    settings: options.webPage === true ? { ...azure.settings, WEB_PAGE_CLIENT_ID: LOCAL_SPA_CLIENT_ID } : azure.settings,
    caCertPem: azure.caCertPem,
    async announce(serviceUrl, logger, { banner }) {
      await writeLocalSession(
        { serviceUrl, entraUrl: azure.entra.url, tenantId: LOCAL_TENANT_ID, caCertPem: azure.caCertPem, pid: process.pid },
        sessionFile,
      );
      await writeLocalAdmin({ settings: azure.settings, caCertPem: azure.caCertPem, pid: process.pid }, adminFile);
      const store = azure.tables === undefined ? { graph: azure.graph.url } : { tables: azure.tables.url };
      logger.warn({ mode: 'local', entra: azure.entra.url, ...store, acs: azure.acs.url }, 'running on local emulators');
      if (banner)
        process.stderr.write(bannerText(serviceUrl, azure.tables === undefined ? 'graph' : 'table', azure.entra.browserUrl !== undefined));
    },
    async close() {
      await removeLocalSession(sessionFile);
      await removeLocalFile(adminFile);
      await azure.close();
    },
  };
}

function bannerText(url: string, store: 'graph' | 'table', page: boolean): string {
  const line = '='.repeat(78);
  return [
    line,
    store === 'graph'
      ? ' acs-auth-server is running on LOCAL EMULATORS of Entra ID, Microsoft Graph and ACS Identity.'
      : " acs-auth-server is running on LOCAL EMULATORS of Entra ID and ACS Identity, with the mappings\n in Azurite's Table service (MAPPING_STORE=table: no Graph, no Entra credential).",
    ' Nothing here talks to Azure. Identities, mappings and tokens live in memory until you stop it.',
    ` Tenant ${LOCAL_TENANT_ID}; demo users: alice, bob, carol.`,
    '',
    ...(page ? [` Open ${url}/ in a browser and sign in as a demo user (WEB_PAGE=off turns the page off).`, ''] : []),
    ' Get a token for a demo user and call the API:',
    `   curl -X POST -H "Authorization: Bearer $(npm run -s token -- alice)" ${url}/api/user`,
    `   curl -H "Authorization: Bearer $(npm run -s token -- alice)" ${url}/api/token`,
    '',
    ' To run against Azure, set the ENTRA_*, ACS_* settings (see .env.sample and docs/configuration.md).',
    line,
    '',
  ].join('\n');
}
