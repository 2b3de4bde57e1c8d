import { inspect } from 'node:util';

import autocannon from 'autocannon';

/**
 * One load run with autocannon, in the orchestrator's process: `GET /api/token` with the bearer
 * token rotated round-robin across every user, so each request is a different user's until the list
 * wraps. Latencies are kept exactly (autocannon's own histogram rounds to whole milliseconds).
 */

export interface LoadOptions {
  readonly url: string;
  readonly path: string;
  readonly tokens: readonly string[];
  readonly connections: number;
  /** Run for this many seconds... */
  readonly durationSeconds?: number;
  /** ...or send exactly this many requests (then each of the first `amount` users is asked once). */
  readonly amount?: number;
  /** Hard bound on the whole run; autocannon is stopped when it is reached. */
  readonly boundSeconds: number;
  /** Called every 10 s with the responses so far (long runs only say they are alive). */
  readonly onProgress?: (completed: number) => void;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export interface LoadFigures {
  /** Requests sent, including those still in flight when a timed run ended. */
  readonly sent: number;
  /** Responses of any status. */
  readonly completed: number;
  readonly ok: number;
  readonly non2xx: number;
  /** Connection errors, timeouts included. */
  readonly errors: number;
  readonly timeouts: number;
  readonly statusCodes: Readonly<Record<string, number>>;
  readonly durationSeconds: number;
  /** 2xx responses per second. */
  readonly requestsPerSecond: number;
  /** Latency of 2xx responses, in milliseconds (fractions kept). */
  readonly latencyMs: LatencySummary;
}

export function summarize(samples: Float64Array | number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  if (sorted.length === 0) return { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  // Nearest-rank percentiles: the value below which `p` of the samples fall.
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
  let sum = 0;
  for (const value of sorted) sum += value;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1), mean: sum / sorted.length };
}

/** A function that answers the items in turn, forever (the list must not be empty). */
function roundRobin<T>(items: readonly T[]): () => T {
  const [first] = items;
  if (first === undefined) throw new Error('round-robin over an empty list');
  let next = 0;
  return () => {
    const item = items[next % items.length] ?? first;
    next += 1;
    return item;
  };
}

export async function runLoad(options: LoadOptions): Promise<LoadFigures> {
  if (options.tokens.length === 0) throw new Error('no tokens to send');
  const nextToken = roundRobin(options.tokens);
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};

  let progress: NodeJS.Timeout | undefined;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        pipelining: 1,
        timeout: 30,
        ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.durationSeconds ?? 10 }),
        requests: [
          {
            method: 'GET',
            path: options.path,
            setupRequest: (request) => {
              const token = nextToken();
              return { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } };
            },
          },
        ],
      },
      (error: unknown, done) => {
        clearTimeout(bound);
        clearInterval(progress);
        if (error) reject(error instanceof Error ? error : new Error(`autocannon failed: ${inspect(error)}`));
        else resolve(done);
      },
    );
    const bound = setTimeout(() => instance.stop(), options.boundSeconds * 1000);
    const onProgress = options.onProgress;
    if (onProgress !== undefined) {
      progress = setInterval(() => onProgress(Object.values(statusCodes).reduce((total, count) => total + count, 0)), 10_000);
    }
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
      if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
    });
  });

  const ok = result['2xx'];
  return {
    sent: result.requests.sent,
    completed: Object.values(statusCodes).reduce((total, count) => total + count, 0),
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    durationSeconds: result.duration,
    requestsPerSecond: result.duration > 0 ? ok / result.duration : 0,
    latencyMs: summarize(latencies),
  };
}
