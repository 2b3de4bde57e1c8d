import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Graceful shutdown for an HTTP server with keep-alive clients: stop accepting, let every request
 * already received finish, and close each connection politely once its last response is written.
 *
 * Node's `closeIdleConnections()` alone is not enough: it destroys a socket as soon as its response
 * is ended, which can drop bytes still being flushed, and it cannot tell a keep-alive client to stop
 * reusing the connection. Here responses that finish during the drain carry `Connection: close`, and
 * sockets are ended (FIN after flush), never destroyed, until the grace period runs out.
 */
export interface ConnectionDrain {
  /** Resolves once every connection has closed, or after `graceMs`, when the rest are destroyed. */
  drain(graceMs: number): Promise<void>;
}

export function trackConnections(server: Server): ConnectionDrain {
  const inFlight = new Map<Socket, number>();
  const sockets = new Set<Socket>();
  let draining = false;

  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      inFlight.delete(socket);
    });
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    if (draining) closeAfterResponse(res);
    res.once('close', () => {
      const remaining = (inFlight.get(socket) ?? 1) - 1;
      if (remaining > 0) inFlight.set(socket, remaining);
      else inFlight.delete(socket);
      if (draining && remaining <= 0) socket.end();
    });
  });

  function closeAfterResponse(res: ServerResponse): void {
    if (!res.headersSent) res.setHeader('Connection', 'close');
    res.shouldKeepAlive = false;
  }

  return {
    async drain(graceMs) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) {
        if (!inFlight.has(socket)) socket.end();
      }
      // Responses in progress: tell their clients this connection ends with them.
      for (const socket of inFlight.keys()) {
        const response = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
        if (response) closeAfterResponse(response);
      }
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([closed, grace]);
      clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
