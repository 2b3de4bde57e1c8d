import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { AzureCommunicationTokenCredential } from '@azure/communication-common';
import { expect } from '@jest/globals';

import {
  AcsTokenServiceError,
  ClaimsChallengeError,
  createAcsTokenRefresher,
  type AcsTokenRefresher,
  type AcsTokenRefresherOptions,
  type EntraTokenRequest,
} from '../../client/token-refresher';
import { DEMO_USERS } from '../../src/local/local-directory';
import { mappedIdentityOf, resetTestService } from '../helpers/invariants';
import { present } from '../helpers/present';
import { useTestService } from '../helpers/test-service';

/**
 * The client's token refresher (client/token-refresher) driving the real service on the emulators, over a
 * real loopback port with the global `fetch`, inside the real `AzureCommunicationTokenCredential` of
 * `@azure/communication-common`. The credential schedules its proactive refresh with `setTimeout` (10
 * minutes before the token's `exp`), so that test fakes `setTimeout` and the clock, and nothing else:
 * the service, the emulators and the SDKs between them run on the same (fake) clock and do real I/O.
 */

const ALICE = DEMO_USERS.alice.oid;
const MINUTE_MS = 60_000;

/** The credential's clock and timer; promise jobs, sockets and Node's internals stay real. */
function fakeClockAndTimer(): void {
  jest.useFakeTimers({
    doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'hrtime', 'performance'],
  });
}

describe('client/token-refresher with AzureCommunicationTokenCredential, against the service', () => {
  const service = useTestService();
  let server: Server | undefined;
  let serviceUrl = '';

  beforeAll(async () => {
    // supertest's in-process app has no address `fetch` can reach: listen on loopback like `npm start`.
    const listening = service.app.listen(0, '127.0.0.1');
    server = listening;
    await once(listening, 'listening');
    serviceUrl = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });
  beforeEach(async () => {
    await resetTestService(service);
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  /** A refresher for a demo user, recording what it asked of the app and each POST it sent. */
  function refresherFor(options: Partial<AcsTokenRefresherOptions> = {}) {
    const entraRequests: EntraTokenRequest[] = [];
    const posts: string[] = [];
    const refresher = createAcsTokenRefresher({
      serviceUrl,
      getEntraToken: (request) => {
        entraRequests.push(request);
        return service.tokenFor('alice');
      },
      fetch: (url, init) => {
        posts.push(url);
        return fetch(url, init);
      },
      ...options,
    });
    return { refresher, entraRequests, posts };
  }

  async function expectAcceptedByAcs(token: string): Promise<number> {
    const verdict = await service.local.acs.verifyAccessToken(token);
    expect(verdict).toMatchObject({ valid: true });
    const claims = present(verdict.claims, 'the claims of a valid token');
    expect(`8:${claims.skypeid}`).toBe(mappedIdentityOf(service.local, ALICE));
    return claims.exp * 1000;
  }

  it('gives the credential a token ACS accepts, for the identity POST /api/token created', async () => {
    const { refresher, posts } = refresherFor({ scopes: ['chat', 'voip'] });
    const credential = new AzureCommunicationTokenCredential({ tokenRefresher: refresher });
    try {
      const { token } = await credential.getToken();

      await expectAcceptedByAcs(token);
      expect(posts).toEqual([`${serviceUrl}/api/token?scopes=chat%2Cvoip`]);
    } finally {
      credential.dispose();
    }
  });

  it('refreshes proactively, 10 minutes before expiry, and never hands out the expired token', async () => {
    fakeClockAndTimer();
    const { refresher, posts } = refresherFor({ expiresInMinutes: 60 });
    const refreshes: Promise<string>[] = [];
    const counting: AcsTokenRefresher = (abortSignal) => {
      const refreshing = refresher(abortSignal);
      refreshes.push(refreshing);
      return refreshing;
    };
    const credential = new AzureCommunicationTokenCredential({ tokenRefresher: counting, refreshProactively: true });
    try {
      const first = (await credential.getToken()).token;
      const firstExpiry = await expectAcceptedByAcs(first);
      expect(firstExpiry - Date.now()).toBeGreaterThan(59 * MINUTE_MS);

      // The credential's timer fires 10 minutes before `exp`; its refresh is real I/O to the service.
      jest.advanceTimersByTime(50 * MINUTE_MS);
      expect(refreshes).toHaveLength(2);
      const refreshed = await present(refreshes[1], 'the proactive refresh');
      // The credential stores the token a few promise jobs after the refresher resolves; setImmediate is not faked.
      await new Promise((resolve) => setImmediate(resolve));

      expect(refreshed).not.toBe(first);
      expect((await credential.getToken()).token).toBe(refreshed);
      jest.advanceTimersByTime(11 * MINUTE_MS);
      expect(await service.local.acs.verifyAccessToken(first)).toMatchObject({ valid: false, reason: 'expired' });
      expect((await credential.getToken()).token).toBe(refreshed);
      const refreshedExpiry = await expectAcceptedByAcs(refreshed);
      expect(refreshedExpiry).toBeGreaterThan(firstExpiry);
      expect(posts).toHaveLength(2);
    } finally {
      credential.dispose();
    }
  });

  it('serves a chat and a calling credential with one request when they ask at once', async () => {
    const { refresher, posts } = refresherFor();
    const credentials = [
      new AzureCommunicationTokenCredential({ tokenRefresher: refresher }),
      new AzureCommunicationTokenCredential({ tokenRefresher: refresher }),
    ];
    try {
      const tokens = await Promise.all(credentials.map(async (credential) => (await credential.getToken()).token));

      expect(tokens[1]).toBe(tokens[0]);
      expect(posts).toHaveLength(1);
      await expectAcceptedByAcs(present(tokens[0], 'a token'));
    } finally {
      for (const credential of credentials) credential.dispose();
    }
  });

  it('rejects an aborted getToken with an AbortError and sends nothing', async () => {
    const { refresher, posts } = refresherFor();
    const credential = new AzureCommunicationTokenCredential({ tokenRefresher: refresher });
    try {
      await expect(credential.getToken({ abortSignal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
      expect(posts).toEqual([]);
    } finally {
      credential.dispose();
    }
  });

  describe('when Entra ID requires MFA before the service can reach Graph for the user', () => {
    it("surfaces the service's claims challenge, and after the interactive sign-in passes the claims to getEntraToken", async () => {
      service.local.entra.requireInteraction(ALICE, 'mfa');
      const { refresher, entraRequests } = refresherFor();
      const credential = new AzureCommunicationTokenCredential({ tokenRefresher: refresher });
      try {
        const error = await credential.getToken().catch((caught: unknown) => caught);

        expect(error).toBeInstanceOf(ClaimsChallengeError);
        const { claims } = error as ClaimsChallengeError;
        expect(JSON.parse(present(claims, 'the claims of the challenge'))).toEqual({
          access_token: { capolids: { essential: true, values: [expect.any(String)] } },
        });

        // The app runs `acquireTokenPopup({ claims })`; the user passes MFA.
        service.local.entra.clearInteraction(ALICE);
        const { token } = await credential.getToken();

        await expectAcceptedByAcs(token);
        expect(entraRequests.map((request) => request.claims)).toEqual([undefined, claims]);
      } finally {
        credential.dispose();
      }
    });
  });

  describe('when ACS throttles the service', () => {
    it('waits for the Retry-After of the 503 and retries', async () => {
      const { refresher, posts } = refresherFor();
      await refresher();
      service.local.acs.faults.inject({ route: 'identities.issueToken', status: 429, retryAfterSeconds: 1 });

      await expectAcceptedByAcs(await refresher());
      expect(posts).toHaveLength(3);
    });

    it('fails at once, with retryAfterSeconds, when the Retry-After is longer than maxRetryWaitMs', async () => {
      const { refresher, posts } = refresherFor({ maxRetryWaitMs: 30_000 });
      await refresher();
      service.local.acs.faults.inject({ route: 'identities.issueToken', status: 429, retryAfterSeconds: 120 });

      const error = await refresher().catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(AcsTokenServiceError);
      expect(error).toMatchObject({ status: 503, code: 'upstream_throttled', retryAfterSeconds: 120, requestId: expect.any(String) });
      expect(posts).toHaveLength(2);
    });
  });
});
