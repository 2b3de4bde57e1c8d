// Builds the sign-in page into dist/web/ (or the folder after --out): esbuild bundles main.ts with msal-browser,
// @azure/communication-common and the token refresher into one app.js, and app.css; index.html and the icon are
// copied as they are. `npm run build` and `npm start` run it after tsc; tests build into a folder of their own.
// Plain JavaScript so it runs without a TypeScript loader.
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));

/** Builds the page into `outDir`; resolves with the files written. */
export async function buildWebPage(outDir) {
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [
      { in: join(here, 'main.ts'), out: 'app' },
      { in: join(here, 'app.css'), out: 'app' },
    ],
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // The browsers msal-browser 5 supports; nothing older is worth a bigger bundle.
    target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
    minify: true,
    // The bundled packages' licence notices, kept at the end of app.js.
    legalComments: 'eof',
    define: { 'process.env.NODE_ENV': '"production"' },
    tsconfig: join(here, 'tsconfig.json'),
    logLevel: 'warning',
  });
  await Promise.all(['index.html', 'favicon.svg'].map((file) => copyFile(join(here, file), join(outDir, file))));
  return ['index.html', 'app.js', 'app.css', 'favicon.svg'].map((file) => join(outDir, file));
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--out');
  const outDir = resolve(at > 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : join(here, '..', '..', 'dist', 'web'));
  await buildWebPage(outDir);
}
