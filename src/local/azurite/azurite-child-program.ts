/**
 * The program the Azurite child process runs, as JavaScript source for `node -e`.
 *
 * It is a string, not a module, because the same launcher runs from TypeScript sources (ts-node, Jest)
 * and from the compiled dist/: a .ts file cannot be handed to a plain `node`, and tsc copies no .js
 * file. It has no dependency of its own: the parent resolves Azurite's modules and sends their paths.
 *
 * What it does, in order:
 * 1. Refuses every TCP connection that is not to loopback: Azurite is a server; the only client code
 *    in it is its Application Insights telemetry, which must never leave the machine.
 * 2. Waits for one {@link AzuriteChildRequest} on the IPC channel, so the account key and the TLS key
 *    travel over the pipe, not through argv or the environment a `ps` or /proc reader could see.
 * 3. Puts an empty module in require.cache in place of `applicationinsights`, the package Azurite's
 *    Telemetry module loads at import: Azurite touches it only when telemetry is on, and it is two
 *    thirds of the start-up (about 2,700 of 3,200 modules, over a second, ~55 MB in azurite 3.37).
 * 4. Starts Azurite's TableServer in memory on loopback, with telemetry off, and answers
 *    {@link AzuriteChildReady}.
 * 5. Exits when the parent goes away (the IPC channel disconnects), so it never outlives it.
 */

/** Absolute paths of the Azurite modules the child loads. */
export interface AzuriteModulePaths {
  readonly tableServer: string;
  readonly tableConfiguration: string;
  readonly telemetry: string;
}

/** The one message the parent sends. */
export interface AzuriteChildRequest {
  readonly modules: AzuriteModulePaths;
  readonly host: string;
  readonly port: number;
  readonly accountName: string;
  readonly accountKey: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly oauth: boolean;
  /** Seconds an idle keep-alive connection stays open. */
  readonly keepAliveSeconds: number;
}

/** The child's answer once Azurite listens. */
export interface AzuriteChildReady {
  readonly port: number;
}

/** Written to stderr, then the process exits with 1; the parent quotes the tail of stderr. */
export const CHILD_FAILURE_PREFIX = 'azurite-tables child failed:';

// TableConfiguration's constructor is positional (azurite 3.37, dist/src/table/TableConfiguration.js):
// host, port, keepAliveTimeout (s), metadataDBPath, enableDebugLog, enableAccessLog, accessLogWriteStream,
// debugLogFilePath, loose, skipApiVersionCheck, cert, key, pwd, oauth, disableProductStyleUrl,
// isMemoryPersistence. Azurite reads cert and key as file paths (ConfigurationBase.getCert); the
// instance's getCert is replaced to return the PEM given here, so no key is ever written to disk.
export const AZURITE_CHILD_PROGRAM = String.raw`
'use strict';
const Module = require('node:module');
const net = require('node:net');
const path = require('node:path');

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function isLoopback(host) {
  const name = String(host).toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (name === 'localhost') return true;
  const family = net.isIP(name);
  return family !== 0 && LOOPBACK.check(name, family === 4 ? 'ipv4' : 'ipv6');
}

// The host of any socket.connect(...) call form; undefined for a unix socket.
function destination(args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first !== null && typeof first === 'object') return first.path ? undefined : first.host || 'localhost';
  if (typeof first === 'string' && !/^\s*\d+\s*$/.test(first)) return undefined;
  return typeof args[1] === 'string' && args[1] !== '' ? args[1] : 'localhost';
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const host = destination(args);
  if (host !== undefined && !isLoopback(host)) {
    this.destroy();
    process.stderr.write('azurite-tables child refused a connection to ' + host + '\n');
    throw new Error('the Azurite child may only connect to loopback, not ' + host);
  }
  return connect.apply(this, args);
};

process.on('disconnect', () => process.exit(0));

function withoutTelemetryPackage(telemetryModule) {
  let resolved;
  try {
    resolved = require.resolve('applicationinsights', { paths: [path.dirname(telemetryModule)] });
  } catch {
    return;
  }
  const empty = new Module(resolved);
  empty.filename = resolved;
  empty.loaded = true;
  require.cache[resolved] = empty;
}

async function start(request) {
  // Azurite reads its accounts from this variable (AccountDataStore); it replaces the well-known
  // devstoreaccount1 key, so only this start's random key is accepted.
  process.env.AZURITE_ACCOUNTS = request.accountName + ':' + request.accountKey;
  withoutTelemetryPackage(request.modules.telemetry);
  require(request.modules.telemetry).AzuriteTelemetryClient.init('', false);
  const TableConfiguration = require(request.modules.tableConfiguration).default;
  const TableServer = require(request.modules.tableServer).default;
  const config = new TableConfiguration(
    request.host, request.port, request.keepAliveSeconds, '', false, false, undefined, undefined,
    false, false, request.certPem, request.keyPem, '', request.oauth ? 'basic' : undefined, false, true,
  );
  config.getCert = () => ({ cert: request.certPem, key: request.keyPem });
  const server = new TableServer(config);
  await server.start();
  return server.httpServer.address().port;
}

process.once('message', (request) => {
  start(request).then(
    (port) => process.send({ port }),
    (error) => {
      process.stderr.write('${CHILD_FAILURE_PREFIX} ' + ((error && error.stack) || String(error)) + '\n');
      process.exit(1);
    },
  );
});
`;
