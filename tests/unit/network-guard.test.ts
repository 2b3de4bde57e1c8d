import dns from 'node:dns';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';

import { expect } from '@jest/globals';
import { request as undiciRequest, Agent as UndiciAgent } from 'undici';

import { createIdentityClient } from '../../src/adapters/acs/identity-client';
import { createMsalNetworkClient } from '../../src/adapters/entra/msal-network-client';
import { createGraphClient } from '../../src/adapters/graph/graph-client';
import { isLoopbackHost, NETWORK_BLOCKED, NetworkAccessBlockedError, takeBlockedAttempts } from '../setup/network-guard';

/**
 * The network guard installed for every test file (jest.config.ts `setupFilesAfterEnv`). 192.0.2.1 is
 * TEST-NET-1 (RFC 5737) and example.com is reserved (RFC 2606): without the guard these calls would go
 * out and hang or fail with ordinary network errors. Each test checks that the refusal came from the
 * guard (its error class and code, the destination in its message) and takes the recorded attempts,
 * which the setup would otherwise report as a failure after the test.
 */

const TEST_NET = '192.0.2.1';

/** Matches the guard's error for this attempt: its class (objectContaining reads inherited members too), code and attempt. */
function refusal(attempt: string): unknown {
  return expect.objectContaining({ constructor: NetworkAccessBlockedError, code: NETWORK_BLOCKED, attempt });
}

describe('the network guard', () => {
  describe('net and tls', () => {
    it('refuses net.connect to a non-loopback address before any I/O, naming the destination', () => {
      let socket: net.Socket | undefined;
      expect(() => {
        socket = net.connect({ host: TEST_NET, port: 443 });
      }).toThrow(NetworkAccessBlockedError);
      expect(socket).toBeUndefined();
      expect(takeBlockedAttempts()).toEqual([`connect to ${TEST_NET}:443`]);
    });

    it('refuses every argument form of connect, and names in place of addresses', () => {
      expect(() => net.createConnection(80, TEST_NET)).toThrow(expect.objectContaining({ code: NETWORK_BLOCKED }));
      expect(() => new net.Socket().connect({ host: 'example.com', port: 80 })).toThrow(/connect to example\.com:80/);
      expect(() => tls.connect({ host: 'example.com', port: 443 })).toThrow(/connect to example\.com:443/);
      expect(takeBlockedAttempts()).toEqual([`connect to ${TEST_NET}:80`, 'connect to example.com:80', 'connect to example.com:443']);
    });

    it('lets loopback and unix-socket connections through', async () => {
      const folder = mkdtempSync(join(tmpdir(), 'network-guard-'));
      const server = net.createServer((socket) => socket.end('hi'));
      const unixServer = net.createServer((socket) => socket.end('hi'));
      try {
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        const { port } = server.address() as net.AddressInfo;
        const socketPath = join(folder, 'guard.sock');
        unixServer.listen(socketPath);
        await once(unixServer, 'listening');

        const greeting = async (socket: net.Socket): Promise<string> => {
          const chunks: Buffer[] = [];
          socket.on('data', (chunk: Buffer) => chunks.push(chunk));
          await once(socket, 'end');
          socket.destroy();
          return Buffer.concat(chunks).toString('utf8');
        };
        expect(await greeting(net.connect(port, '127.0.0.1'))).toBe('hi');
        expect(await greeting(net.connect({ host: 'localhost', port, family: 4 }))).toBe('hi');
        expect(await greeting(net.connect(socketPath))).toBe('hi');
        expect(takeBlockedAttempts()).toEqual([]);
      } finally {
        server.close();
        unixServer.close();
        rmSync(folder, { recursive: true, force: true });
      }
    });
  });

  describe('HTTP clients', () => {
    it('refuses http.get and https.get', () => {
      expect(() => http.get(`http://${TEST_NET}/`)).toThrow(NetworkAccessBlockedError);
      expect(() => https.get('https://example.com/')).toThrow(NetworkAccessBlockedError);
      expect(takeBlockedAttempts()).toEqual([`connect to ${TEST_NET}:80`, 'connect to example.com:443']);
    });

    it("refuses Node's global fetch (the undici inside Node)", async () => {
      // fetch rejects with TypeError('fetch failed'), whose cause is the guard's error itself.
      await expect(fetch('https://example.com/')).rejects.toThrow('fetch failed');
      await expect(fetch('https://example.com/')).rejects.toHaveProperty('cause', refusal('connect to example.com:443'));
      expect(takeBlockedAttempts()).toEqual(['connect to example.com:443', 'connect to example.com:443']);
    });

    it('refuses the undici package, alone and as the dispatcher of global fetch (as the Graph client uses it)', async () => {
      const agent = new UndiciAgent();
      try {
        await expect(undiciRequest(`http://${TEST_NET}:8080/`)).rejects.toEqual(refusal(`connect to ${TEST_NET}:8080`));
        // Node's fetch and the npm package type their dispatchers separately; the runtime interface is the same.
        const viaAgent = fetch(`https://${TEST_NET}/`, { dispatcher: agent } as unknown as RequestInit);
        await expect(viaAgent).rejects.toHaveProperty('cause', refusal(`connect to ${TEST_NET}:443`));
        expect(takeBlockedAttempts()).toEqual([`connect to ${TEST_NET}:8080`, `connect to ${TEST_NET}:443`]);
      } finally {
        await agent.close();
      }
    });

    it('lets fetch reach a loopback server', async () => {
      const server = http.createServer((_request, response) => response.end('ok'));
      try {
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        const { port } = server.address() as net.AddressInfo;
        const response = await fetch(`http://127.0.0.1:${port}/`);
        expect(await response.text()).toBe('ok');
        expect(takeBlockedAttempts()).toEqual([]);
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });
  });

  describe("the service's upstream clients, pointed at the real Azure hosts", () => {
    it('refuses the Graph client (Graph SDK on fetch with an undici agent)', async () => {
      const graph = createGraphClient({ maxRetries: 0 });
      try {
        // The SDK's GraphError keeps fetch's TypeError('fetch failed') but not its cause: the recorded attempt names the guard.
        await expect(graph.api('/me', 'not-a-real-token').get()).rejects.toMatchObject({ code: 'TypeError', message: 'fetch failed' });
      } finally {
        await graph.close();
      }
      expect(takeBlockedAttempts()).toEqual(['connect to graph.microsoft.com:443']);
    });

    it('refuses the ACS identity client (core-rest-pipeline on https)', async () => {
      const acs = createIdentityClient({
        connectionString: 'endpoint=https://contoso.communication.azure.com/;accesskey=a2V5',
        maxRetries: 0,
      });
      await expect(acs.createUser()).rejects.toThrow(NetworkAccessBlockedError);
      expect(takeBlockedAttempts()).toEqual(['connect to contoso.communication.azure.com:443']);
    });

    it("refuses msal's network client (https.request)", async () => {
      const client = createMsalNetworkClient({ timeoutMs: 5_000 });
      try {
        // msal answers every transport failure with its own network_error; the recorded attempt names the guard.
        await expect(client.sendGetRequestAsync('https://login.microsoftonline.com/common/discovery/instance')).rejects.toMatchObject({
          errorCode: 'network_error',
        });
      } finally {
        client.destroy();
      }
      expect(takeBlockedAttempts()).toEqual(['connect to login.microsoftonline.com:443']);
    });
  });

  describe('DNS', () => {
    it('refuses dns.lookup of a non-loopback name, callback and promise forms', async () => {
      expect(() => dns.lookup('example.com', () => undefined)).toThrow(/dns\.lookup example\.com/);
      await expect(dns.promises.lookup('example.com')).rejects.toThrow(NetworkAccessBlockedError);
      await expect(dns.promises.lookupService(TEST_NET, 80)).rejects.toThrow(NetworkAccessBlockedError);
      expect(takeBlockedAttempts()).toEqual([
        'dns.lookup example.com',
        'dns.promises.lookup example.com',
        `dns.promises.lookupService ${TEST_NET}`,
      ]);
    });

    it('lets localhost and IP literals be looked up', async () => {
      await expect(dns.promises.lookup('localhost', { family: 4 })).resolves.toMatchObject({ address: expect.stringMatching(/^127\./) });
      await expect(dns.promises.lookup(TEST_NET)).resolves.toEqual({ address: TEST_NET, family: 4 });
      expect(takeBlockedAttempts()).toEqual([]);
    });

    it('refuses resolve* queries while a configured DNS server is not loopback', async () => {
      const resolver = new dns.promises.Resolver();
      resolver.setServers([TEST_NET]);
      await expect(resolver.resolve4('example.com')).rejects.toThrow(NetworkAccessBlockedError);
      const callbackResolver = new dns.Resolver();
      callbackResolver.setServers([`${TEST_NET}:5353`]);
      expect(() => callbackResolver.resolveTxt('example.com', () => undefined)).toThrow(NetworkAccessBlockedError);
      expect(takeBlockedAttempts()).toEqual([
        `dns.promises.Resolver.resolve4 example.com (asks the DNS servers ${TEST_NET})`,
        `dns.Resolver.resolveTxt example.com (asks the DNS servers ${TEST_NET}:5353)`,
      ]);
    });
  });

  describe('DNS servers on loopback', () => {
    it('lets resolve* query them (a local DNS server is fine)', async () => {
      // Nothing listens there: the query fails on its own, quickly, and not because of the guard.
      const resolver = new dns.promises.Resolver({ timeout: 100, tries: 1 });
      resolver.setServers(['127.0.0.1:5353', '[::1]:5353']);
      await expect(resolver.resolve4('example.com')).rejects.not.toBeInstanceOf(NetworkAccessBlockedError);
      expect(takeBlockedAttempts()).toEqual([]);
    });
  });

  describe('what counts as loopback', () => {
    it.each(['127.0.0.1', '127.45.6.7', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST', 'localhost.'])(
      '%s is loopback',
      (host) => {
        expect(isLoopbackHost(host)).toBe(true);
      },
    );

    it.each([
      TEST_NET,
      '10.0.0.1',
      '0.0.0.0',
      '::',
      '::ffff:192.0.2.1',
      '2001:db8::1',
      'example.com',
      'localhost.example.com',
      '128.0.0.1',
    ])('%s is not', (host) => {
      expect(isLoopbackHost(host)).toBe(false);
    });
  });
});
