import { execFile } from 'node:child_process';
import { join, resolve, sep } from 'node:path';

import { startLocalAzure, type LocalAzure } from '../../src/local/local-azure';
import { useTempFolder } from '../helpers/temp-files';

/**
 * Azure mode must not load what only local mode needs (issue 12): the emulators under src/local and
 * node-forge (their certificate maker; the service needs it only to read a .p12 client certificate).
 * A child process starts the service through `startService` exactly as `main.ts` does, but with Azure
 * settings (here pointing at emulators run by this test, trusted through NODE_EXTRA_CA_CERTS as a
 * deployment trusts its CAs), serves a real token request, and then reports every module it loaded.
 */

const ROOT = resolve(__dirname, '../..');

interface ChildReport {
  readonly created: number;
  readonly issued: number;
  readonly modules: readonly string[];
}

const CHILD_SCRIPT = `
require('ts-node').register({ transpileOnly: true, compilerOptions: { module: 'commonjs', moduleResolution: 'node' } });
const { startService } = require(${JSON.stringify(join(ROOT, 'src/server.ts'))});
(async () => {
  const service = await startService(process.env);
  const headers = { authorization: 'Bearer ' + process.env.TEST_USER_TOKEN };
  const created = await fetch(service.url + '/api/user', { method: 'POST', headers });
  const issued = await fetch(service.url + '/api/token', { headers });
  await service.stop();
  process.stdout.write(JSON.stringify({ created: created.status, issued: issued.status, modules: Object.keys(require.cache) }));
})().catch((error) => { process.stderr.write(String(error && error.stack || error)); process.exit(1); });
`;

function runChild(script: string, env: NodeJS.ProcessEnv): Promise<ChildReport> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      process.execPath,
      ['-e', script],
      { cwd: ROOT, env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`child failed: ${error.message}\n${stderr}`));
        else resolvePromise(JSON.parse(stdout) as ChildReport);
      },
    );
  });
}

describe('Azure mode loads no local-mode code', () => {
  const temp = useTempFolder('azure-mode-');
  let local: LocalAzure | undefined;
  let report: ChildReport;

  beforeAll(async () => {
    local = await startLocalAzure();
    const caFile = temp.file('ca.pem', local.caCertPem);
    const token = await local.entra.mintAccessToken({ user: 'alice' });
    report = await runChild(CHILD_SCRIPT, {
      PATH: process.env['PATH'],
      ...local.settings,
      NODE_ENV: 'production',
      LOG_LEVEL: 'silent',
      PORT: '0',
      NODE_EXTRA_CA_CERTS: caFile,
      TEST_USER_TOKEN: token,
    });
  }, 90_000);

  afterAll(async () => {
    await local?.close();
  });

  it('serves the README flow (create, then a token) on the Azure-mode path', () => {
    expect(report.created).toBe(201);
    expect(report.issued).toBe(201);
  });

  it('loaded the service from src, and nothing from src/local', () => {
    const fromSrc = report.modules.filter((path) => path.startsWith(join(ROOT, 'src') + sep));
    expect(fromSrc).toContain(join(ROOT, 'src/server.ts'));
    expect(fromSrc).toContain(join(ROOT, 'src/composition-root.ts'));
    expect(fromSrc.filter((path) => path.startsWith(join(ROOT, 'src/local') + sep))).toEqual([]);
  });

  it('did not load node-forge', () => {
    expect(report.modules.filter((path) => path.includes(`${sep}node_modules${sep}node-forge${sep}`))).toEqual([]);
  });
});
