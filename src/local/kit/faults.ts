import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Fault injection and request counting shared by the three emulators.
 *
 * Every emulator route is registered behind `kit.step(name)`, which counts the request under that
 * name, waits the injected latency, and answers with an injected fault when one is armed. Faults
 * are answered in the emulator's own error envelope, so the SDKs see exactly what the real service
 * would send when it fails.
 */
export interface FaultSpec {
  /** Route name to fail (for example `token`, `extensions.create`, `identities.issueToken`); any route when absent. */
  readonly route?: string;
  /** HTTP status to answer with. */
  readonly status: number;
  /** How many matching requests fail before the fault disarms itself (default 1; `Infinity` to keep failing). */
  readonly times?: number;
  /** `Retry-After` header value in seconds (fractions allowed, as Graph sends them). */
  readonly retryAfterSeconds?: number;
  /** Error code to put in the emulator's envelope; a status-appropriate default when absent. */
  readonly code?: string;
  /** Error message for the envelope. */
  readonly message?: string;
  /** Answer this JSON body verbatim instead of the emulator's envelope. */
  readonly body?: unknown;
  /** Hold the request this long before answering: models a slow upstream (or, long enough, a timeout). */
  readonly delayMs?: number;
  /** Destroy the connection without an answer: models a reset or a crashed upstream. */
  readonly dropConnection?: boolean;
  /**
   * Let the request reach the real handler (so its effect happens) and replace only the response:
   * models "the service did it, but the answer was lost".
   */
  readonly afterHandler?: boolean;
}

export interface ErrorEnvelopeInput {
  readonly status: number;
  readonly code: string | undefined;
  readonly message: string | undefined;
  readonly req: Request;
}

/** How an emulator renders an error in its own wire format. */
export type ErrorEnvelope = (input: ErrorEnvelopeInput) => unknown;

interface ArmedFault {
  readonly spec: FaultSpec;
  remaining: number;
}

export class RequestCounters {
  readonly #counts = new Map<string, number>();

  increment(route: string): void {
    this.#counts.set(route, (this.#counts.get(route) ?? 0) + 1);
  }

  /** Requests seen for one route name. */
  get(route: string): number {
    return this.#counts.get(route) ?? 0;
  }

  /** Requests seen across every route (including unmatched ones, counted as `unmatched`). */
  total(): number {
    let sum = 0;
    for (const count of this.#counts.values()) sum += count;
    return sum;
  }

  snapshot(): Readonly<Record<string, number>> {
    return Object.freeze(Object.fromEntries([...this.#counts.entries()].sort(([a], [b]) => a.localeCompare(b))));
  }

  reset(): void {
    this.#counts.clear();
  }
}

export class FaultInjector {
  readonly #faults: ArmedFault[] = [];
  #latencyMs = 0;
  readonly #routeLatencyMs = new Map<string, number>();

  /** Add latency to every request (or to one route), to model a cloud round trip. */
  setLatency(ms: number, route?: string): void {
    if (!Number.isFinite(ms) || ms < 0) throw new TypeError('latency must be a non-negative number of milliseconds');
    if (route === undefined) this.#latencyMs = ms;
    else this.#routeLatencyMs.set(route, ms);
  }

  latencyFor(route: string): number {
    return this.#routeLatencyMs.get(route) ?? this.#latencyMs;
  }

  /** Arm a fault; faults are matched in the order they were armed. */
  inject(spec: FaultSpec): void {
    const times = spec.times ?? 1;
    if (!(times > 0)) throw new TypeError('times must be positive');
    if (!Number.isInteger(spec.status) || spec.status < 100 || spec.status > 599) {
      throw new TypeError('status must be an HTTP status code');
    }
    this.#faults.push({ spec, remaining: times });
  }

  /** Faults still armed (how many requests each will still fail). */
  pending(): readonly { readonly spec: FaultSpec; readonly remaining: number }[] {
    return this.#faults.map((fault) => ({ spec: fault.spec, remaining: fault.remaining }));
  }

  /** Disarm every fault and remove all latency. */
  clear(): void {
    this.#faults.length = 0;
    this.#latencyMs = 0;
    this.#routeLatencyMs.clear();
  }

  /** Take the next fault that matches this route, consuming one of its uses. */
  take(route: string): FaultSpec | undefined {
    const index = this.#faults.findIndex((fault) => fault.spec.route === undefined || fault.spec.route === route);
    const fault = this.#faults[index]; // index -1 (no match) reads as undefined
    if (fault === undefined) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.#faults.splice(index, 1);
    return fault.spec;
  }
}

export interface EmulatorKit {
  readonly faults: FaultInjector;
  readonly counters: RequestCounters;
  /** Middleware that names a route: counts it, applies latency and faults. Place it before the handler. */
  step(route: string): RequestHandler;
  /** Final middleware for requests no route matched: counted as `unmatched`. */
  readonly unmatched: RequestHandler;
  /** Write an error in the emulator's envelope. */
  sendError(req: Request, res: Response, status: number, code?: string, message?: string): void;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export function createEmulatorKit(envelope: ErrorEnvelope): EmulatorKit {
  const faults = new FaultInjector();
  const counters = new RequestCounters();

  const sendError = (req: Request, res: Response, status: number, code?: string, message?: string): void => {
    if (res.headersSent) return;
    res.status(status).json(envelope({ status, code, message, req }));
  };

  const answerFault = (req: Request, res: Response, fault: FaultSpec): void => {
    if (fault.dropConnection) {
      req.socket.destroy();
      return;
    }
    if (fault.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(fault.retryAfterSeconds));
    if (fault.body !== undefined) res.status(fault.status).json(fault.body);
    else sendError(req, res, fault.status, fault.code, fault.message);
  };

  const step = (route: string): RequestHandler =>
    async function namedStep(req: Request, res: Response, next: NextFunction): Promise<void> {
      counters.increment(route);
      res.locals['route'] = route;
      const latency = faults.latencyFor(route);
      if (latency > 0) await delay(latency);
      const fault = faults.take(route);
      if (fault === undefined) {
        next();
        return;
      }
      if (fault.delayMs !== undefined && fault.delayMs > 0) await delay(fault.delayMs);
      if (req.socket.destroyed) return;
      if (!fault.afterHandler) {
        answerFault(req, res, fault);
        return;
      }
      // Let the real handler run, but swallow its response and answer with the fault instead.
      const realJson = res.json.bind(res);
      const realEnd = res.end.bind(res);
      let replaced = false;
      const replace = (): Response => {
        if (!replaced) {
          replaced = true;
          res.json = realJson;
          res.end = realEnd;
          res.removeHeader('Location');
          res.statusCode = fault.status;
          answerFault(req, res, fault);
        }
        return res;
      };
      res.json = (() => replace()) as Response['json'];
      res.end = (() => replace()) as Response['end'];
      next();
    };

  const unmatched: RequestHandler = (req, res) => {
    counters.increment('unmatched');
    sendError(req, res, 404, undefined, `No route for ${req.method} ${req.path}`);
  };

  return { faults, counters, step, unmatched, sendError };
}
