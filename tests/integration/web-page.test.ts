import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import supertest from 'supertest';

import { LOCAL_SPA_CLIENT_ID, LOCAL_TENANT_ID } from '../../src/local/local-directory';
import { startService, type RunningService } from '../../src/server';
import { pooledRsaKeys } from '../helpers/key-pool';
import { testCertificates } from '../helpers/test-service';
import { buildWebPageInto } from '../helpers/web-page-build';

/**
 * How the service serves the sign-in page (the page itself is driven in Chromium by tests/browser): what it
 * serves and with which policy, what it tells the page, and that WEB_PAGE=off (or a page that was never
 * built) leaves `/` to the API's 404.
 */
/** The emulators' keys and CA from the run's pool, as test services get them. */
const localAzure = { certificates: testCertificates(), rsaKeys: pooledRsaKeys };

describe('the sign-in page as served (local mode)', () => {
  let folder: string;
  let pageDirectory: string;
  let service: RunningService;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'acs-auth-web-'));
    pageDirectory = join(folder, 'web');
    await buildWebPageInto(pageDirectory);
    service = await startService(
      { PORT: '0', NODE_ENV: 'test', LOG_LEVEL: 'silent' },
      { sessionFile: join(folder, 'session.json'), webPageDirectory: pageDirectory, localAzure },
    );
  }, 60_000);
  afterAll(async () => {
    await service?.stop();
    await rm(folder, { recursive: true, force: true });
  });

  it('serves the page, its script, style and icon with a strict policy of their own', async () => {
    const browserUrl = service.local?.entra.browserUrl ?? '';
    expect(browserUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const [path, type] of [
      ['/', /^text\/html; charset=utf-8$/],
      ['/app.js', /^text\/javascript; charset=utf-8$/],
      ['/app.css', /^text\/css; charset=utf-8$/],
      ['/favicon.svg', /^image\/svg\+xml/],
    ] as const) {
      const answer = await supertest(service.url).get(path).expect(200);
      expect(answer.headers['content-type']).toMatch(type);
      expect(answer.headers['cache-control']).toBe('no-cache');
      const policy = answer.headers['content-security-policy'] ?? '';
      expect(policy.split('; ')).toEqual(
        expect.arrayContaining([
          "default-src 'none'",
          "script-src 'self'",
          "style-src 'self'",
          `connect-src 'self' ${service.local?.entra.url} ${browserUrl}`,
          "frame-ancestors 'none'",
          "require-trusted-types-for 'script'",
        ]),
      );
      expect(policy).not.toMatch(/unsafe-|data:|\*/);
    }
  });

  it('has no inline script or style: the page loads its code from /app.js', async () => {
    const html = (await supertest(service.url).get('/').expect(200)).text;
    expect(html).toContain('<script type="module" src="/app.js"></script>');
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).not.toMatch(/<style|style="|\son[a-z]+="/i);
  });

  it('answers 304 to a browser that has the file', async () => {
    const first = await supertest(service.url).get('/app.js').expect(200);
    const etag = first.headers['etag'] ?? '';
    expect(etag).toMatch(/^"[\w-]{27}"$/);
    await supertest(service.url).get('/app.js').set('If-None-Match', etag).expect(304);
  });

  it('tells the page to sign in as the demo SPA, with the metadata of the emulator on plain-http loopback', async () => {
    const settings = (await supertest(service.url).get('/page-settings.json').expect(200)).body as Record<string, unknown>;
    const entra = service.local!.entra;
    const metadataUrl = `${entra.browserUrl}/${LOCAL_TENANT_ID}/v2.0/.well-known/openid-configuration`;
    expect(settings).toEqual({
      mode: 'local',
      clientId: LOCAL_SPA_CLIENT_ID,
      authority: `${entra.url}/${LOCAL_TENANT_ID}`,
      knownAuthorities: [new URL(entra.url).host],
      authorityMetadataUrl: metadataUrl,
      apiScope: `api://${service.config.entra.clientId}/access_as_user`,
      teams: { scopes: expect.any(Array) as unknown, exchange: true },
    });
    // What msal-browser will read: endpoints on the browser listener, the https issuer unchanged.
    const metadata = (await (await fetch(metadataUrl)).json()) as Record<string, string>;
    expect(metadata['authorization_endpoint']).toBe(`${entra.browserUrl}/${LOCAL_TENANT_ID}/oauth2/v2.0/authorize`);
    expect(metadata['token_endpoint']).toBe(`${entra.browserUrl}/${LOCAL_TENANT_ID}/oauth2/v2.0/token`);
    expect(metadata['issuer']).toBe(entra.issuerV2);
  });

  it('serves nothing else from the build folder, and no file by another spelling', async () => {
    for (const path of ['/index.html', '/app.js.map', '/build.mjs', '/web/app.js', '/%2e%2e/package.json', '/APP.JS', '/app.js/']) {
      const answer = await supertest(service.url).get(path);
      expect([path, answer.status]).toEqual([path, 404]);
    }
    await supertest(service.url).post('/').expect(404);
  });

  it('leaves the API as it was: /health and the API answer, /api still needs a token', async () => {
    await supertest(service.url).get('/health').expect(200, { status: 'ok' });
    await supertest(service.url).get('/api/user').expect(401);
  });

  it('WEB_PAGE=off: no page, no settings, and no plain-http sign-in listener', async () => {
    const off = await startService(
      { PORT: '0', NODE_ENV: 'test', LOG_LEVEL: 'silent', WEB_PAGE: 'off' },
      { sessionFile: join(folder, 'off.json'), webPageDirectory: pageDirectory, localAzure },
    );
    try {
      expect(off.config.webPage).toEqual({ enabled: false });
      expect(off.local?.entra.browserUrl).toBeUndefined();
      await supertest(off.url).get('/').expect(404);
      await supertest(off.url).get('/page-settings.json').expect(404);
    } finally {
      await off.stop();
    }
  });

  it('a page that was never built is left out and the API still starts', async () => {
    const unbuilt = await startService(
      { PORT: '0', NODE_ENV: 'test', LOG_LEVEL: 'silent' },
      { sessionFile: join(folder, 'unbuilt.json'), webPageDirectory: join(folder, 'nothing-here'), localAzure },
    );
    try {
      expect(unbuilt.config.webPage.enabled).toBe(true);
      await supertest(unbuilt.url).get('/').expect(404);
      await supertest(unbuilt.url).get('/health').expect(200);
    } finally {
      await unbuilt.stop();
    }
  });
});
