import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';

import { expect } from '@jest/globals';

import { present } from '../helpers/present';
import { useTestService } from '../helpers/test-service';

/**
 * `/api/docs/*` serves the files the docs page loads and nothing else from swagger-ui-dist: not the
 * package's manifest, demo page, OAuth redirect page, README or source maps. The page's own asset list
 * is read from the page, so a file it starts to load and the router does not serve fails here.
 */
const PACKAGE_FOLDER = dirname(require.resolve('swagger-ui-dist/package.json'));

describe('GET /api/docs/{file}', () => {
  const service = useTestService();

  async function pageAssets(): Promise<string[]> {
    const page = await service.http.get('/api/docs/').expect(200);
    return [...page.text.matchAll(/\b(?:src|href)="\.\/([^"]+)"/g)].map((match) => present(match[1], 'an asset path'));
  }

  describe('for a file the docs page loads', () => {
    it('answers 200 with its content type', async () => {
      const assets = await pageAssets();
      expect(assets).toEqual(
        expect.arrayContaining([
          'swagger-ui.css',
          'index.css',
          'favicon-32x32.png',
          'swagger-ui-bundle.js',
          'swagger-ui-standalone-preset.js',
          'swagger-initializer.js',
        ]),
      );
      for (const name of assets) {
        const res = await service.http.get(`/api/docs/${name}`).expect(200);
        const expected = name.endsWith('.js') ? /javascript/ : name.endsWith('.css') ? /^text\/css/ : /^image\/png/;
        expect({ name, type: res.headers['content-type'] }).toEqual({ name, type: expect.stringMatching(expected) });
      }
    });
  });

  describe('for a file of swagger-ui-dist the page does not load', () => {
    it.each([
      'package.json',
      'index.html',
      'oauth2-redirect.html',
      'oauth2-redirect.js',
      'README.md',
      'LICENSE',
      'NOTICE',
      'swagger-ui-bundle.js.map',
      'swagger-ui.css.map',
      'swagger-ui-es-bundle.js',
      'index.js',
      'absolute-path.js',
    ])('%s answers 404 not_found, without authentication', async (name) => {
      const res = await service.http.get(`/api/docs/${name}`).expect(404);
      expect(res.body).toMatchObject({ code: 'not_found' });
    });

    it('answers 404 for every file of the installed package outside the page (including ones a later release adds)', async () => {
      const served = new Set(await pageAssets());
      const others = readdirSync(PACKAGE_FOLDER).filter((name) => !served.has(name));
      expect(others.length).toBeGreaterThan(10);
      for (const name of others) {
        const res = await service.http.get(`/api/docs/${name}`);
        expect({ name, status: res.status }).toEqual({ name, status: 404 });
      }
    });
  });

  describe('for paths that try to leave the asset list', () => {
    it.each(['/api/docs/../package.json', '/api/docs/%2e%2e/package.json', '/api/docs/./package.json', '/api/docs/nested/swagger-ui.css'])(
      '%s is not served',
      async (path) => {
        const res = await service.http.get(path);
        expect(res.status).not.toBe(200);
        expect(res.text).not.toContain('"name": "swagger-ui-dist"');
      },
    );
  });
});
