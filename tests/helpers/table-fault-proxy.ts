import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Agent, createServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A fault-injecting https reverse proxy on 127.0.0.1 in front of Azurite's Table service.
 *
 * Azurite has no fault injection, and the table store's failure handling needs the failures Azure
 * Table Storage really has: throttling (503 ServerBusy with Retry-After), slow answers, answers lost
 * after the write applied (the SDK then retries and meets its own write as 409 or 412), and an
 * unreachable store. The proxy keeps Azurite's path layout (`/<account>/...`), so a client only swaps
 * the endpoint: the SharedKey signature covers the account and path, not the host or port.
 */
export interface RequestMatch {
  readonly method?: string;
  readonly path?: RegExp;
}

/** What the proxy did with a request. */
export type ProxyAction = 'forwarded' | 'delayed' | 'lost answer' | `failed ${FailStatus}` | `applied, answered ${FailStatus}`;

export type FailStatus = 429 | 500 | 503;

export interface SeenRequest {
  readonly method: string;
  /** The path without the query, as sent (percent-encoded). */
  readonly path: string;
  readonly action: ProxyAction;
}

export interface TableFaultProxy {
  /** Same path layout as the Azurite url: `https://127.0.0.1:PROXYPORT/<account>`. */
  readonly url: string;
  /**
   * Answer matching requests with this status, in Azure Table Storage's JSON error shape with an
   * `x-ms-error-code` header (and `Retry-After` when given), `times` times (default: until cleared).
   */
  fail(match: RequestMatch, answer: { readonly status: FailStatus; readonly retryAfterSeconds?: number; readonly times?: number }): void;
  /** Hold matching requests this long, then forward them (even if the client gave up meanwhile, as a slow network would). */
  delay(match: RequestMatch, ms: number, times?: number): void;
  /** Forward matching requests, let Azurite apply them, then destroy the client's connection without an answer. */
  loseAnswer(match: RequestMatch, times?: number): void;
  /** Forward matching requests, let Azurite apply them, then answer `status` instead of Azurite's answer (a late 503 from the front end). */
  failAfterApplying(match: RequestMatch, status: FailStatus, times?: number): void;
  /** Reset every new connection at once, and the open ones now (the store is unreachable), until `available()`. */
  unavailable(): void;
  available(): void;
  /** Disarm every fault and make the store available again; `seen` is kept. */
  clear(): void;
  /** Requests seen, in order. */
  readonly seen: readonly SeenRequest[];
  /** Connections reset while unavailable (their requests are never read, so they are not in `seen`). */
  readonly connectionsReset: number;
  close(): Promise<void>;
}

export interface TableFaultProxyOptions {
  /** The Azurite table endpoint, e.g. `https://127.0.0.1:PORT/acsauthlocal`. */
  readonly target: string;
  /** The proxy's own server certificate and key (the same as Azurite's will do). */
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  /** The CA that signed Azurite's certificate: the proxy verifies it too. */
  readonly caCertPem: string;
}

type Fault =
  | { readonly kind: 'fail'; readonly status: FailStatus; readonly retryAfterSeconds?: number }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'loseAnswer' }
  | { readonly kind: 'failAfterApplying'; readonly status: FailStatus };

interface Rule {
  readonly match: RequestMatch;
  readonly fault: Fault;
  remaining: number;
}

// What Azure Storage answers for each status (the Tables flavour of the error envelope).
const STORAGE_ERRORS: Readonly<Record<FailStatus, { readonly code: string; readonly message: string }>> = {
  429: { code: 'TooManyRequests', message: 'The request rate is too large. Please retry after some time.' },
  500: { code: 'InternalError', message: 'The server encountered an internal error. Please retry the request.' },
  503: { code: 'ServerBusy', message: 'The server is currently unable to receive requests. Please retry your request.' },
};

// Per connection, not end to end: never copied from one side of the proxy to the other.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

export async function startTableFaultProxy(options: TableFaultProxyOptions): Promise<TableFaultProxy> {
  const target = new URL(options.target);
  const state = new ProxyState(target, options.caCertPem);
  const server = createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, (req, res) => state.handle(req, res));
  server.keepAliveTimeout = 65_000;
  server.on('connection', (socket: Socket) => state.accept(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject).listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}${target.pathname.replace(/\/$/, '')}`,
    fail: (match, answer) => state.arm(match, { kind: 'fail', status: answer.status, ...pick(answer.retryAfterSeconds) }, answer.times),
    delay: (match, ms, times) => state.arm(match, { kind: 'delay', ms }, times),
    loseAnswer: (match, times) => state.arm(match, { kind: 'loseAnswer' }, times),
    failAfterApplying: (match, status, times) => state.arm(match, { kind: 'failAfterApplying', status }, times),
    unavailable: () => state.setUnavailable(true),
    available: () => state.setUnavailable(false),
    clear: () => state.clear(),
    get seen() {
      return state.seen;
    },
    get connectionsReset() {
      return state.connectionsReset;
    },
    close: () => closeProxy(server, state),
  };
}

function pick(retryAfterSeconds: number | undefined): { retryAfterSeconds?: number } {
  return retryAfterSeconds === undefined ? {} : { retryAfterSeconds };
}

class ProxyState {
  readonly seen: SeenRequest[] = [];
  connectionsReset = 0;
  readonly #agent: Agent;
  #rules: Rule[] = [];
  #unavailable = false;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly target: URL,
    caCertPem: string,
  ) {
    this.#agent = new Agent({ keepAlive: true, ca: caCertPem });
  }

  arm(match: RequestMatch, fault: Fault, times = Infinity): void {
    this.#rules.push({ match, fault, remaining: times });
  }

  clear(): void {
    this.#rules = [];
    this.#unavailable = false;
  }

  setUnavailable(unavailable: boolean): void {
    this.#unavailable = unavailable;
    if (unavailable) for (const socket of this.#sockets) this.#reset(socket);
  }

  accept(socket: Socket): void {
    if (this.#unavailable) {
      this.#reset(socket);
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    // The whole request first (table requests are small), so a held request can still be forwarded
    // after its client gave up, as a slow network would deliver it.
    readBody(req).then(
      (body) => this.#act(req, res, body),
      () => req.socket.destroy(),
    );
  }

  /** Stop every held request and open connection (on close). */
  shutDown(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#sockets) socket.destroy();
    this.#agent.destroy();
  }

  #act(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const fault = this.#take(method, path);
    this.seen.push({ method, path, action: actionOf(fault) });
    if (fault === undefined) this.#forward(req, res, body, 'answer');
    else if (fault.kind === 'fail') answerStorageError(req, res, fault.status, fault.retryAfterSeconds);
    else if (fault.kind === 'delay') this.#later(fault.ms, () => this.#forward(req, res, body, 'answer'));
    else if (fault.kind === 'loseAnswer') this.#forward(req, res, body, 'drop');
    else this.#forward(req, res, body, fault.status);
  }

  #take(method: string, path: string): Fault | undefined {
    const rule = this.#rules.find((candidate) => candidate.remaining > 0 && matches(candidate.match, method, path));
    if (rule === undefined) return undefined;
    rule.remaining -= 1;
    return rule.fault;
  }

  #reset(socket: Socket): void {
    this.connectionsReset += 1;
    this.#sockets.delete(socket);
    // An RST, not a FIN: the client sees ECONNRESET, as when a store's front end drops it.
    socket.resetAndDestroy();
  }

  #later(ms: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, ms);
    this.#timers.add(timer);
  }

  /**
   * Send the request on to Azurite and pass its answer back (`answer`); or read its whole answer (so it
   * applied) and then drop the client (`drop`) or answer it with a storage error of that status.
   */
  #forward(req: IncomingMessage, res: ServerResponse, body: Buffer, then: 'answer' | 'drop' | FailStatus): void {
    const upstream = httpsRequest(
      {
        host: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url,
        headers: { ...endToEnd(req.headers), host: this.target.host },
        agent: this.#agent,
      },
      (answer) => {
        if (then === 'drop') {
          answer.resume();
          answer.once('end', () => req.socket.destroy());
          return;
        }
        if (then !== 'answer') {
          answer.resume();
          answer.once('end', () => answerStorageError(req, res, then, undefined));
          return;
        }
        res.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        answer.pipe(res);
      },
    );
    // Azurite unreachable or gone: the client sees its connection drop, not an invented status.
    upstream.once('error', () => req.socket.destroy());
    upstream.end(body);
  }
}

function actionOf(fault: Fault | undefined): ProxyAction {
  if (fault === undefined) return 'forwarded';
  if (fault.kind === 'fail') return `failed ${fault.status}`;
  if (fault.kind === 'failAfterApplying') return `applied, answered ${fault.status}`;
  return fault.kind === 'delay' ? 'delayed' : 'lost answer';
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function matches(match: RequestMatch, method: string, path: string): boolean {
  if (match.method !== undefined && match.method.toUpperCase() !== method.toUpperCase()) return false;
  // search() ignores lastIndex, so a /g pattern matches every time.
  return match.path === undefined || path.search(match.path) !== -1;
}

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  return kept;
}

/** Azure Table Storage's JSON error. */
function answerStorageError(req: IncomingMessage, res: ServerResponse, status: FailStatus, retryAfterSeconds?: number): void {
  const { code, message } = STORAGE_ERRORS[status];
  const requestId = randomUUID();
  const body = JSON.stringify({
    'odata.error': { code, message: { lang: 'en-US', value: `${message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}` } },
  });
  res.writeHead(status, {
    'content-type': 'application/json;odata=minimalmetadata;streaming=true;charset=utf-8',
    'x-ms-error-code': code,
    'x-ms-request-id': requestId,
    'x-ms-version': req.headers['x-ms-version'] ?? '2019-02-02',
    ...(retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) }),
  });
  res.end(body);
}

async function closeProxy(server: Server, state: ProxyState): Promise<void> {
  state.shutDown();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
