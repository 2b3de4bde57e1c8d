import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * How an emulator listens: loopback only unless told otherwise, http or https, and a count of
 * accepted connections so tests can see whether clients reuse keep-alive connections.
 *
 * @packageDocumentation
 */

/** Where and how to listen. */
export interface StartServerOptions {
  /** Interface to bind; loopback by default so an emulator is never reachable from the network. */
  readonly host?: string;
  /** Port to bind; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Certificate and key for https; plain http when absent. */
  readonly tls?: { readonly certPem: string; readonly keyPem: string };
}

export interface StartedServer {
  /** Base URL without a trailing slash, for example `https://127.0.0.1:49152`. */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** TCP connections accepted so far: shows whether clients reuse keep-alive connections. */
  connectionsAccepted(): number;
  /** Stop listening and drop idle keep-alive connections; resolves once the server is closed. */
  close(): Promise<void>;
}

/** Listen with `listener`; resolves once the port is bound (rejects if it cannot be). */
export function startServer(listener: RequestListener, options: StartServerOptions = {}): Promise<StartedServer> {
  const host = options.host ?? '127.0.0.1';
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, listener)
    : createHttpServer(listener);
  // Keep-alive longer than the clients' idle timeouts, so a reused socket is never closed under a request.
  server.keepAliveTimeout = 65_000;
  let accepted = 0;
  server.on(options.tls ? 'secureConnection' : 'connection', () => {
    accepted += 1;
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      const scheme = options.tls ? 'https' : 'http';
      const hostForUrl = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `${scheme}://${hostForUrl}:${port}`,
        port,
        server,
        connectionsAccepted: () => accepted,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((error) => (error ? fail(error) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}
