import dns from 'node:dns';
import net from 'node:net';
import vm from 'node:vm';

/**
 * Keeps the tests off the network: every TCP or TLS connect and every DNS query is checked, and
 * one that would leave the machine throws a {@link NetworkAccessBlockedError} naming the destination.
 * Loopback (127.0.0.0/8, ::1, `localhost`) and unix sockets stay open, which is all the emulators in
 * src/local need.
 *
 * Where it hooks in, and why that is enough:
 * - `net.Socket.prototype.connect`: net.connect/createConnection, tls.connect (a TLSSocket is a
 *   net.Socket), http and https agents, and undici (both the npm package and the copy inside Node
 *   that runs the global `fetch`) all end there. It is patched on the prototype, not on the
 *   `connect` functions, because http.Agent keeps its own reference to net.createConnection.
 * - `dns.lookup` (getaddrinfo) and `dns.lookupService` (getnameinfo), callback and promise forms.
 * - The `resolve*`/`reverse` functions and both `Resolver` classes: they send queries to the
 *   configured DNS servers, so they are allowed only while every configured server is loopback.
 *
 * Jest runs each test file in its own vm context with its own module registry, but hands out Node's
 * built-in modules as they are: the `net` and `dns` a test file imports are the very objects the
 * SDKs and Node's internals use, so one patch covers them all. Each test file runs this module
 * again; it replaces the previous file's wrappers (wrapping the originals, never a wrapper), so the
 * errors are built in the running file's realm and attempts are recorded for the running file.
 *
 * Not covered: child processes (they do not load this module) and UDP sockets (dgram).
 */

/** The `code` of every refusal, so a test can tell it from an ordinary network failure. */
export const NETWORK_BLOCKED = 'ERR_NETWORK_BLOCKED_IN_TESTS';

/**
 * The Error of Node's own realm, not the test file's. Node's fetch and the SDKs check `instanceof Error`,
 * and an Error made in a test file's vm context fails that check (fetch, for one, replaces it with
 * `new Error(String(reason))`, dropping its class and code). Built on Node's Error, a refusal travels
 * through them exactly like a real connection error, and keeps its class as the `cause`.
 */
const NodeError = vm.runInThisContext('Error') as ErrorConstructor;

export class NetworkAccessBlockedError extends NodeError {
  readonly code = NETWORK_BLOCKED;

  constructor(
    /** What was attempted, e.g. `connect to 192.0.2.1:443` or `dns.lookup example.com`. */
    readonly attempt: string,
  ) {
    super(
      `Network access is blocked in tests: ${attempt}. Only loopback (127.0.0.0/8, ::1, localhost) and unix sockets are allowed; ` +
        'talk to the local emulators (src/local) instead (network guard: tests/setup/network-guard.ts).',
    );
    this.name = 'NetworkAccessBlockedError';
  }
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for a loopback IP (including IPv4-mapped IPv6 such as ::ffff:127.0.0.1) and for `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (name === 'localhost' || name === 'localhost.') return true;
  const family = net.isIP(name);
  if (family === 0) return false;
  return LOOPBACK.check(name, family === 4 ? 'ipv4' : 'ipv6');
}

let attempts: string[] = [];

/** The attempts refused since the last call (and forgets them): the setup checks none were swallowed. */
export function takeBlockedAttempts(): string[] {
  const taken = attempts;
  attempts = [];
  return taken;
}

function refuse(attempt: string): NetworkAccessBlockedError {
  attempts.push(attempt);
  return new NetworkAccessBlockedError(attempt);
}

const ORIGINAL = Symbol.for('acs-auth-server.tests.network-guard.original');

type AnyFunction = (this: unknown, ...args: unknown[]) => unknown;
type Guarded = AnyFunction & { [ORIGINAL]?: AnyFunction };

/**
 * Replace `target[key]` with `makeGuard(original)`, where `original` is the unpatched function even
 * when an earlier test file already wrapped it.
 */
function patch(target: object, key: string, makeGuard: (original: AnyFunction) => AnyFunction): void {
  const current = Reflect.get(target, key) as Guarded | undefined;
  if (typeof current !== 'function') return;
  const original = current[ORIGINAL] ?? current;
  const guard: Guarded = makeGuard(original);
  guard[ORIGINAL] = original;
  Reflect.set(target, key, guard);
}

/** Where a `socket.connect(...)` call is headed, from any of its argument forms. */
function connectDestination(args: readonly unknown[]): { readonly host: string; readonly port: unknown } | 'unix socket' {
  const [first, second] = args;
  // http and tls pass the arguments already normalized, as an array whose first member is the options.
  const options: unknown = Array.isArray(first) ? (first as unknown[])[0] : first;
  if (typeof options === 'object' && options !== null) {
    const { path, host, port } = options as { path?: unknown; host?: unknown; port?: unknown };
    if (typeof path === 'string' && path !== '') return 'unix socket';
    return { host: typeof host === 'string' && host !== '' ? host : 'localhost', port };
  }
  // connect(path[, cb]) when the string is not a port number, else connect(port[, host][, cb]).
  if (typeof options === 'string' && !/^\s*\d+\s*$/.test(options)) return 'unix socket';
  return { host: typeof second === 'string' && second !== '' ? second : 'localhost', port: options };
}

function guardSocketConnect(): void {
  patch(
    net.Socket.prototype,
    'connect',
    (original) =>
      function guardedConnect(this: unknown, ...args: unknown[]): unknown {
        const destination = connectDestination(args);
        if (destination !== 'unix socket' && !isLoopbackHost(destination.host)) {
          // tls.connect has already given the socket a TCP handle: close it rather than leave it open.
          (this as net.Socket).destroy();
          throw refuse(`connect to ${destination.host}:${String(destination.port)}`);
        }
        return original.apply(this, args);
      },
  );
}

function guardLookups(): void {
  // A lookup of an IP literal asks nobody; a reverse lookup (lookupService) of an address asks the DNS.
  const asksTheNetwork = (name: 'lookup' | 'lookupService', host: unknown): boolean =>
    typeof host === 'string' && !isLoopbackHost(host) && !(name === 'lookup' && net.isIP(host) !== 0);
  for (const name of ['lookup', 'lookupService'] as const) {
    patch(
      dns,
      name,
      (original) =>
        function guardedLookup(this: unknown, ...args: unknown[]): unknown {
          if (asksTheNetwork(name, args[0])) throw refuse(`dns.${name} ${String(args[0])}`);
          return original.apply(this, args);
        },
    );
    patch(
      dns.promises,
      name,
      (original) =>
        function guardedPromiseLookup(this: unknown, ...args: unknown[]): unknown {
          if (asksTheNetwork(name, args[0])) return Promise.reject(refuse(`dns.promises.${name} ${String(args[0])}`));
          return original.apply(this, args);
        },
    );
  }
}

/** The host of a DNS server as getServers() lists it: `1.2.3.4`, `1.2.3.4:5353`, `2001:db8::1` or `[2001:db8::1]:5353`. */
function serverHost(server: string): string {
  const bracketed = /^\[(.+)\](?::\d+)?$/.exec(server)?.[1];
  if (bracketed !== undefined) return bracketed;
  return net.isIP(server) === 6 ? server : server.replace(/:\d+$/, '');
}

const RESOLVER_METHODS = Object.getOwnPropertyNames(dns.Resolver.prototype).filter(
  (name) => name.startsWith('resolve') || name === 'reverse',
);

/** The resolve* functions query the DNS servers directly (c-ares, not getaddrinfo): fine only if those are loopback. */
function guardResolvers(): void {
  const targets: readonly { readonly label: string; readonly target: object; readonly servers: (self: unknown) => string[] }[] = [
    { label: 'dns', target: dns, servers: () => dns.getServers() },
    { label: 'dns.promises', target: dns.promises, servers: () => dns.promises.getServers() },
    { label: 'dns.Resolver', target: dns.Resolver.prototype, servers: (self) => (self as dns.Resolver).getServers() },
    {
      label: 'dns.promises.Resolver',
      target: dns.promises.Resolver.prototype,
      servers: (self) => (self as dns.promises.Resolver).getServers(),
    },
  ];
  for (const { label, target, servers } of targets) {
    const promises = label.startsWith('dns.promises');
    for (const name of RESOLVER_METHODS) {
      patch(
        target,
        name,
        (original) =>
          function guardedResolve(this: unknown, ...args: unknown[]): unknown {
            const remote = servers(this).filter((server) => !isLoopbackHost(serverHost(server)));
            if (remote.length === 0) return original.apply(this, args);
            const refusal = refuse(`${label}.${name} ${String(args[0])} (asks the DNS servers ${remote.join(', ')})`);
            if (promises) return Promise.reject(refusal);
            throw refusal;
          },
      );
    }
  }
}

/** Patch net and dns for the running test file; safe to call again (each call rewraps the originals). */
export function installNetworkGuard(): void {
  guardSocketConnect();
  guardLookups();
  guardResolvers();
}
