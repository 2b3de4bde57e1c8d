/**
 * Serves the sign-in page (built from client/web/ into dist/web/ by `npm run build`) at `/`. The files are
 * read once at start-up and served from memory by exact path, so no request can name a file on disk.
 *
 * The page gets a policy of its own, stricter than helmet's default: scripts and styles from this origin
 * only (no inline code, Trusted Types required for script sinks), network calls only to this service and the
 * Entra sign-in origins, no framing, no plugins, no forms.
 *
 * @packageDocumentation
 */

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { Router, type RequestHandler } from 'express';

import { signInOrigins, type PageSettings } from './page-settings';

/** URL path → file in the build folder, with its media type. Nothing else is served. */
const PAGE_FILES: readonly { readonly path: string; readonly file: string; readonly type: string }[] = [
  { path: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { path: '/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { path: '/app.css', file: 'app.css', type: 'text/css; charset=utf-8' },
  { path: '/favicon.svg', file: 'favicon.svg', type: 'image/svg+xml' },
];

/** Where the page's settings are served (read by client/web/main.ts). */
export const PAGE_SETTINGS_PATH = '/page-settings.json';

/** The page, ready to serve: its routes, and the settings it was built with. */
export interface WebPage {
  readonly router: Router;
  readonly settings: PageSettings;
}

/** Thrown when the build folder lacks a page file (the page was not built). */
export class WebPageNotBuiltError extends Error {
  constructor(directory: string, file: string) {
    super(`the sign-in page is not built: ${join(directory, file)} is missing (npm run build makes it)`);
    this.name = 'WebPageNotBuiltError';
  }
}

interface Served {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** Reads the built page from `directory` and returns its router; throws {@link WebPageNotBuiltError} when a file is missing. */
export async function loadWebPage(directory: string, settings: PageSettings): Promise<WebPage> {
  const served = new Map<string, Served>();
  for (const { path, file, type } of PAGE_FILES) {
    let body: Buffer;
    try {
      body = await readFile(join(directory, file));
    } catch {
      throw new WebPageNotBuiltError(directory, file);
    }
    served.set(path, { body, type, etag: etagOf(body) });
  }
  const json = Buffer.from(JSON.stringify(settings));
  served.set(PAGE_SETTINGS_PATH, { body: json, type: 'application/json; charset=utf-8', etag: etagOf(json) });

  const policy = contentSecurityPolicy(settings);
  const router = Router({ caseSensitive: true, strict: true });
  for (const [path, file] of served) router.get(path, serveFile(file, policy));
  return { router, settings };
}

function serveFile(file: Served, policy: string): RequestHandler {
  return (req, res) => {
    res.set({
      'Content-Security-Policy': policy,
      'Content-Type': file.type,
      // Revalidated on every load (cheap: 304 by ETag), so a new deployment's page is never mixed with an old script.
      'Cache-Control': 'no-cache',
      ETag: file.etag,
    });
    if (req.fresh) {
      res.status(304).end();
      return;
    }
    res.status(200).send(file.body);
  };
}

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

/** The page's Content-Security-Policy: this origin's files, and calls only to the service and the sign-in origins. */
export function contentSecurityPolicy(settings: PageSettings): string {
  const signIn = signInOrigins(settings).join(' ');
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self' ${signIn}`,
    // msal-browser renews silently in a hidden frame of the authority when its refresh token is no longer good.
    `frame-src ${signIn}`,
    "frame-ancestors 'none'",
    "form-action 'none'",
    "base-uri 'none'",
    "object-src 'none'",
    "require-trusted-types-for 'script'",
  ].join('; ');
}
