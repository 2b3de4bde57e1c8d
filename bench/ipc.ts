import { fork, type ChildProcess } from 'node:child_process';

/**
 * A tiny typed RPC over Node's IPC channel, so the benchmark's servers run in their own processes
 * (their event loops never share a core's time slice with the load generator) and the orchestrator
 * still drives them step by step.
 */

/**
 * The constraint on an API a child process serves, `Api extends RpcApi<Api>`: each method takes at most one
 * structured-cloneable argument. A mapped type over the API's own keys rather than an index signature
 * (`Record<string, ...>`), so that an interface satisfies it as well as a type alias does.
 */
export type RpcApi<Api> = { readonly [K in keyof Api]: (params: never) => unknown };

type Method<Api extends RpcApi<Api>, K extends keyof Api> = Api[K];

interface RpcRequest {
  readonly kind: 'rpc';
  readonly id: number;
  readonly method: string;
  readonly params: unknown;
}

type RpcReply =
  | { readonly kind: 'rpc-result'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly kind: 'rpc-result'; readonly id: number; readonly ok: false; readonly error: string };

interface ReadyMessage {
  readonly kind: 'ready';
}

function isRequest(message: unknown): message is RpcRequest {
  return typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === 'rpc';
}

function isReply(message: unknown): message is RpcReply {
  return typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === 'rpc-result';
}

/** Whether a method name from the wire is one of the API's own methods (not, say, `toString`). */
function isMethodOf<Api extends RpcApi<Api>>(handlers: Api, method: string): method is keyof Api & string {
  return Object.hasOwn(handlers, method);
}

/**
 * In a child: answer the parent's calls with `handlers`, then say "ready". The child exits when the
 * parent goes away, so a crashed orchestrator never leaves servers behind.
 */
export function serveRpc<Api extends RpcApi<Api>>(handlers: Api): void {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('this module must be started by bench/run.ts (it needs an IPC channel)');
  process.on('message', (message: unknown) => {
    if (!isRequest(message)) return;
    const reply = (outcome: RpcReply): void => {
      if (process.connected) send(outcome);
    };
    const { method } = message;
    if (!isMethodOf(handlers, method)) {
      reply({ kind: 'rpc-result', id: message.id, ok: false, error: `unknown method ${method}` });
      return;
    }
    const handler = handlers[method];
    Promise.resolve()
      .then(() => handler(message.params as never))
      .then(
        (value) => reply({ kind: 'rpc-result', id: message.id, ok: true, value }),
        (error: unknown) =>
          reply({
            kind: 'rpc-result',
            id: message.id,
            ok: false,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          }),
      );
  });
  process.on('disconnect', () => process.exit(0));
  const ready: ReadyMessage = { kind: 'ready' };
  send(ready);
}

export interface ChildHandle<Api extends RpcApi<Api>> {
  readonly pid: number;
  readonly name: string;
  /** Call a method of the child; rejects on the child's error, on its exit, or after `timeoutMs`. */
  call<K extends keyof Api & string>(
    method: K,
    params?: Parameters<Method<Api, K>>[0],
    timeoutMs?: number,
  ): Promise<Awaited<ReturnType<Method<Api, K>>>>;
  /** Ask politely (disconnect, then SIGTERM), then SIGKILL after `graceMs`. Resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface ForkOptions {
  readonly name: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Extra node flags, e.g. `--expose-gc`. */
  readonly nodeFlags?: readonly string[];
  /** Where the child's stdout goes (its logs): discarded by default. */
  readonly stdout?: 'ignore' | 'inherit';
  readonly readyTimeoutMs?: number;
  readonly defaultCallTimeoutMs?: number;
}

const children = new Set<ChildProcess>();

/** Kill every child still running (on the orchestrator's exit or a fatal error). */
export function killAllChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Start `modulePath` (compiled .js, or .ts run under ts-node) in a child process with an IPC channel. */
export async function forkChild<Api extends RpcApi<Api>>(modulePath: string, options: ForkOptions): Promise<ChildHandle<Api>> {
  const loader = modulePath.endsWith('.ts') ? ['-r', 'ts-node/register/transpile-only'] : [];
  const child = fork(modulePath, [], {
    execArgv: [...loader, ...(options.nodeFlags ?? [])],
    env: options.env ?? process.env,
    stdio: ['ignore', options.stdout ?? 'ignore', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  children.add(child);
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      for (const call of pending.values()) {
        clearTimeout(call.timer);
        call.reject(new Error(`${options.name} exited (code ${String(code)}, signal ${String(signal)})`));
      }
      pending.clear();
      resolve();
    });
  });

  child.on('message', (message: unknown) => {
    if (!isReply(message)) return;
    const call = pending.get(message.id);
    if (call === undefined) return;
    pending.delete(message.id);
    clearTimeout(call.timer);
    if (message.ok) call.resolve(message.value);
    else call.reject(new Error(`${options.name}: ${message.error}`));
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${options.name} did not start within ${options.readyTimeoutMs ?? 60_000} ms`)),
      options.readyTimeoutMs ?? 60_000,
    );
    const onMessage = (message: unknown): void => {
      if ((message as ReadyMessage | undefined)?.kind !== 'ready') return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve();
    };
    child.on('message', onMessage);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited before it was ready`));
    });
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });

  const call = (method: string, params?: unknown, timeoutMs?: number): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId;
      nextId += 1;
      const limit = timeoutMs ?? options.defaultCallTimeoutMs ?? 120_000;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${options.name}.${method} gave no answer within ${limit} ms`));
      }, limit);
      pending.set(id, { resolve, reject, timer });
      const request: RpcRequest = { kind: 'rpc', id, method, params };
      child.send(request, (error) => {
        if (error === null) return;
        pending.delete(id);
        clearTimeout(timer);
        reject(error);
      });
    });

  return {
    pid: child.pid ?? -1,
    name: options.name,
    call: call as ChildHandle<Api>['call'],
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.disconnect();
      const term = setTimeout(() => child.kill('SIGTERM'), Math.min(graceMs, 5_000));
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(term);
      clearTimeout(kill);
    },
  };
}
