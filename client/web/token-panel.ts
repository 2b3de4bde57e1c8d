/**
 * The ACS token on the page: an `AzureCommunicationTokenCredential` with proactive refresh on the token
 * refresher of client/token-refresher, exactly as an app would build it, and a countdown read from the
 * credential once a second (which costs no request while the token is valid).
 */
import { AzureCommunicationTokenCredential } from '@azure/communication-common';

import { ClaimsChallengeError, createAcsTokenRefresher, type EntraTokenRequest } from '../token-refresher';
import { formatDuration, setShown, setText, showError } from './view';

export interface TokenPanel {
  /** Stop the countdown and the credential's refresh timer. */
  dispose(): void;
}

export interface TokenPanelOptions {
  readonly serviceUrl: string;
  readonly getEntraToken: (request: EntraTokenRequest) => Promise<string>;
  /** The service asked for an interactive sign-in (401 `interaction_required`). */
  readonly onClaimsChallenge: (claims: string | undefined) => void;
  /** Each token's identity: POST /api/token creates one if the user's was deleted elsewhere meanwhile. */
  readonly onIdentity: (communicationUserId: string) => void;
}

/** Tokens issued while this page is open, across panels (a revoke starts a new panel). */
let issuedOnPage = 0;

export function startTokenPanel(options: TokenPanelOptions): TokenPanel {
  const refresher = createAcsTokenRefresher({
    serviceUrl: options.serviceUrl,
    getEntraToken: options.getEntraToken,
    // The credential asks 10 minutes before expiry; this floor only guards against a device clock far off. It is
    // below the refresher's 60 s default so the page also works on emulators that issue tokens of a minute or less.
    minValidityMs: 10_000,
    onIssued: ({ communicationUserId }) => {
      issuedOnPage += 1;
      setText('token-count', String(issuedOnPage));
      options.onIdentity(communicationUserId);
    },
  });
  const credential = new AzureCommunicationTokenCredential({
    // A failed refresh is shown here. Rethrown, the credential keeps its current token; the countdown's next
    // getToken after that token expires asks again.
    tokenRefresher: async (abortSignal) => {
      try {
        return await refresher(abortSignal);
      } catch (error) {
        if (error instanceof ClaimsChallengeError) options.onClaimsChallenge(error.claims);
        else showError(error);
        throw error;
      }
    },
    refreshProactively: true,
  });

  let disposed = false;
  const tick = async (): Promise<void> => {
    const { token, expiresOnTimestamp } = await credential.getToken();
    if (disposed) return;
    setText('token-countdown', formatDuration(expiresOnTimestamp - Date.now()));
    setText('token-expires', new Date(expiresOnTimestamp).toLocaleString());
    // The end of the signature: enough to see the token change, too little to use.
    setText('token-tail', `…${token.slice(-8)}`);
    setShown('token', true);
  };
  const show = (): void => {
    tick().catch((error: unknown) => {
      if (!disposed) showError(error);
    });
  };
  show();
  const timer = setInterval(show, 1000);
  return {
    dispose() {
      disposed = true;
      clearInterval(timer);
      credential.dispose();
      setShown('token', false);
    },
  };
}
