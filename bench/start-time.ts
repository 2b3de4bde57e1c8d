import { spawn } from 'node:child_process';
import { utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

/**
 * `npm run bench:start`: how long a newcomer waits from `npm start` to a healthy local service (issue 12,
 * target under 3 s on a warm checkout). Each run spawns the README's command, watches the log for the
 * port, polls `/health` until it answers 200, then stops the service with SIGTERM, as Ctrl-C would.
 *
 * Three cases, each the median of several runs:
 * - warm: nothing changed since the last build, so `tsc -b` finds dist/ up to date;
 * - after an edit: one source file touched, so the incremental build re-checks and re-emits;
 * - service only: `node dist/main.js`, the floor that npm and the build check add to.
 */

const ROOT = resolve(__dirname, '..');
const RUNS = Number(process.env['BENCH_START_RUNS'] ?? 5);
const TARGET_MS = 3_000;
const GIVE_UP_MS = 120_000;

interface StartCommand {
  readonly label: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Runs before each start, untimed. */
  readonly before?: () => Promise<void>;
}

/** Milliseconds from spawn to the first 200 from /health. */
async function timeToHealthy(start: StartCommand): Promise<number> {
  const began = performance.now();
  // Its own process group, so the SIGTERM reaches npm and the node process it starts.
  const child = spawn(start.command, [...start.args], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const port = await portFromLog(child.stdout);
    await untilHealthy(`http://127.0.0.1:${port}/health`, began);
    return performance.now() - began;
  } finally {
    await stop(child.pid);
  }
}

/** The port from the service's `listening` log line (pino JSON on stdout). */
function portFromLog(stdout: NodeJS.ReadableStream): Promise<number> {
  return new Promise((resolvePort, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error('no listening line in the log')), GIVE_UP_MS);
    stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const match = /"port":(\d+)[^\n]*"msg":"listening"/.exec(buffered);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolvePort(Number(match[1]));
      }
    });
    stdout.on('end', () => reject(new Error('the service exited before listening')));
  });
}

async function untilHealthy(url: string, began: number): Promise<void> {
  while (performance.now() - began < GIVE_UP_MS) {
    const status = await fetch(url).then(
      (response) => response.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((resolveWait) => setTimeout(resolveWait, 10));
  }
  throw new Error(`${url} did not answer 200`);
}

async function stop(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  for (let waited = 0; waited < 15_000; waited += 50) {
    try {
      process.kill(-pid, 0);
    } catch {
      return;
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
  process.kill(-pid, 'SIGKILL');
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

async function touchASourceFile(): Promise<void> {
  const now = new Date();
  await utimes(join(ROOT, 'src', 'app.ts'), now, now);
}

async function main(): Promise<void> {
  const cases: StartCommand[] = [
    { label: 'npm start, warm (no change)', command: 'npm', args: ['start', '--silent'] },
    { label: 'npm start, a source file touched', command: 'npm', args: ['start', '--silent'], before: touchASourceFile },
    { label: 'node dist/main.js (service only)', command: process.execPath, args: ['dist/main.js'] },
  ];
  // One untimed start, so the first case starts from a built, warm checkout.
  await timeToHealthy(cases[0]!);
  const results: { label: string; medianMs: number; runsMs: number[] }[] = [];
  for (const startCase of cases) {
    const runsMs: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      await startCase.before?.();
      runsMs.push(await timeToHealthy(startCase));
    }
    results.push({ label: startCase.label, medianMs: median(runsMs), runsMs });
  }
  for (const { label, medianMs, runsMs } of results) {
    console.log(
      `${label.padEnd(36)} median ${(medianMs / 1000).toFixed(2)} s   runs: ${runsMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')}`,
    );
  }
  const warm = results[0]?.medianMs ?? Infinity;
  console.log(`target: a warm npm start healthy in under ${TARGET_MS / 1000} s: ${warm < TARGET_MS ? 'met' : 'NOT met'}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
