import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { CommunicationIdentityClient } from '@azure/communication-identity';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { Agent, fetch } from 'undici';

import type { MappingPair } from './emulators-process';
import { serveRpc } from './ipc';

/**
 * The benchmark's yardstick: the least a correct `GET /api/token` can do. `node:http`, no framework;
 * one RS256 verification of the bearer token with jose (issuer, audience, lifetime) against the
 * Entra keys fetched once; the caller's ACS id from an in-memory map; one ACS token issue through
 * the same SDK client the service uses (keep-alive). No logging, no Graph, no On-Behalf-Of.
 */

export interface ReferenceStartParams {
  /** The Entra emulator's v1 keys document URL. */
  readonly jwksUri: string;
  readonly issuer: string;
  readonly audience: string;
  readonly caCertPem: string;
  readonly acsConnectionString: string;
  readonly mappings: readonly MappingPair[];
}

export interface ReferenceApi {
  start(params: ReferenceStartParams): Promise<{ readonly url: string }>;
  memory(): NodeJS.MemoryUsage;
  cpu(): NodeJS.CpuUsage;
  stop(): Promise<void>;
}

let server: Server | undefined;

function answer(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

async function fetchKeys(jwksUri: string, caCertPem: string): Promise<JSONWebKeySet> {
  const agent = new Agent({ connect: { ca: caCertPem } });
  try {
    const response = await fetch(jwksUri, { dispatcher: agent, signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`JWKS ${jwksUri} answered ${response.status}`);
    return (await response.json()) as JSONWebKeySet;
  } finally {
    await agent.close();
  }
}

const api: ReferenceApi = {
  async start(params) {
    if (server !== undefined) throw new Error('already started');
    const keys = createLocalJWKSet(await fetchKeys(params.jwksUri, params.caCertPem));
    const acsIdByOid = new Map(params.mappings);
    // allowInsecureConnection: the local ACS emulator is plain http on loopback, as for the service.
    const acs = new CommunicationIdentityClient(params.acsConnectionString, { allowInsecureConnection: true });

    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      if (req.method !== 'GET' || (req.url !== '/api/token' && !req.url?.startsWith('/api/token?'))) {
        answer(res, 404, { error: 'not_found' });
        return;
      }
      const header = req.headers.authorization ?? '';
      const bearer = /^Bearer (.+)$/i.exec(header)?.[1];
      let oid: unknown;
      try {
        if (bearer === undefined) throw new Error('no bearer token');
        const { payload } = await jwtVerify(bearer, keys, { algorithms: ['RS256'], issuer: params.issuer, audience: params.audience });
        if (typeof payload['scp'] !== 'string' || !payload['scp'].split(' ').includes('access_as_user')) throw new Error('scope');
        oid = payload['oid'];
      } catch {
        answer(res, 401, { error: 'invalid_token' });
        return;
      }
      const communicationUserId = typeof oid === 'string' ? acsIdByOid.get(oid) : undefined;
      if (communicationUserId === undefined) {
        answer(res, 404, { error: 'identity_not_found' });
        return;
      }
      try {
        const issued = await acs.getToken({ communicationUserId }, ['chat', 'voip']);
        answer(res, 201, { token: issued.token, expiresOn: issued.expiresOn, user: { communicationUserId } });
      } catch {
        answer(res, 502, { error: 'upstream_error' });
      }
    };

    const started = createServer((req, res) => {
      void handle(req, res);
    });
    // The service's values (src/server.ts), so both keep autocannon's connections alike.
    started.keepAliveTimeout = 65_000;
    started.headersTimeout = 66_000;
    await new Promise<void>((resolve, reject) => {
      started.once('error', reject);
      started.listen(0, '127.0.0.1', () => resolve());
    });
    server = started;
    return { url: `http://127.0.0.1:${(started.address() as AddressInfo).port}` };
  },

  memory: () => process.memoryUsage(),
  cpu: () => process.cpuUsage(),

  async stop() {
    const running = server;
    server = undefined;
    if (running === undefined) return;
    const closed = new Promise<void>((resolve) => running.close(() => resolve()));
    running.closeAllConnections();
    await closed;
  },
};

serveRpc(api);
