import { dirname, join } from 'node:path';

import { Router, type Request, type RequestHandler } from 'express';

import { notFound } from '../errors/error-handler';
import type { OpenApiDocument } from './openapi-document';

/**
 * The folder of the swagger-ui-dist package. Found by path rather than by importing the package,
 * whose entry point loads its 1.5 MB browser bundle into the server process.
 */
const SWAGGER_UI_ASSETS = dirname(require.resolve('swagger-ui-dist/package.json'));

/**
 * The package's files that `docsPage` loads, and nothing else. The package folder also holds its own
 * package.json (its exact version), a demo index.html, oauth2-redirect.html (which hands the codes or
 * tokens in its URL to the window that opened it), the ES-module bundles and source maps. The docs page
 * needs none of them, and serving the folder would publish them all, and whatever a later release adds.
 */
const DOCS_ASSETS: Readonly<Record<string, string>> = {
  'swagger-ui.css': 'text/css',
  'index.css': 'text/css',
  'favicon-32x32.png': 'image/png',
  'swagger-ui-bundle.js': 'text/javascript',
  'swagger-ui-standalone-preset.js': 'text/javascript',
};

/**
 * Starts Swagger UI on the document. Served as a file, not inline, so helmet's default CSP
 * (`script-src 'self'`) allows it. The document URL is resolved against this script's own URL
 * (`<mount>/docs/swagger-initializer.js` → `<mount>/openapi.json`), so it works under any mount
 * path or proxy prefix and whether the page was opened as `/docs` or `/docs/`.
 */
const SWAGGER_INITIALIZER = `'use strict';
(function () {
  var script = document.currentScript;
  var documentUrl = new URL('../openapi.json', script && script.src ? script.src : window.location.href).href;
  window.addEventListener('load', function () {
    window.ui = SwaggerUIBundle({
      url: documentUrl,
      dom_id: '#swagger-ui',
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      plugins: [SwaggerUIBundle.plugins.DownloadUrl],
      layout: 'StandaloneLayout',
      persistAuthorization: false
    });
  });
})();
`;

function docsPage(assetBase: string): string {
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>ACS authentication server API</title>
    <link rel="stylesheet" type="text/css" href="${assetBase}swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="${assetBase}index.css">
    <link rel="icon" type="image/png" href="${assetBase}favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="${assetBase}swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="${assetBase}swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="${assetBase}swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
`;
}

/** Relative asset base for the page: `/docs` needs `docs/…`, `/docs/` needs `./…`. */
function assetBaseOf(req: Request): string {
  const path = req.originalUrl.split('?')[0] ?? '';
  return path.endsWith('/') ? './' : 'docs/';
}

/**
 * Public routes for the API description: `GET /openapi.json` (the document) and `GET /docs`
 * (Swagger UI from the installed swagger-ui-dist, served from this process: no CDN). Mount it
 * before authentication.
 */
export function createOpenApiRouter(document: OpenApiDocument): Router {
  const body = JSON.stringify(document);
  const router = Router();

  router.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(body);
  });

  // Non-strict routing makes this match `/docs/` too.
  router.get('/docs', (req, res) => {
    res.type('html').send(docsPage(assetBaseOf(req)));
  });
  router.get('/docs/swagger-initializer.js', (_req, res) => {
    res.type('application/javascript').send(SWAGGER_INITIALIZER);
  });
  for (const [name, type] of Object.entries(DOCS_ASSETS)) router.get(`/docs/${name}`, sendAsset(join(SWAGGER_UI_ASSETS, name), type));
  // Anything else under /docs is a 404 here, before it reaches authentication (which would answer 401
  // for a file that does not exist).
  router.use('/docs', notFound);
  return router;
}

/** One file at a fixed path: no part of the request reaches the file system. */
function sendAsset(path: string, type: string): RequestHandler {
  return (_req, res, next) => {
    res.type(type).sendFile(path, (error) => {
      if (error) next(error);
    });
  };
}
