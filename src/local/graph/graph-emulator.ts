import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { SigningKeySet } from '../entra/signing-keys';
import { createEmulatorKit, type FaultInjector, type RequestCounters } from '../kit/faults';
import { startServer } from '../kit/start-server';
import { LOCAL_TENANT_ID } from '../local-directory';
import { authenticateGraphCaller, requirePermission, type GraphCaller } from './graph-caller';
import { createGraphErrorEnvelope, GraphEmulatorError, type GraphRequestIds } from './graph-emulator-error';
import { SlidingWindowThrottle } from './graph-throttle';
import { GraphUserDirectory, type GraphUser } from './graph-user-directory';
import { extensionResource, OpenExtensionStore, type ExtensionSeed, type StoredExtension } from './open-extension-store';
import { UserListing } from './user-listing';
import { parseUserQuery, userResource, usersContext } from './user-query';

/**
 * A local Microsoft Graph that serves the slice this service uses: the signed-in user and its open
 * extensions (`/v1.0/me`, `/v1.0/me/extensions`, and the same under `/v1.0/users/{id}`), plus the
 * paged user list an admin tool walks (`/v1.0/users?$expand=extensions`), over HTTPS, verifying
 * Entra-issued Graph tokens and answering with Graph's status codes, error envelope, limits and
 * throttling.
 */
export interface GraphEmulatorOptions {
  /** Server certificate and key (the Graph client sends tokens over https only). */
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  /** The Entra emulator's signing keys: tokens must be signed by one of its published keys. */
  readonly keys: SigningKeySet;
  /** Tenant whose v1 issuer (`https://sts.windows.net/{tid}/`) is accepted; {@link LOCAL_TENANT_ID} by default. */
  readonly tenantId?: string;
  /** Per-app request budget; Graph's 455 requests per 10 s by default. */
  readonly throttle?: { readonly limit?: number; readonly windowMs?: number };
  /** Interface to bind; 127.0.0.1 by default. */
  readonly host?: string;
  /** Port; 0 (a free one) by default. */
  readonly port?: number;
}

/** An extension as seen by tests, with the app that created it. */
export type EmulatedExtension = StoredExtension;

export interface GraphEmulator {
  /** Base URL without the version segment, e.g. `https://127.0.0.1:49152` (use it as the Graph client's `baseUrl`). */
  readonly url: string;
  readonly tenantId: string;
  readonly faults: FaultInjector;
  readonly counters: RequestCounters;
  /** Every open extension on a user, in creation order. */
  extensionsOf(oid: string): readonly EmulatedExtension[];
  /**
   * Seed an extension as if `appId` had created it (e.g. data left by the original sample). Bypasses
   * the per-app limit. An unknown `oid` joins the directory (generated name and UPN), so
   * `/users/{oid}` finds it and `/users` lists it, as every user holding an extension exists on Graph.
   */
  putExtension(oid: string, appId: string, extension: ExtensionSeed): EmulatedExtension;
  /** Forget extensions and users seen, refill the throttle, clear faults and counters. */
  reset(): void;
  /** TCP connections accepted so far (keep-alive reuse shows as few connections for many requests). */
  connectionsAccepted(): number;
  close(): Promise<void>;
}

/** What Graph answers successful JSON with; the Graph client only needs the `application/json` part. */
const ODATA_JSON = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

const USER_NOT_FOUND = (id: string): GraphEmulatorError =>
  new GraphEmulatorError(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`);

function callerOf(res: Response): GraphCaller {
  return res.locals['graphCaller'] as GraphCaller;
}

function sendJson(res: Response, status: number, body: unknown): void {
  res.status(status).set('Content-Type', ODATA_JSON).set('OData-Version', '4.0').json(body);
}

/** Start the Graph emulator on loopback (port 0 by default). */
export async function createGraphEmulator(options: GraphEmulatorOptions): Promise<GraphEmulator> {
  const tenantId = options.tenantId ?? LOCAL_TENANT_ID;
  const throttle = new SlidingWindowThrottle(options.throttle?.limit ?? 455, options.throttle?.windowMs ?? 10_000);
  const directory = new GraphUserDirectory();
  const store = new OpenExtensionStore();
  const requestIds = new WeakMap<Request, GraphRequestIds>();
  const kit = createEmulatorKit(createGraphErrorEnvelope((req) => requestIds.get(req)));
  // Known once listening; contexts and Location headers point back at this emulator.
  let baseUrl = '';

  const assignRequestIds: RequestHandler = (req, res, next) => {
    const requestId = randomUUID();
    const sent = req.get('client-request-id');
    // Graph echoes the caller's client-request-id, and reuses its request-id when there is none.
    const clientRequestId = sent !== undefined && sent.trim() !== '' ? sent : requestId;
    requestIds.set(req, { requestId, clientRequestId });
    res.set('request-id', requestId).set('client-request-id', clientRequestId);
    next();
  };

  const authenticate: RequestHandler = async (req, res, next) => {
    try {
      res.locals['graphCaller'] = await authenticateGraphCaller(req.get('authorization'), options.keys, tenantId);
    } catch (error) {
      if (error instanceof GraphEmulatorError && error.status === 401) {
        res.set('WWW-Authenticate', 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"');
      }
      throw error;
    }
    next();
  };

  const applyThrottle: RequestHandler = (req, res, next) => {
    const caller = callerOf(res);
    const decision = throttle.take(`${caller.tenantId}/${caller.appId}`);
    if (!decision.allowed) {
      res.set('Retry-After', String(decision.retryAfterSeconds));
      kit.sendError(req, res, 429, 'TooManyRequests', 'Please retry again later.');
      return;
    }
    next();
  };

  const parseJson = express.json({ limit: '64kb' });

  /** Resolve the user a request is about, enforcing delegated/app rules and permissions (contract §3). */
  const targetUser = (req: Request, res: Response, access: 'read' | 'write'): GraphUser => {
    const caller = callerOf(res);
    // Named (non-wildcard) route parameters are always single strings.
    const userParam = req.params['userId'] as string | undefined;
    if (userParam === undefined) {
      if (caller.kind === 'app') throw new GraphEmulatorError(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
      requirePermission(caller, access);
      return directory.ensure(caller.oid, caller.claims);
    }
    requirePermission(caller, access);
    if (caller.kind === 'delegated') {
      const self = directory.ensure(caller.oid, caller.claims);
      const asked = userParam.toLowerCase();
      // Other users' extensions need User.ReadWrite.All plus an admin role; the emulator has no roles, so: own user only.
      if (asked !== self.id.toLowerCase() && asked !== self.userPrincipalName.toLowerCase()) {
        throw new GraphEmulatorError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
      }
      return self;
    }
    const user = directory.find(userParam);
    if (user === undefined) throw USER_NOT_FOUND(userParam);
    return user;
  };

  const extensionId = (req: Request): string => req.params['extensionId'] as string;
  const entityContext = (user: GraphUser): string => `${baseUrl}/v1.0/$metadata#users('${user.id}')/extensions/$entity`;

  const getUser: RequestHandler = (req, res) => {
    const query = parseUserQuery(req);
    const user = targetUser(req, res, 'read');
    const body = { '@odata.context': `${baseUrl}/v1.0/$metadata#${usersContext(query)}/$entity`, ...userResource(user, query, store) };
    sendJson(res, 200, body);
  };

  const listing = new UserListing(directory, store);
  const listUsers: RequestHandler = (req, res) => {
    sendJson(res, 200, listing.page(req, callerOf(res), baseUrl));
  };

  const listExtensions: RequestHandler = (req, res) => {
    const user = targetUser(req, res, 'read');
    sendJson(res, 200, {
      '@odata.context': `${baseUrl}/v1.0/$metadata#users('${user.id}')/extensions`,
      value: store.list(user.id).map(extensionResource),
    });
  };

  const createExtension: RequestHandler = (req, res) => {
    const user = targetUser(req, res, 'write');
    const created = store.create(user.id, callerOf(res).appId, req.body);
    res.set('Location', `${baseUrl}/v1.0/users/${user.id}/extensions/${encodeURIComponent(created.id)}`);
    sendJson(res, 201, { '@odata.context': entityContext(user), ...extensionResource(created) });
  };

  const getExtension: RequestHandler = (req, res) => {
    const user = targetUser(req, res, 'read');
    sendJson(res, 200, { '@odata.context': entityContext(user), ...extensionResource(store.get(user.id, extensionId(req))) });
  };

  const updateExtension: RequestHandler = (req, res) => {
    const user = targetUser(req, res, 'write');
    store.replace(user.id, extensionId(req), req.body);
    res.status(204).end();
  };

  const deleteExtension: RequestHandler = (req, res) => {
    const user = targetUser(req, res, 'write');
    store.delete(user.id, extensionId(req));
    res.status(204).end();
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(assignRequestIds);

  const guarded = [authenticate, applyThrottle];
  app.get('/v1.0/users', kit.step('users.list'), ...guarded, listUsers);
  for (const prefix of ['/v1.0/me', '/v1.0/users/:userId']) {
    app.get(prefix, kit.step('user.get'), ...guarded, getUser);
    app.get(`${prefix}/extensions`, kit.step('extensions.list'), ...guarded, listExtensions);
    app.post(`${prefix}/extensions`, kit.step('extensions.create'), ...guarded, parseJson, createExtension);
    app.get(`${prefix}/extensions/:extensionId`, kit.step('extensions.get'), ...guarded, getExtension);
    app.patch(`${prefix}/extensions/:extensionId`, kit.step('extensions.update'), ...guarded, parseJson, updateExtension);
    app.delete(`${prefix}/extensions/:extensionId`, kit.step('extensions.delete'), ...guarded, deleteExtension);
  }
  app.use(kit.unmatched);
  // Express recognises error middleware by its four parameters, so `_next` must stay.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof GraphEmulatorError) {
      kit.sendError(req, res, error.status, error.code, error.message);
      return;
    }
    const type = typeof error === 'object' && error !== null ? (error as { type?: unknown }).type : undefined;
    if (type === 'entity.parse.failed') {
      kit.sendError(req, res, 400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.');
    } else if (type === 'entity.too.large') {
      kit.sendError(req, res, 413, 'RequestEntityTooLarge', 'The request payload is too large.');
    } else {
      kit.sendError(req, res, 500, 'generalException', 'An internal server error occurred.');
    }
  });

  const started = await startServer(app, { tls: options.tls, host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  baseUrl = started.url;

  return {
    url: started.url,
    tenantId,
    faults: kit.faults,
    counters: kit.counters,
    extensionsOf: (oid) => store.list(oid),
    putExtension: (oid, appId, extension) => {
      const seeded = store.seed(oid, appId, extension);
      directory.ensure(oid);
      return seeded;
    },
    reset: () => {
      store.reset();
      directory.reset();
      throttle.reset();
      kit.faults.clear();
      kit.counters.reset();
    },
    connectionsAccepted: () => started.connectionsAccepted(),
    close: () => started.close(),
  };
}
