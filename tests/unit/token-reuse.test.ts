import type { AcsIdentities, IssuedToken, TokenRequest } from '../../src/services/ports';
import { withTokenReuse, type TokenInvalidations } from '../../src/services/token-reuse';

/**
 * The token budget's rules, on a counting ACS port of the test's own (no SDK here: this is the pure logic;
 * tests/integration/shared-state-redis.test.ts drives it through the service, the real SDK and Redis).
 */
const ID = '8:acs:11111111-1111-4111-8111-111111111111_22222222-2222-4222-8222-222222222222';
const CHAT: TokenRequest = { scopes: ['chat'], expiresInMinutes: undefined };
const HOUR = 3_600_000;

interface CountingAcs extends AcsIdentities {
  readonly issued: string[];
  /** Makes the next issue wait for `release()`. */
  hold(): { release(): void };
}

function countingAcs(clock: { now: number }, lifetimeMs = HOUR): CountingAcs {
  const issued: string[] = [];
  let held: Promise<void> | undefined;
  const unsupported = (): never => {
    throw new Error('not used here');
  };
  return {
    issued,
    hold() {
      let release = (): void => undefined;
      held = new Promise((resolve) => (release = resolve));
      return { release: () => release() };
    },
    async issueToken(acsUserId: string, request: TokenRequest): Promise<IssuedToken> {
      const token = `token-${issued.length + 1}-${acsUserId.slice(-4)}-${request.scopes.join('+')}`;
      issued.push(token);
      const wait = held;
      held = undefined;
      const expiresOn = new Date(clock.now + lifetimeMs);
      await wait;
      return { token, expiresOn };
    },
    revokeTokens: () => Promise.resolve(),
    deleteIdentity: () => Promise.resolve(),
    createIdentity: unsupported,
    createIdentityWithToken: unsupported,
    exchangeTeamsToken: unsupported,
  };
}

function fakeInvalidations(): TokenInvalidations & { received(id: string): void; resume(): void; up: boolean; sent: string[] } {
  let listener: (id: string) => void = () => undefined;
  let onResume: () => void = () => undefined;
  const channel = {
    up: true,
    sent: [] as string[],
    publish: (id: string) => channel.sent.push(id),
    subscribe: (next: (id: string) => void) => (listener = next),
    connected: () => channel.up,
    onResume: (next: () => void) => (onResume = next),
    received: (id: string) => listener(id),
    resume: () => onResume(),
  };
  return channel;
}

describe('token reuse (the ACS budget)', () => {
  const clock = { now: Date.UTC(2026, 10, 30, 9) };
  const now = (): number => clock.now;

  it('hands out a token issued within the window again, for the same identity, scopes and lifetime only', async () => {
    const acs = countingAcs(clock);
    const reuse = withTokenReuse(acs, { windowMs: 10_000, maxIdentities: 100, now });
    const first = await reuse.issueToken(ID, CHAT);
    clock.now += 9_999;
    await expect(reuse.issueToken(ID, CHAT)).resolves.toBe(first);
    await reuse.issueToken(ID, { scopes: ['chat', 'voip'], expiresInMinutes: undefined });
    await reuse.issueToken(ID, { scopes: ['chat'], expiresInMinutes: 60 });
    expect(acs.issued).toHaveLength(3);
    // The order of scopes does not make another token.
    await reuse.issueToken(ID, { scopes: ['voip', 'chat'], expiresInMinutes: undefined });
    expect(acs.issued).toHaveLength(3);
    clock.now += 1;
    await expect(reuse.issueToken(ID, CHAT)).resolves.not.toBe(first);
    expect(acs.issued).toHaveLength(4);
  });

  it('never hands out a token with less than half its lifetime left', async () => {
    const acs = countingAcs(clock, 20_000);
    const reuse = withTokenReuse(acs, { windowMs: 60_000, maxIdentities: 100, now });
    const first = await reuse.issueToken(ID, CHAT);
    clock.now += 10_000;
    await expect(reuse.issueToken(ID, CHAT)).resolves.toBe(first);
    clock.now += 1;
    await expect(reuse.issueToken(ID, CHAT)).resolves.not.toBe(first);
  });

  it('lets concurrent requests share one ACS call', async () => {
    const acs = countingAcs(clock);
    const reuse = withTokenReuse(acs, { windowMs: 10_000, maxIdentities: 100, now });
    const tokens = await Promise.all(Array.from({ length: 50 }, () => reuse.issueToken(ID, CHAT)));
    expect(new Set(tokens).size).toBe(1);
    expect(acs.issued).toHaveLength(1);
  });

  it('forgets on revoke and delete, and never keeps a token whose issue was under way during one', async () => {
    const acs = countingAcs(clock);
    const channel = fakeInvalidations();
    const reuse = withTokenReuse(acs, { windowMs: 10_000, maxIdentities: 100, now, invalidations: channel });
    await reuse.issueToken(ID, CHAT);
    await reuse.revokeTokens(ID);
    await reuse.issueToken(ID, CHAT);
    expect(acs.issued).toHaveLength(2);
    expect(channel.sent).toEqual([ID, ID]);

    // An issue sent before a revoke that answers after it: its caller gets it, nobody else.
    const held = acs.hold();
    await reuse.deleteIdentity(ID);
    const late = reuse.issueToken(ID, { scopes: ['voip'], expiresInMinutes: undefined });
    clock.now += 1;
    await reuse.revokeTokens(ID);
    held.release();
    const lateToken = await late;
    await expect(reuse.issueToken(ID, { scopes: ['voip'], expiresInMinutes: undefined })).resolves.not.toBe(lateToken);
    expect(channel.sent).toEqual([ID, ID, ID, ID, ID, ID]);
  });

  it('forgets what another instance revoked, reuses nothing while cut off, and drops everything on reconnecting', async () => {
    const acs = countingAcs(clock);
    const channel = fakeInvalidations();
    const reuse = withTokenReuse(acs, { windowMs: 10_000, maxIdentities: 100, now, invalidations: channel });
    await reuse.issueToken(ID, CHAT);
    channel.received(ID);
    await reuse.issueToken(ID, CHAT);
    expect(acs.issued).toHaveLength(2);

    channel.up = false;
    await reuse.issueToken(ID, CHAT);
    expect(acs.issued).toHaveLength(3);
    channel.up = true;
    channel.resume();
    await reuse.issueToken(ID, CHAT);
    expect(acs.issued).toHaveLength(4);
    await reuse.issueToken(ID, CHAT);
    expect(acs.issued).toHaveLength(4);
  });

  it('keeps no failure: the next request asks ACS again', async () => {
    const acs = countingAcs(clock);
    let fail = true;
    const failing: AcsIdentities = {
      ...acs,
      issueToken: async (id, request) => {
        if (fail) throw new Error('throttled');
        return acs.issueToken(id, request);
      },
    };
    const reuse = withTokenReuse(failing, { windowMs: 10_000, maxIdentities: 100, now });
    await expect(reuse.issueToken(ID, CHAT)).rejects.toThrow('throttled');
    fail = false;
    await expect(reuse.issueToken(ID, CHAT)).resolves.toMatchObject({ token: expect.stringMatching(/^token-1-/) as unknown });
  });
});

describe('token reuse: no request joins an issue that a revoke overtook', () => {
  it('asks ACS again after a revoke, even while an older issue for the same token is still under way', async () => {
    const clock = { now: Date.UTC(2026, 10, 30, 9) };
    const acs = countingAcs(clock);
    const reuse = withTokenReuse(acs, { windowMs: 10_000, maxIdentities: 100, now: () => clock.now });
    const held = acs.hold();
    const before = reuse.issueToken(ID, CHAT);
    await reuse.revokeTokens(ID);
    const after = reuse.issueToken(ID, CHAT);
    held.release();
    const [old, fresh] = await Promise.all([before, after]);
    expect(fresh).not.toBe(old);
    expect(acs.issued).toHaveLength(2);
  });
});
