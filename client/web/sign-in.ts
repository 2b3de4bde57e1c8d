/**
 * Sign-in with msal-browser: the redirect flow with PKCE, as the page's own Single-page application. In local
 * mode the authority is the Entra emulator; its OpenID metadata comes from the emulator's plain-http loopback
 * listener (msal-browser refuses an http authority, but takes metadata as given), so the browser needs no
 * trust in the emulators' throwaway CA.
 */
import {
  createStandardPublicClientApplication,
  InteractionRequiredAuthError,
  type AccountInfo,
  type AuthenticationResult,
  type Configuration,
} from '@azure/msal-browser';

import type { PageSettings } from './page-settings';

export interface SignIn {
  /** The signed-in account, if any. */
  readonly account: AccountInfo | undefined;
  /** What the redirect that loaded this page brought back (after sign-in or a token redirect), if anything. */
  readonly redirectResult: AuthenticationResult | null;
  signIn(): Promise<void>;
  signOut(): Promise<void>;
  /** An access token for the API; with `claims` (a claims challenge) Entra ID is asked again with them. */
  apiToken(claims?: string): Promise<string>;
  /** A Teams user's Entra ID token for ACS. */
  teamsToken(): Promise<string>;
  /** A claims challenge (MFA, conditional access, consent): sign in again for the API with those claims. */
  answerClaimsChallenge(claims: string | undefined): Promise<void>;
}

export async function startSignIn(settings: PageSettings): Promise<SignIn> {
  const msal = await createStandardPublicClientApplication(await msalConfiguration(settings));
  const redirectResult = await msal.handleRedirectPromise();
  if (redirectResult?.account) msal.setActiveAccount(redirectResult.account);
  const account = msal.getActiveAccount() ?? msal.getAllAccounts()[0] ?? undefined;

  /** A token without the user if msal can (cache, refresh token); else the redirect, which leaves this page. */
  async function tokenFor(scopes: readonly string[], claims: string | undefined): Promise<string> {
    if (account === undefined) throw new Error('Not signed in.');
    const request = { scopes: [...scopes], account, ...(claims === undefined ? {} : { claims }) };
    try {
      return (await msal.acquireTokenSilent(request)).accessToken;
    } catch (error) {
      if (!(error instanceof InteractionRequiredAuthError)) throw error;
      await msal.acquireTokenRedirect(request);
      // The browser is leaving for the sign-in page; nothing waits for this.
      return new Promise<string>(() => undefined);
    }
  }

  return {
    account,
    redirectResult,
    signIn: () => msal.loginRedirect({ scopes: [settings.apiScope] }),
    // The ID token as hint: it names the app, so Entra ID returns to the page instead of its own signed-out page.
    signOut: () =>
      msal.logoutRedirect({ ...(account === undefined ? {} : { account, ...(account.idToken ? { idTokenHint: account.idToken } : {}) }) }),
    apiToken: (claims) => tokenFor([settings.apiScope], claims),
    teamsToken: () => tokenFor(settings.teams.scopes, undefined),
    answerClaimsChallenge: (claims) =>
      msal.acquireTokenRedirect({
        scopes: [settings.apiScope],
        ...(account === undefined ? {} : { account }),
        ...(claims === undefined ? {} : { claims }),
      }),
  };
}

async function msalConfiguration(settings: PageSettings): Promise<Configuration> {
  const home = new URL('/', window.location.href).href;
  return {
    auth: {
      clientId: settings.clientId,
      authority: settings.authority,
      knownAuthorities: [...settings.knownAuthorities],
      ...(settings.authorityMetadataUrl === undefined ? {} : { authorityMetadata: await authorityMetadata(settings.authorityMetadataUrl) }),
      redirectUri: home,
      postLogoutRedirectUri: home,
    },
    // The tab's own storage: another tab signs in for itself, and closing the tab forgets the account.
    cache: { cacheLocation: 'sessionStorage' },
  };
}

async function authorityMetadata(url: string): Promise<string> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`The sign-in metadata at ${url} answered ${response.status}.`);
  return response.text();
}
