import { loadConfig } from '../../src/config/config';
import { pageSettingsOf, TEAMS_EXCHANGE_SCOPES } from '../../src/web/page-settings';
import { contentSecurityPolicy } from '../../src/web/web-page';
import { TEST_API_CLIENT_ID as API, TEST_TENANT_ID as TENANT, VALID_AZURE_SETTINGS } from '../helpers/azure-settings';

const SPA = '77777777-8888-4999-aaaa-bbbbbbbbbbbb';
const azure = { ...VALID_AZURE_SETTINGS, WEB_PAGE_CLIENT_ID: SPA };

describe('the page settings in Azure mode', () => {
  it('sign in at the tenant of the authority host, for the API scope on its App ID URI', () => {
    const settings = pageSettingsOf(loadConfig(azure), SPA, undefined);
    expect(settings).toEqual({
      mode: 'azure',
      clientId: SPA,
      authority: `https://login.microsoftonline.com/${TENANT}`,
      knownAuthorities: [],
      authorityMetadataUrl: undefined,
      apiScope: `api://${API}/access_as_user`,
      teams: { scopes: TEAMS_EXCHANGE_SCOPES, exchange: false },
    });
    expect(contentSecurityPolicy(settings)).toContain("connect-src 'self' https://login.microsoftonline.com;");
  });

  it('follow ENTRA_APP_ID_URI, ENTRA_REQUIRED_SCOPE and a national cloud', () => {
    const config = loadConfig({
      ...azure,
      ENTRA_APP_ID_URI: 'https://contoso.example/acs-auth',
      ENTRA_REQUIRED_SCOPE: 'Acs.Token',
      ENTRA_AUTHORITY_HOST: 'https://login.microsoftonline.us',
    });
    const settings = pageSettingsOf(config, SPA, undefined);
    expect(settings.apiScope).toBe('https://contoso.example/acs-auth/Acs.Token');
    expect(settings.authority).toBe(`https://login.microsoftonline.us/${TENANT}`);
  });

  it("offer the Teams exchange only when TEAMS_CLIENT_ID is the page's app (ACS checks the token's appid)", () => {
    expect(pageSettingsOf(loadConfig({ ...azure, TEAMS_CLIENT_ID: SPA }), SPA, undefined).teams.exchange).toBe(true);
  });
});
