import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import ts from 'typescript';

/**
 * Transpiles `src/` and `bench/` to plain CommonJS once, so the measured processes run as production
 * does (`node file.js`): under ts-node each would also hold the TypeScript compiler in memory (about
 * 100 MB of RSS, which would swamp the memory figures) and take seconds to start. Type checking is
 * `npm run typecheck`'s job; this only strips types, like ts-node's transpile-only mode.
 */

const ROOT = path.resolve(__dirname, '..');
/** Inside node_modules, so the compiled files resolve the project's packages as the sources do. */
const CACHE_ROOT = path.join(ROOT, 'node_modules', '.cache', 'acs-auth-server-bench');

export interface CompiledBench {
  /** Path of `relativeModule` (e.g. `bench/service-process`) compiled to .js. */
  modulePath(relativeModule: string): string;
  /** Remove the compiled files. */
  cleanup(): Promise<void>;
}

async function listTypeScript(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true });
  const files = await Promise.all(
    entries.map(async (entry) => {
      const full = path.join(directory, entry.name);
      if (entry.isDirectory()) return entry.name === 'results' ? [] : listTypeScript(full);
      return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
    }),
  );
  return files.flat();
}

export async function compileForBench(): Promise<CompiledBench> {
  // One directory per run, so two runs at once never delete each other's files.
  const outDir = path.join(CACHE_ROOT, String(process.pid));
  await rm(outDir, { recursive: true, force: true });
  const sources = (await Promise.all(['src', 'bench'].map((directory) => listTypeScript(path.join(ROOT, directory))))).flat();
  const compilerOptions: ts.CompilerOptions = {
    module: ts.ModuleKind.CommonJS,
    target: ts.ScriptTarget.ES2022,
    esModuleInterop: true,
    sourceMap: false,
  };
  await Promise.all(
    sources.map(async (file) => {
      const output = ts.transpileModule(await readFile(file, 'utf8'), { compilerOptions, fileName: file });
      const target = path.join(outDir, path.relative(ROOT, file)).replace(/\.ts$/, '.js');
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, output.outputText);
    }),
  );
  return {
    modulePath: (relativeModule) => path.join(outDir, `${relativeModule}.js`),
    cleanup: () => rm(outDir, { recursive: true, force: true }),
  };
}
