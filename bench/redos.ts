import { request, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';

import { composeService } from '../src/composition-root';
import { loadConfig } from '../src/config/config';
import { clientAddressKey } from '../src/http/client-address';
import { MAX_URL_LENGTH } from '../src/http/url-limit';
import { startLocalAzure } from '../src/local/local-azure';
import { createLogger } from '../src/observability/logger';
import { redactTokens, summarizeError } from '../src/observability/redact';
import { parseTokenOptions } from '../src/routes/token-options';

/**
 * Proof that the service's handling of untrusted text costs time linear in its length (issue 11: the
 * old log redaction was quadratic, and 200 requests of 15.6 KB stalled the service for 16 s).
 *
 * Part 1 calls the functions that run a regular expression over untrusted input directly, on
 * adversarial inputs of growing size, and prints microseconds per KB: flat means linear, growing with
 * the size means worse. The old redaction pattern is measured too, for comparison.
 * Part 2 sends adversarial requests of growing size to the real app (as `npm start` composes it, on
 * the local emulators, logging on, TRUST_PROXY=1, both rate limits on) and prints the extra
 * microseconds per KB over the same request at its smallest: this covers the regular expressions of
 * other modules that are not exported (bearer header, token shape, request id, GUID, Express's routing,
 * proxy-addr, content-type) with the inputs that reach them.
 *
 * Run: npm run bench:redos (npx ts-node --transpile-only bench/redos.ts); `--quick` for fewer repetitions.
 * A timing is a figure to read, not an assertion: there is deliberately no timing check in jest.
 */

const QUICK = process.argv.includes('--quick');
const KB = 1024;

/** The pattern redaction used before issue 11, kept here only to show what linear is being compared with. */
const OLD_JWT_LIKE = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;

/** `unit` repeated to `bytes` characters (cut to length). */
function repeated(unit: string, bytes: number): string {
  return unit.repeat(Math.ceil(bytes / unit.length)).slice(0, bytes);
}

/** Median microseconds of `work()` over enough runs to take at least ~20 ms per sample. */
function microseconds(work: () => void): number {
  const start = process.hrtime.bigint();
  work();
  const once = Math.max(1, Number(process.hrtime.bigint() - start) / 1000);
  const runs = Math.min(10_000, Math.max(1, Math.round((QUICK ? 5_000 : 20_000) / once)));
  const samples: number[] = [];
  for (let sample = 0; sample < 5; sample += 1) {
    const begin = process.hrtime.bigint();
    for (let run = 0; run < runs; run += 1) work();
    samples.push(Number(process.hrtime.bigint() - begin) / 1000 / runs);
  }
  return median(samples);
}

/** The middle value (the upper one of an even count); NaN for none. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

interface DirectCase {
  readonly name: string;
  readonly sizesKb: readonly number[];
  readonly run: (input: string) => unknown;
  readonly input: (bytes: number) => string;
}

const tokenQuery = { scopes: ['chat', 'voip'] as const, expiresInMinutes: undefined };
const quietly = (work: () => unknown) => () => {
  try {
    work();
  } catch {
    // A refusal is the expected answer to these inputs; only its cost is measured.
  }
};

const DIRECT_CASES: readonly DirectCase[] = [
  {
    name: "OLD redaction (before the fix): 'eyJ' repeated",
    sizesKb: [1, 2, 4, 8, 16],
    run: (s) => s.replace(OLD_JWT_LIKE, '[redacted]'),
    input: (n) => repeated('eyJ', n),
  },
  {
    name: "redactTokens, uncut: 'eyJ' repeated (issue 11)",
    sizesKb: [1, 4, 16, 64, 256],
    run: (s) => redactTokens(s, s.length),
    input: (n) => repeated('eyJ', n),
  },
  {
    name: "redactTokens, uncut: 'eyJab.' repeated",
    sizesKb: [1, 4, 16, 64, 256],
    run: (s) => redactTokens(s, s.length),
    input: (n) => repeated('eyJab.', n),
  },
  {
    name: "redactTokens, uncut: 'eyJ' + base64url, no dot",
    sizesKb: [1, 4, 16, 64, 256],
    run: (s) => redactTokens(s, s.length),
    input: (n) => `eyJ${repeated('a', n - 3)}`,
  },
  {
    name: "redactTokens, uncut: 'a.' repeated",
    sizesKb: [1, 4, 16, 64, 256],
    run: (s) => redactTokens(s, s.length),
    input: (n) => repeated('a.', n),
  },
  {
    name: 'redactTokens, as logged (cut at 256)',
    sizesKb: [1, 4, 16, 64, 256],
    run: (s) => redactTokens(s, 256),
    input: (n) => repeated('eyJ', n),
  },
  {
    name: "summarizeError: message 'eyJ' repeated",
    sizesKb: [1, 4, 16, 64, 256],
    run: (s) => summarizeError(new Error(s)),
    input: (n) => repeated('eyJ', n),
  },
  {
    name: 'clientAddressKey: colons and digits',
    sizesKb: [1, 4, 16, 64, 256],
    run: (s) => clientAddressKey({ ip: s }),
    input: (n) => repeated('1:', n),
  },
  {
    name: "clientAddressKey: '[' then colons",
    sizesKb: [1, 4, 16, 64, 256],
    run: (s) => clientAddressKey({ ip: s }),
    input: (n) => `[${repeated('::1', n - 1)}`,
  },
  {
    name: "parseTokenOptions: scopes 'chat,' repeated",
    sizesKb: [1, 4, 16, 64, 256],
    run: (s) => quietly(() => parseTokenOptions({ scopes: s }, tokenQuery))(),
    input: (n) => repeated('chat,', n),
  },
  {
    name: 'parseTokenOptions: expiresInMinutes digits',
    sizesKb: [1, 4, 16, 64, 256],
    run: (s) => quietly(() => parseTokenOptions({ expiresInMinutes: s }, tokenQuery))(),
    input: (n) => repeated('9', n),
  },
];

function printDirect(): void {
  console.log('Part 1: the functions, in this process (microseconds per KB of input: flat = linear, falling = bounded)\n');
  for (const testCase of DIRECT_CASES) {
    const cells = testCase.sizesKb.map((kb) => {
      const input = testCase.input(kb * KB);
      const perKb = microseconds(() => testCase.run(input)) / kb;
      return `${kb} KB: ${perKb.toFixed(2)}`;
    });
    console.log(`  ${testCase.name.padEnd(52)} ${cells.join('  ')}`);
  }
}

interface HttpCase {
  readonly name: string;
  readonly sizesKb: readonly number[];
  /** The request with an adversarial part of `bytes` characters (1: the same request at its smallest). */
  readonly request: (bytes: number) => {
    readonly method: string;
    readonly path: string;
    readonly headers: Record<string, string>;
    readonly body?: string;
  };
}

function httpCases(tokens: { readonly user: string; readonly admin: string }): HttpCase[] {
  const urlSizes = [1, 2, 4, 7.5];
  const headerSizes = [1, 2, 4, 8, 12];
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  return [
    {
      name: "GET /x/ + 'eyJ'… (404; logged, redacted)",
      sizesKb: urlSizes,
      request: (n) => ({ method: 'GET', path: `/x/${repeated('eyJ', n)}`, headers: {} }),
    },
    {
      name: "GET /api/ + 'eyJ'… (401; + per-address limit)",
      sizesKb: urlSizes,
      request: (n) => ({ method: 'GET', path: `/api/${repeated('eyJ', n)}`, headers: {} }),
    },
    {
      name: 'GET /x/ + 12 KB (414, refused first)',
      sizesKb: [12],
      request: (n) => ({ method: 'GET', path: `/x/${repeated('eyJ', n)}`, headers: {} }),
    },
    {
      name: "GET /api/token?scopes='chat,'… (400; token routes' parser)",
      sizesKb: urlSizes,
      request: (n) => ({ method: 'GET', path: `/api/token?scopes=${repeated('chat,', n)},nope`, headers: bearer(tokens.user) }),
    },
    {
      name: 'DELETE /api/user/{a…} (400; GUID check, admin)',
      sizesKb: urlSizes,
      request: (n) => ({ method: 'DELETE', path: `/api/user/${repeated('a', n)}`, headers: bearer(tokens.admin) }),
    },
    {
      name: 'Authorization: Bearer a…a! (401; bearer parse)',
      sizesKb: headerSizes,
      request: (n) => ({ method: 'GET', path: '/api/user', headers: { authorization: `Bearer ${repeated('a', n)}!` } }),
    },
    {
      name: 'Authorization: Bearer + spaces… (401)',
      sizesKb: headerSizes,
      request: (n) => ({ method: 'GET', path: '/api/user', headers: { authorization: `Bearer ${repeated(' ', n)}x!` } }),
    },
    {
      name: 'Authorization: Bearer eyJ.eyJ… (401; token shape)',
      sizesKb: headerSizes,
      request: (n) => ({ method: 'GET', path: '/api/user', headers: { authorization: `Bearer ${repeated('eyJ.', n)}` } }),
    },
    {
      name: 'x-request-id: a…a! (200 /health; id check)',
      sizesKb: headerSizes,
      request: (n) => ({ method: 'GET', path: '/health', headers: { 'x-request-id': `${repeated('a', n)}!` } }),
    },
    {
      name: "X-Forwarded-For: '1.2.3.4:5, '… (401; proxy-addr, port)",
      sizesKb: headerSizes,
      request: (n) => ({ method: 'GET', path: '/api/user', headers: { 'x-forwarded-for': `${repeated('1.2.3.4:5, ', n)}1.2.3.4:5` } }),
    },
    {
      name: "Content-Type: json; 'a=b; '… (401; content-type parse)",
      sizesKb: headerSizes,
      request: (n) => ({
        method: 'POST',
        path: '/api/user',
        headers: { 'content-type': `application/json; ${repeated('a=b; ', n)}charset=utf-8` },
        body: '{}',
      }),
    },
  ];
}

function send(base: URL, agent: Agent, spec: ReturnType<HttpCase['request']>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(spec.path, base), { method: spec.method, headers: spec.headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(spec.body);
  });
}

async function timed(base: URL, agent: Agent, spec: ReturnType<HttpCase['request']>): Promise<{ micros: number; status: number }> {
  const start = process.hrtime.bigint();
  const status = await send(base, agent, spec);
  return { micros: Number(process.hrtime.bigint() - start) / 1000, status };
}

/**
 * Median microseconds per request of the sized request and of the smallest one, sent alternately so
 * that both see the same machine (the difference is what the size costs).
 */
async function paired(
  base: URL,
  agent: Agent,
  testCase: HttpCase,
  bytes: number,
  count: number,
): Promise<{ small: number; sized: number; status: number }> {
  const small: number[] = [];
  const sized: number[] = [];
  let status = 0;
  for (let index = 0; index < count; index += 1) {
    small.push((await timed(base, agent, testCase.request(1))).micros);
    const answer = await timed(base, agent, testCase.request(bytes));
    sized.push(answer.micros);
    status = answer.status;
  }
  return { small: median(small), sized: median(sized), status };
}

async function printHttp(base: URL, tokens: { readonly user: string; readonly admin: string }): Promise<void> {
  console.log("\nPart 2: through HTTP, the real app (per size: microseconds per request, the smallest request's, and the");
  console.log('difference per KB; a difference per KB that stays near zero or flat = linear; each request alone)\n');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const count = QUICK ? 100 : 300;
  // Warm the JIT on every path first, so the first rows are not measuring compilation.
  for (const testCase of httpCases(tokens)) for (const kb of testCase.sizesKb) await paired(base, agent, testCase, Math.round(kb * KB), 30);
  for (const testCase of httpCases(tokens)) {
    const cells: string[] = [];
    for (const kb of testCase.sizesKb) {
      const { small, sized, status } = await paired(base, agent, testCase, Math.round(kb * KB), count);
      cells.push(`${kb} KB: ${sized.toFixed(0)} vs ${small.toFixed(0)} = ${((sized - small) / kb).toFixed(1)}/KB (${status})`);
    }
    console.log(`  ${testCase.name}\n      ${cells.join('   ')}`);
  }
  agent.destroy();
}

async function main(): Promise<void> {
  printDirect();
  const local = await startLocalAzure();
  const config = loadConfig({
    ...local.settings,
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    TRUST_PROXY: '1',
    RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '1000000',
    RATE_LIMIT_PER_USER_PER_MINUTE: '1000000',
  });
  const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  const runtime = composeService(config, {
    logger: createLogger({ level: config.log.level, destination: discard }),
    trustedCaPem: local.caCertPem,
  });
  const server = await new Promise<Server>((resolve) => {
    const listening = runtime.app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  try {
    const base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const tokens = {
      user: await local.entra.mintAccessToken({ user: 'alice' }),
      admin: await local.entra.mintAccessToken({ user: 'bob', roles: [config.entra.adminRole] }),
    };
    await printHttp(base, tokens);
    console.log(
      `\nURLs over ${MAX_URL_LENGTH} characters are refused with 414 before anything else reads them; Node refuses header blocks over 16 KB (431).`,
    );
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await runtime.close();
    await local.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
