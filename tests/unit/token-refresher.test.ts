import { expect } from '@jest/globals';

import {
  AcsTokenServiceError,
  ClaimsChallengeError,
  createAcsTokenRefresher,
  type AcsTokenRefresherOptions,
  type EntraTokenRequest,
  type FetchLike,
} from '../../client/token-refresher';

/**
 * The client-side token refresher (client/token-refresher), as pure logic: the service is a scripted `fetch`
 * (real `Response` objects), the clock and `setTimeout` are Jest's, so waits are checked to the millisecond
 * without taking any time. tests/integration/token-refresher.test.ts drives it against the real service.
 */

const SERVICE = 'https://acs-auth.example';
const ENTRA_TOKEN = 'entra-access-token-do-not-leak';
const ACS_TOKEN = 'acs-token-do-not-leak';
const USER = '8:acs:00000000-0000-0000-0000-000000000001_00000000-0000-0000-0000-000000000002';
const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;

/** Only the clock and setTimeout are faked: promise jobs and Node's own I/O (Response bodies) run as usual. */
beforeEach(() => {
  jest.useFakeTimers({
    doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'hrtime', 'performance'],
  });
});
afterEach(() => {
  jest.useRealTimers();
});

type Scripted = Response | Error | Promise<Response>;

interface FakeService {
  readonly fetch: FetchLike;
  readonly requests: { readonly url: string; readonly headers: Record<string, string>; readonly signal: AbortSignal }[];
  /** Answers for the next requests, in order. */
  readonly answer: (...answers: Scripted[]) => void;
}

function fakeService(): FakeService {
  const queue: Scripted[] = [];
  const requests: FakeService['requests'] = [];
  return {
    requests,
    answer: (...answers) => queue.push(...answers),
    fetch: (url, init) => {
      requests.push({ url, headers: init.headers, signal: init.signal });
      const next = queue.shift();
      if (next === undefined) throw new Error(`unexpected request ${requests.length} to ${url}`);
      if (next instanceof Error) return Promise.reject(next);
      return Promise.resolve(next);
    },
  };
}

function issued(validForMs = 60 * MINUTE_MS, token = ACS_TOKEN): Response {
  const body = { token, expiresOn: new Date(Date.now() + validForMs).toISOString(), user: { communicationUserId: USER } };
  return Response.json(body, { status: 201 });
}

function refused(status: number, code: string, headers: Record<string, string> = {}): Response {
  return Response.json({ code, message: `refused with ${code}`, requestId: 'request-1' }, { status, headers });
}

/** A response the test releases when it wants: for requests that must still be in flight. */
function held(): { readonly response: Promise<Response>; readonly release: (response: Response) => void } {
  let release!: (response: Response) => void;
  const response = new Promise<Response>((resolve) => (release = resolve));
  return { response, release };
}

function setUp(options: Partial<AcsTokenRefresherOptions> = {}) {
  const service = fakeService();
  const entraRequests: EntraTokenRequest[] = [];
  const getEntraToken = jest.fn((request: EntraTokenRequest) => {
    entraRequests.push(request);
    return Promise.resolve(ENTRA_TOKEN);
  });
  const refresher = createAcsTokenRefresher({ serviceUrl: SERVICE, getEntraToken, fetch: service.fetch, ...options });
  return { service, refresher, getEntraToken, entraRequests };
}

/** Lets the refresher's pending promise jobs and body reads run (no fake time passes). */
async function settle(): Promise<void> {
  await jest.advanceTimersByTimeAsync(0);
}

/** What a caller's promise came to, without letting a rejection go unhandled while the test advances time. */
function outcomeOf<T>(promise: Promise<T>): { readonly current: () => 'pending' | 'resolved' | 'rejected' } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  return { current: () => state };
}

describe('createAcsTokenRefresher', () => {
  describe('the request', () => {
    it('POSTs to /api/token with the Entra ID token and answers the ACS token', async () => {
      const { service, refresher, entraRequests } = setUp();
      service.answer(issued());

      await expect(refresher()).resolves.toBe(ACS_TOKEN);

      expect(service.requests).toHaveLength(1);
      expect(service.requests[0]?.url).toBe(`${SERVICE}/api/token`);
      expect(service.requests[0]?.headers['Authorization']).toBe(`Bearer ${ENTRA_TOKEN}`);
      expect(entraRequests).toEqual([{ signal: expect.any(AbortSignal) }]);
    });

    it('sends scopes and expiresInMinutes as the query, and keeps a path prefix of the service URL', async () => {
      const { service, refresher } = setUp({
        serviceUrl: 'https://gateway.example/acs-auth/',
        scopes: ['chat', 'voip'],
        expiresInMinutes: 60,
      });
      service.answer(issued());

      await refresher();

      expect(service.requests[0]?.url).toBe('https://gateway.example/acs-auth/api/token?scopes=chat%2Cvoip&expiresInMinutes=60');
    });

    it('fetches a new token on every call once the last one is answered (it is the credential that keeps tokens)', async () => {
      const { service, refresher } = setUp();
      service.answer(issued(60 * MINUTE_MS, 'first'), issued(60 * MINUTE_MS, 'second'));

      await expect(refresher()).resolves.toBe('first');
      await expect(refresher()).resolves.toBe('second');
      expect(service.requests).toHaveLength(2);
    });

    it('tells onIssued the user id and expiry, never the token', async () => {
      const onIssued = jest.fn();
      const { service, refresher } = setUp({ onIssued });
      service.answer(issued(90 * MINUTE_MS));

      await refresher();

      expect(onIssued).toHaveBeenCalledWith({ communicationUserId: USER, expiresOn: new Date(Date.now() + 90 * MINUTE_MS) });
    });

    it('reads expiresOn with seven fractional digits and an offset, as ACS writes it', async () => {
      const { service, refresher } = setUp();
      const expiresOn = new Date(Date.now() + 30 * MINUTE_MS).toISOString().replace(/\.(\d{3})Z$/, '.$10000+00:00');
      service.answer(Response.json({ token: ACS_TOKEN, expiresOn, user: { communicationUserId: USER } }, { status: 201 }));

      await expect(refresher()).resolves.toBe(ACS_TOKEN);
    });

    it('uses the global fetch when none is given, called as a plain function (browsers refuse another `this`)', async () => {
      const global = jest.spyOn(globalThis, 'fetch').mockImplementation(function (this: unknown) {
        return Promise.resolve(this === undefined || this === globalThis ? issued() : refused(500, 'wrong_this'));
      });
      try {
        const refresher = createAcsTokenRefresher({ serviceUrl: SERVICE, getEntraToken: () => Promise.resolve(ENTRA_TOKEN) });
        await expect(refresher()).resolves.toBe(ACS_TOKEN);
        expect(global).toHaveBeenCalledTimes(1);
      } finally {
        global.mockRestore();
      }
    });

    it.each<[string, Partial<AcsTokenRefresherOptions>]>([
      ['serviceUrl', { serviceUrl: 'acs-auth.example' }],
      ['serviceUrl', { serviceUrl: 'ftp://acs-auth.example' }],
      ['expiresInMinutes', { expiresInMinutes: 59 }],
      ['expiresInMinutes', { expiresInMinutes: 60.5 }],
      ['scopes', { scopes: [] }],
      ['scopes', { scopes: ['chat,voip'] }],
      ['maxRetries', { maxRetries: -1 }],
      ['minValidityMs', { minValidityMs: Number.NaN }],
    ])('refuses a bad %s at once', (name, options) => {
      expect(() => setUp(options)).toThrow(TypeError);
      expect(() => setUp(options)).toThrow(name);
    });
  });

  describe('concurrent callers', () => {
    it('share one request: one Entra ID token, one POST, the same ACS token for all', async () => {
      const { service, refresher, getEntraToken } = setUp();
      const answer = held();
      service.answer(answer.response);

      const callers = [refresher(), refresher(), refresher()];
      await settle();
      answer.release(issued());

      await expect(Promise.all(callers)).resolves.toEqual([ACS_TOKEN, ACS_TOKEN, ACS_TOKEN]);
      expect(service.requests).toHaveLength(1);
      expect(getEntraToken).toHaveBeenCalledTimes(1);
    });

    it('share its failure, and the next call starts a new request', async () => {
      const { service, refresher } = setUp();
      service.answer(refused(409, 'mapping_untrusted'), issued());

      const results = await Promise.allSettled([refresher(), refresher()]);

      expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
      await expect(refresher()).resolves.toBe(ACS_TOKEN);
      expect(service.requests).toHaveLength(2);
    });
  });

  describe('abortSignal', () => {
    it('refuses a signal that is already aborted without asking for anything', async () => {
      const { service, refresher, getEntraToken } = setUp();

      await expect(refresher(AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });

      expect(getEntraToken).not.toHaveBeenCalled();
      expect(service.requests).toHaveLength(0);
    });

    it('rejects only the caller that aborted; the others get the token and the request is not aborted', async () => {
      const { service, refresher } = setUp();
      const answer = held();
      service.answer(answer.response);
      const leaving = new AbortController();

      const aborted = refresher(leaving.signal);
      const staying = refresher(new AbortController().signal);
      const noSignal = refresher();
      await settle();
      leaving.abort();

      await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
      expect(service.requests[0]?.signal.aborted).toBe(false);
      answer.release(issued());
      await expect(staying).resolves.toBe(ACS_TOKEN);
      await expect(noSignal).resolves.toBe(ACS_TOKEN);
    });

    it('aborts the request when every caller aborted, and the next call starts a new one', async () => {
      const { service, refresher, entraRequests } = setUp();
      service.answer(held().response, issued());
      const first = new AbortController();
      const second = new AbortController();

      const callers = [refresher(first.signal), refresher(second.signal)];
      await settle();
      first.abort();
      second.abort();

      for (const caller of callers) await expect(caller).rejects.toMatchObject({ name: 'AbortError' });
      expect(service.requests[0]?.signal.aborted).toBe(true);
      expect(entraRequests[0]?.signal.aborted).toBe(true);
      await expect(refresher()).resolves.toBe(ACS_TOKEN);
      expect(service.requests).toHaveLength(2);
    });

    it('stops waiting for a Retry-After when the caller aborts: no request follows', async () => {
      const { service, refresher } = setUp();
      service.answer(refused(503, 'upstream_throttled', { 'Retry-After': '5' }));
      const caller = new AbortController();

      const refreshing = refresher(caller.signal);
      await settle();
      caller.abort();

      await expect(refreshing).rejects.toMatchObject({ name: 'AbortError' });
      await jest.advanceTimersByTimeAsync(10 * SECOND_MS);
      expect(service.requests).toHaveLength(1);
    });
  });

  describe('429 and 503', () => {
    it.each([
      [429, 'too_many_requests'],
      [503, 'upstream_throttled'],
    ])('%i: retries after Retry-After seconds, not before', async (status, code) => {
      const { service, refresher } = setUp();
      service.answer(refused(status, code, { 'Retry-After': '7' }), issued());

      const outcome = outcomeOf(refresher());
      await jest.advanceTimersByTimeAsync(7 * SECOND_MS - 1);
      expect(service.requests).toHaveLength(1);
      await jest.advanceTimersByTimeAsync(1);

      expect(service.requests).toHaveLength(2);
      await settle();
      expect(outcome.current()).toBe('resolved');
    });

    it('reads a Retry-After given as an HTTP date', async () => {
      const { service, refresher } = setUp();
      const at = new Date(Date.now() + 12 * SECOND_MS).toUTCString();
      service.answer(refused(503, 'upstream_unavailable', { 'Retry-After': at }), issued());

      const refreshing = refresher();
      await jest.advanceTimersByTimeAsync(12 * SECOND_MS - 1);
      expect(service.requests).toHaveLength(1);
      await jest.advanceTimersByTimeAsync(1);

      await expect(refreshing).resolves.toBe(ACS_TOKEN);
    });

    it('backs off 1 s, then 2 s, when a 503 carries no Retry-After', async () => {
      const { service, refresher } = setUp();
      service.answer(refused(503, 'upstream_unavailable'), refused(503, 'upstream_unavailable'), issued());

      const refreshing = refresher();
      await jest.advanceTimersByTimeAsync(SECOND_MS);
      expect(service.requests).toHaveLength(2);
      await jest.advanceTimersByTimeAsync(2 * SECOND_MS - 1);
      expect(service.requests).toHaveLength(2);
      await jest.advanceTimersByTimeAsync(1);

      await expect(refreshing).resolves.toBe(ACS_TOKEN);
    });

    it('fails at once, with retryAfterSeconds, when Retry-After is longer than maxRetryWaitMs', async () => {
      const { service, refresher } = setUp({ maxRetryWaitMs: 30 * SECOND_MS });
      service.answer(refused(429, 'too_many_requests', { 'Retry-After': '31' }));

      const error = await refresher().catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(AcsTokenServiceError);
      expect(error).toMatchObject({ status: 429, code: 'too_many_requests', retryAfterSeconds: 31, requestId: 'request-1' });
      expect(service.requests).toHaveLength(1);
    });

    it('gives up after maxRetries retries with the last answer', async () => {
      const { service, refresher } = setUp({ maxRetries: 2 });
      service.answer(...[1, 2, 3].map(() => refused(503, 'upstream_throttled', { 'Retry-After': '1' })));

      const refreshing = refresher().catch((caught: unknown) => caught);
      await jest.advanceTimersByTimeAsync(10 * SECOND_MS);

      await expect(refreshing).resolves.toMatchObject({ status: 503, code: 'upstream_throttled', retryAfterSeconds: 1 });
      expect(service.requests).toHaveLength(3);
    });

    it('asks for a new Entra ID token for each retry', async () => {
      const { service, refresher, getEntraToken } = setUp();
      service.answer(refused(429, 'too_many_requests', { 'Retry-After': '1' }), issued());

      const refreshing = refresher();
      await jest.advanceTimersByTimeAsync(SECOND_MS);

      await expect(refreshing).resolves.toBe(ACS_TOKEN);
      expect(getEntraToken).toHaveBeenCalledTimes(2);
    });
  });

  describe('network failures', () => {
    it('are retried with the same bound (1 s, 2 s, …), then reported as network_error', async () => {
      const { service, refresher } = setUp({ maxRetries: 2 });
      service.answer(new TypeError('fetch failed'), new TypeError('fetch failed'), new TypeError('fetch failed'));

      const refreshing = refresher().catch((caught: unknown) => caught);
      await jest.advanceTimersByTimeAsync(3 * SECOND_MS);

      const error = await refreshing;
      expect(error).toBeInstanceOf(AcsTokenServiceError);
      expect(error).toMatchObject({ status: 0, code: 'network_error', cause: expect.any(TypeError) });
      expect(service.requests).toHaveLength(3);
    });

    it('end when a retry gets through', async () => {
      const { service, refresher } = setUp();
      service.answer(new TypeError('fetch failed'), issued());

      const refreshing = refresher();
      await jest.advanceTimersByTimeAsync(SECOND_MS);

      await expect(refreshing).resolves.toBe(ACS_TOKEN);
    });
  });

  describe('other answers', () => {
    it.each([
      [400, 'bad_request'],
      [401, 'invalid_token'],
      [403, 'insufficient_scope'],
      [404, 'not_found'],
      [409, 'mapping_untrusted'],
      [500, 'internal_error'],
      [502, 'upstream_error'],
      [504, 'upstream_timeout'],
    ])('%i %s: fails at once with the status, code, message and request id', async (status, code) => {
      const { service, refresher } = setUp();
      service.answer(refused(status, code));

      const error = await refresher().catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(AcsTokenServiceError);
      expect(error).not.toBeInstanceOf(ClaimsChallengeError);
      expect(error).toMatchObject({ status, code, message: `refused with ${code}`, requestId: 'request-1' });
      expect(service.requests).toHaveLength(1);
    });

    it('an answer that is not the service JSON (a proxy page) fails with http_<status> and the x-request-id', async () => {
      const { service, refresher } = setUp();
      service.answer(new Response('<html>Bad gateway</html>', { status: 502, headers: { 'x-request-id': 'proxy-1' } }));

      await expect(refresher()).rejects.toMatchObject({ status: 502, code: 'http_502', requestId: 'proxy-1' });
    });

    it.each([
      ['no token', { expiresOn: new Date(Date.now() + MINUTE_MS * 60).toISOString(), user: { communicationUserId: USER } }, 'token'],
      ['an unreadable expiresOn', { token: ACS_TOKEN, expiresOn: 'tomorrow', user: { communicationUserId: USER } }, 'expiresOn'],
      ['no user', { token: ACS_TOKEN, expiresOn: new Date(Date.now() + MINUTE_MS * 60).toISOString() }, 'user.communicationUserId'],
    ])('a 201 with %s fails with invalid_response', async (_case, body, field) => {
      const { service, refresher } = setUp();
      service.answer(Response.json(body, { status: 201 }));

      const error = await refresher().catch((caught: unknown) => caught);

      expect(error).toMatchObject({ status: 201, code: 'invalid_response' });
      expect((error as Error).message).toContain(`'${field}'`);
    });

    it('a failure of getEntraToken (an MSAL error) reaches the caller as it is, and nothing is sent', async () => {
      const msalError = new Error('interaction_required: AADSTS50076');
      const service = fakeService();
      const refresher = createAcsTokenRefresher({
        serviceUrl: SERVICE,
        getEntraToken: () => Promise.reject(msalError),
        fetch: service.fetch,
      });

      await expect(refresher()).rejects.toBe(msalError);
      expect(service.requests).toHaveLength(0);
    });
  });

  describe('a 401 claims challenge', () => {
    const claims = '{"access_token":{"capolids":{"essential":true,"values":["c1a2-é"]}}}';
    const challenge = (encoded: string | undefined) =>
      [
        'Bearer realm=""',
        'client_id="api-client-id"',
        'error="insufficient_claims"',
        'error_description="Sign in again, with MFA, please"',
        ...(encoded === undefined ? [] : [`claims="${encoded}"`]),
      ].join(', ');
    const base64 = (text: string) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

    it('is a ClaimsChallengeError with the decoded claims (UTF-8 JSON), not retried', async () => {
      const { service, refresher } = setUp();
      service.answer(refused(401, 'interaction_required', { 'WWW-Authenticate': challenge(base64(claims)) }));

      const error = await refresher().catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(ClaimsChallengeError);
      expect(error).toBeInstanceOf(AcsTokenServiceError);
      expect(error).toMatchObject({ status: 401, code: 'interaction_required', claims, requestId: 'request-1' });
      expect(service.requests).toHaveLength(1);
    });

    it('passes the claims to getEntraToken on the next refresh, until a token is issued', async () => {
      const { service, refresher, entraRequests } = setUp();
      service.answer(
        refused(401, 'interaction_required', { 'WWW-Authenticate': challenge(base64(claims)) }),
        refused(429, 'too_many_requests', { 'Retry-After': '1' }),
        issued(),
        issued(),
      );

      await expect(refresher()).rejects.toBeInstanceOf(ClaimsChallengeError);
      const retrying = refresher();
      await jest.advanceTimersByTimeAsync(SECOND_MS);
      await expect(retrying).resolves.toBe(ACS_TOKEN);
      await refresher();

      expect(entraRequests.map((request) => request.claims)).toEqual([undefined, claims, claims, undefined]);
    });

    it('without claims (missing consent) is a ClaimsChallengeError whose claims are undefined', async () => {
      const { service, refresher } = setUp();
      service.answer(refused(401, 'interaction_required', { 'WWW-Authenticate': challenge(undefined) }));

      await expect(refresher()).rejects.toMatchObject({ name: 'ClaimsChallengeError', claims: undefined });
    });

    it('is recognised by the challenge alone, when the body is not the service JSON', async () => {
      const { service, refresher } = setUp();
      service.answer(new Response('', { status: 401, headers: { 'WWW-Authenticate': challenge(base64(claims)) } }));

      await expect(refresher()).rejects.toMatchObject({ name: 'ClaimsChallengeError', claims });
    });
  });

  describe('tokens close to expiry', () => {
    it('are never handed out: one closer than minValidityMs is fetched again', async () => {
      const { service, refresher } = setUp({ minValidityMs: MINUTE_MS });
      service.answer(issued(MINUTE_MS - 1, 'nearly-expired'), issued(60 * MINUTE_MS, 'fresh'));

      await expect(refresher()).resolves.toBe('fresh');
      expect(service.requests).toHaveLength(2);
    });

    it('fail the refresh when the service keeps issuing them (a clock far off), without the token in the error', async () => {
      const { service, refresher } = setUp({ minValidityMs: MINUTE_MS });
      service.answer(issued(-MINUTE_MS, 'expired-token'), issued(30 * SECOND_MS, 'nearly-expired-token'), issued());

      const error = await refresher().catch((caught: unknown) => caught);

      expect(error).toMatchObject({ status: 201, code: 'token_expires_too_soon' });
      expect(service.requests).toHaveLength(2);
      expect(JSON.stringify(error) + String((error as Error).stack)).not.toMatch(/token-do-not-leak|expired-token/);
    });
  });

  it('puts no token in any error it raises', async () => {
    const errors: unknown[] = [];
    const answers: Scripted[] = [
      Response.json({ token: ACS_TOKEN, user: { communicationUserId: USER } }, { status: 201 }),
      refused(429, 'too_many_requests', { 'Retry-After': '3600' }),
      refused(401, 'interaction_required', { 'WWW-Authenticate': 'Bearer error="insufficient_claims", claims="e30="' }),
      new Response(`echo ${ENTRA_TOKEN}`, { status: 500 }),
      new TypeError('fetch failed'),
    ];
    for (const answer of answers) {
      const { service, refresher } = setUp({ maxRetries: 0 });
      service.answer(answer);
      errors.push(await refresher().catch((caught: unknown) => caught));
    }

    for (const error of errors) {
      expect(error).toBeInstanceOf(AcsTokenServiceError);
      const seen = [JSON.stringify(error), String(error), (error as Error).stack ?? ''].join('\n');
      expect(seen).not.toContain(ENTRA_TOKEN);
      expect(seen).not.toContain(ACS_TOKEN);
    }
  });
});
