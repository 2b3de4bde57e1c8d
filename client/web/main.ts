/**
 * The sign-in page served at `/`: sign in (msal-browser, redirect + PKCE), get or create the user's ACS
 * identity, keep an ACS token fresh, exchange a Teams token, revoke and delete, and show the API's errors.
 * Bundled by client/web/build.mjs into dist/web/app.js; no inline script, so the page's CSP stays strict.
 */
import { fetchPageSettings, type PageSettings } from './page-settings';
import { createServiceApi, ServiceError, type ServiceApi } from './service-api';
import { startSignIn, type SignIn } from './sign-in';
import { startTokenPanel, type TokenPanel } from './token-panel';
import { onClick, setShown, setText, showError } from './view';

const serviceUrl = window.location.origin;

async function main(): Promise<void> {
  const settings = await fetchPageSettings();
  showMode(settings);
  const signIn = await startSignIn(settings);
  setShown('loading', false);
  if (signIn.account === undefined) {
    setShown('signed-out', true);
    onClick('sign-in', () => signIn.signIn());
    return;
  }
  setShown('signed-in', true);
  setText('account-name', signIn.account.name ?? signIn.account.username);
  setText('account-username', signIn.account.username);
  onClick('sign-out', () => signIn.signOut());

  const api = createServiceApi(serviceUrl, () => signIn.apiToken());
  // The service's 401 interaction_required (MFA, conditional access, consent) is answered by signing in again.
  const fail = (error: unknown): void => {
    if (error instanceof ServiceError && error.code === 'interaction_required') signIn.answerClaimsChallenge(error.claims).catch(showError);
    else showError(error);
  };
  setUpTeams(settings, signIn, api, fail);
  await identitySection(signIn, api, fail).load().catch(fail);
}

function showMode(settings: PageSettings): void {
  if (settings.mode !== 'local') return;
  setText('mode', 'Local mode: you sign in to the Entra ID emulator as a demo user, and nothing here reaches Azure.');
  setShown('mode', true);
  setText('signed-out-text', 'Sign in as one of the demo users (alice, bob, carol) to get an ACS identity and a token for it.');
}

/** The identity and its token: load (get or create), revoke, delete, create again. */
function identitySection(signIn: SignIn, api: ServiceApi, fail: (error: unknown) => void): { load(): Promise<void> } {
  let panel: TokenPanel | undefined;
  /** The identity on screen, so a token for another one (created after a delete elsewhere) updates it. */
  let shown: string | undefined;
  const startPanel = (): void => {
    panel?.dispose();
    panel = startTokenPanel({
      serviceUrl,
      getEntraToken: ({ claims }) => signIn.apiToken(claims),
      onClaimsChallenge: (claims) => {
        signIn.answerClaimsChallenge(claims).catch(showError);
      },
      onIdentity: (identity) => {
        if (identity !== shown) showIdentity(identity, 'Your identity was deleted elsewhere; this is the new one:');
      },
    });
  };
  const showIdentity = (identity: string | undefined, status: string): void => {
    shown = identity;
    setText('identity', identity ?? '');
    setText('identity-status', status);
    setShown('create-identity', identity === undefined);
    setShown('delete-identity', identity !== undefined);
  };
  const load = async (): Promise<void> => {
    const { identity, created } = await api.getOrCreateIdentity();
    showIdentity(identity, created ? 'Created for you just now:' : 'Your identity:');
    startPanel();
  };
  onClick('create-identity', load, fail);
  onClick(
    'revoke-tokens',
    async () => {
      try {
        await api.revokeTokens();
      } catch (error) {
        // Deleted elsewhere (another tab, an admin): say so rather than keep showing an identity that is gone.
        if (!(error instanceof ServiceError && error.code === 'identity_not_found')) throw error;
        panel?.dispose();
        panel = undefined;
        showIdentity(undefined, 'You have no ACS identity now: it was deleted elsewhere.');
        return;
      }
      // The credential still holds a token ACS now refuses: start over with a new one.
      startPanel();
      setText('identity-status', 'Tokens revoked; a new token was issued:');
    },
    fail,
  );
  onClick(
    'delete-identity',
    async () => {
      panel?.dispose();
      panel = undefined;
      await api.deleteIdentity();
      showIdentity(undefined, 'Deleted: you have no ACS identity now.');
    },
    fail,
  );
  return { load };
}

function setUpTeams(settings: PageSettings, signIn: SignIn, api: ServiceApi, fail: (error: unknown) => void): void {
  if (!settings.teams.exchange) {
    setText('teams-text', "This deployment exchanges Teams tokens of another app (TEAMS_CLIENT_ID), not this page's.");
    setShown('teams-exchange', false);
    return;
  }
  const exchange = async (): Promise<void> => {
    const { expiresOn } = await api.exchangeTeamsToken(await signIn.teamsToken());
    setText('teams-result', `Exchanged: an ACS token for your Teams identity, valid until ${new Date(expiresOn).toLocaleString()}.`);
  };
  onClick('teams-exchange', exchange, fail);
  // Back from the redirect that got the Teams token: finish what the click started.
  const scopes = signIn.redirectResult?.scopes.map((scope) => scope.toLowerCase()) ?? [];
  if (settings.teams.scopes.every((scope) => scopes.includes(scope.toLowerCase()))) exchange().catch(fail);
}

main().catch((error: unknown) => {
  setShown('loading', false);
  showError(error);
});
