import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Browser, Page } from 'playwright-core';

import { startService, type RunningService } from '../../src/server';
import { launchChromium } from '../helpers/chromium';
import { pooledRsaKeys } from '../helpers/key-pool';
import { ACS_ID, testCertificates } from '../helpers/test-service';
import { buildWebPageInto } from '../helpers/web-page-build';

/**
 * The sign-in page in a real browser (headless Chromium) on the service as `npm start` runs it in local mode:
 * msal-browser signs in through the Entra emulator's authorization code flow with PKCE, the page gets the
 * user's ACS identity, AzureCommunicationTokenCredential refreshes the token through the token refresher (the
 * ACS emulator issues 20-second tokens here, so a refresh comes within seconds), and revoke and delete go
 * through the API, and so do the Teams exchange and sign-out. The browser's console must stay free of errors and CSP violations throughout.
 *
 * SCREENSHOT_DIR=docs/images npx jest tests/browser renews the page's picture in the docs.
 */

/** Seconds an ACS token lives here: the credential refreshes at half of it (it is inside its 10-minute window). */
const ACS_TOKEN_SECONDS = 20;

interface BrowserProblem {
  readonly kind: string;
  readonly text: string;
}

describe('the sign-in page in Chromium (local mode)', () => {
  let folder: string;
  let service: RunningService;
  let browser: Browser;
  let page: Page;
  const problems: BrowserProblem[] = [];

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'acs-auth-page-'));
    const pageDirectory = join(folder, 'web');
    await buildWebPageInto(pageDirectory);
    [service, browser] = await Promise.all([
      startService(
        { PORT: '0', NODE_ENV: 'test', LOG_LEVEL: 'silent' },
        {
          sessionFile: join(folder, 'session.json'),
          webPageDirectory: pageDirectory,
          localAzure: { acsTokenLifetimeSeconds: ACS_TOKEN_SECONDS, certificates: testCertificates(), rsaKeys: pooledRsaKeys },
        },
      ),
      launchChromium(),
    ]);
    page = await browser.newPage();
    watchForProblems(page, problems);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await service?.stop();
    await rm(folder, { recursive: true, force: true });
  });

  /** The API's own view of alice's identity, with a token the page never saw. */
  async function aliceIdentityByApi(): Promise<{ status: number; identity: unknown }> {
    const token = await service.local!.entra.mintAccessToken({ user: 'alice' });
    const response = await fetch(`${service.url}/api/user`, { headers: { Authorization: `Bearer ${token}` } });
    const body = (await response.json()) as { acsUserIdentity?: unknown };
    return { status: response.status, identity: body.acsUserIdentity };
  }

  it('signs in as a demo user through the Entra emulator (authorization code + PKCE) and shows a new ACS identity', async () => {
    await page.goto(`${service.url}/`);
    await expect(page.locator('#mode').textContent()).resolves.toContain('Local mode');
    await page.getByRole('button', { name: 'Sign in' }).click();

    // The emulator's account picker, on its plain-http loopback listener.
    await page.getByRole('button', { name: /Alice Local/ }).click();
    await page.waitForURL(`${service.url}/`);

    await page.locator('#identity-status', { hasText: 'Created for you just now' }).waitFor();
    await expect(page.locator('#account-username').textContent()).resolves.toBe('alice@contoso.local');
    const shown = await page.locator('#identity').textContent();
    expect(shown).toMatch(ACS_ID);
    await expect(aliceIdentityByApi()).resolves.toEqual({ status: 200, identity: shown });
  });

  it('shows a token counting down, and the credential refreshes it before it expires', async () => {
    await page.locator('#token-count', { hasText: /^1$/ }).waitFor();
    const firstTail = await page.locator('#token-tail').textContent();
    expect(await page.locator('#token-countdown').textContent()).toMatch(/^0:[0-2]\d$/);
    await takeScreenshot(page, folder);

    // Proactive refresh at half the lifetime: about 10 s after the first token.
    await page.locator('#token-count', { hasText: /^2$/ }).waitFor({ timeout: ACS_TOKEN_SECONDS * 1000 });
    // The countdown shows the credential's token on its next tick (once a second).
    await expect(page.locator('#token-tail', { hasNotText: firstTail ?? '' }).waitFor()).resolves.toBeUndefined();
  }, 40_000);

  it("exchanges the user's Teams token (from msal-browser's refresh token, for the ACS resource) for an ACS token", async () => {
    const exchangesBefore = service.local!.acs.counters.get('teams.exchange');
    await page.getByRole('button', { name: 'Exchange my Teams token' }).click();
    await page.locator('#teams-result', { hasText: 'Exchanged: an ACS token for your Teams identity' }).waitFor();
    expect(service.local!.acs.counters.get('teams.exchange')).toBe(exchangesBefore + 1);
  });

  it('revokes the tokens and gets a new one at once', async () => {
    const before = Number(await page.locator('#token-count').textContent());
    await page.getByRole('button', { name: 'Revoke my tokens' }).click();
    await page.locator('#identity-status', { hasText: 'Tokens revoked' }).waitFor();
    await page.locator('#token-count', { hasText: new RegExp(`^${before + 1}$`) }).waitFor();
    await expect(page.locator('#error').isHidden()).resolves.toBe(true);
  });

  it('deletes the identity: the API then knows none', async () => {
    await page.getByRole('button', { name: 'Delete my identity' }).click();
    await page.locator('#identity-status', { hasText: 'Deleted' }).waitFor();
    await expect(page.locator('#token').isHidden()).resolves.toBe(true);
    await expect(page.getByRole('button', { name: 'Create my identity' }).isVisible()).resolves.toBe(true);
    await expect(aliceIdentityByApi()).resolves.toMatchObject({ status: 404 });
  });

  it('creates a new identity on request, and shows one deleted elsewhere as gone', async () => {
    await page.getByRole('button', { name: 'Create my identity' }).click();
    await page.locator('#identity-status', { hasText: 'Created for you just now' }).waitFor();
    const recreated = await aliceIdentityByApi();
    expect(recreated).toEqual({ status: 200, identity: await page.locator('#identity').textContent() });

    // Deleted behind the page's back (another tab, an admin): the next revoke finds nothing.
    const token = await service.local!.entra.mintAccessToken({ user: 'alice' });
    expect((await fetch(`${service.url}/api/user`, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } })).status).toBe(204);
    await page.getByRole('button', { name: 'Revoke my tokens' }).click();
    await page.locator('#identity-status', { hasText: 'deleted elsewhere' }).waitFor();
    await expect(page.locator('#token').isHidden()).resolves.toBe(true);
    // That 404 is the one failure this journey expects; the browser reports it twice (the answer, and the console).
    const expected = problems.filter((problem) => problem.text.includes(`${service.url}/api/token`));
    expect(expected.map((problem) => problem.kind).sort()).toEqual(['console.error', 'http']);
    problems.splice(0, problems.length, ...problems.filter((problem) => !expected.includes(problem)));
  });

  it('signs out through the Entra emulator and comes back to the page, signed out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    // Back with msal's `state` in the query.
    await page.waitForURL((url) => url.origin === service.url && url.pathname === '/' && url.searchParams.has('state'));
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
  });

  it('left no error and no CSP violation in the browser console', () => {
    expect(problems).toEqual([]);
  });
});

/** Console errors and warnings, uncaught exceptions, failed requests, and CSP violations (reported by the page itself). */
function watchForProblems(page: Page, problems: BrowserProblem[]): void {
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning')
      problems.push({ kind: `console.${message.type()}`, text: `${message.text()} (${message.location().url})` });
  });
  page.on('pageerror', (error) => problems.push({ kind: 'pageerror', text: error.message }));
  page.on('requestfailed', (request) => problems.push({ kind: 'requestfailed', text: `${request.url()} ${request.failure()?.errorText}` }));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push({ kind: 'http', text: `${response.status()} ${response.url()}` });
  });
  // Runs in every document before its own scripts (DevTools injects it, so the page's CSP does not apply to it).
  // Browser code, so a string: this file is type-checked for Node.
  void page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (event) => {
      console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + event.blockedURI);
    });`,
  });
}

async function takeScreenshot(page: Page, folder: string): Promise<void> {
  const file = join(folder, 'sign-in-page.png');
  await page.screenshot({ path: file, fullPage: true });
  const target = process.env['SCREENSHOT_DIR'];
  if (target !== undefined && target !== '') {
    await mkdir(target, { recursive: true });
    await copyFile(file, join(target, 'sign-in-page.png'));
  }
}
