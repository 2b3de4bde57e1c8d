import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startService, type RunningService } from '../../src/server';

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** A plain HTTP request on its own connection, as a client in the middle of a call would be. */
function call(url: string, method: string, token: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { Authorization: `Bearer ${token}` }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('graceful shutdown (what App Service does with SIGTERM)', () => {
  let folder: string;
  let service: RunningService;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'acs-auth-shutdown-'));
    service = await startService(
      { PORT: '0', NODE_ENV: 'test', LOG_LEVEL: 'silent', RATE_LIMIT_PER_USER_PER_MINUTE: '0' },
      { sessionFile: join(folder, 'session.json'), shutdownGraceMs: 20_000 },
    );
  });
  afterAll(async () => {
    await service.stop();
    await rm(folder, { recursive: true, force: true });
  });

  it('finishes every in-flight request, then refuses new connections', async () => {
    const local = service.local;
    if (!local) throw new Error('expected local mode');
    const names = ['alice', 'bob', 'carol'] as const;
    const users = await Promise.all(
      Array.from({ length: 20 }, (_, index) => local.entra.mintAccessToken({ user: names[index % names.length] })),
    );
    // Every request will be inside the service, waiting on ACS, when the stop begins.
    local.acs.faults.setLatency(500);
    const inFlight = users.map((token) => call(`${service.url}/api/token`, 'POST', token));
    // Stop only once every request has reached ACS, i.e. is inside the service waiting on it.
    while (local.acs.counters.total() < users.length) await new Promise((resolve) => setTimeout(resolve, 25));
    const stopped = service.stop();

    const answers = await Promise.all(inFlight);
    expect(answers.map((answer) => answer.status)).toEqual(users.map(() => 201));
    await stopped;
    await expect(call(`${service.url}/health`, 'GET', 'x')).rejects.toThrow(/ECONNREFUSED/);
  });
});
