import { randomBytes, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { JSONWebKeySet } from 'jose';
import type { SigningKeySet } from '../entra/signing-keys';
import { createEmulatorKit, type FaultInjector, type RequestCounters } from '../kit/faults';
import { startServer } from '../kit/start-server';
import { LOCAL_TENANT_ID } from '../local-directory';
import { ACS_ERRORS, acsErrorEnvelope, sendAcsError, type AcsErrorSpec } from './acs-errors';
import { AcsTokenIssuer, formatExpiresOn, type AcsTokenClaims } from './acs-token-issuer';
import { verifyHmacRequest } from './hmac-authentication';
import { IdentityRegistry, isGuid, parseIdentityId, type IdentityRecord } from './identity-registry';
import {
  DEFAULT_ACS_LIMITS,
  FixedWindowRateLimiter,
  type AcsLimits,
  type AcsOperation,
  type OperationLimit,
} from './rate-limiter';
import {
  parseJsonBody,
  validateCreateRequest,
  validateIssueRequest,
  validateTeamsExchangeRequest,
  type AcsTokenScope,
} from './request-validation';
import { createTeamsTokenVerifier } from './teams-token-verifier';

/**
 * A local Azure Communication Services Identity data plane (api-version 2023-10-01): the five
 * operations of the spec over plain HTTP on loopback, with HMAC-SHA256 access-key authentication
 * checked exactly as the live service checks it, real signed JWT access tokens, revocation, deletion,
 * Teams token exchange against the Entra emulator's keys, the documented request limits, and fault
 * injection. The real `CommunicationIdentityClient` talks to it with `allowInsecureConnection: true`.
 */
export interface AcsEmulatorOptions {
  /** The ACS resource's immutable id (a GUID); random by default. It appears in every identity id. */
  readonly resourceId?: string;
  /** The access key, base64 of at least 32 bytes; 64 random bytes (like a live key) by default. */
  readonly accessKey?: string;
  /** The Entra ID emulator's signing keys, used to verify Teams users' tokens. */
  readonly entraKeys: SigningKeySet;
  /** Tenant whose issuers (`https://sts.windows.net/{tid}/`, `https://login.microsoftonline.com/{tid}/v2.0`) are accepted. */
  readonly entraTenantId?: string;
  /** Further issuers to accept on Teams users' tokens (the Entra emulator's v2 issuer). */
  readonly entraIssuers?: readonly string[];
  /** Override request limits per operation (the documented limits otherwise). */
  readonly limits?: Partial<Record<AcsOperation, OperationLimit>>;
  readonly host?: string;
  readonly port?: number;
}

export type AccessTokenInvalidReason = 'expired' | 'revoked' | 'deleted' | 'bad-signature' | 'unknown-identity';

export interface AccessTokenVerification {
  readonly valid: boolean;
  readonly reason?: AccessTokenInvalidReason;
  /** The token's claims whenever its signature is good. */
  readonly claims?: AcsTokenClaims;
}

export interface AcsEmulator {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:49152`. */
  readonly url: string;
  /** `${url}/`, the form the ACS SDK and connection strings use. */
  readonly endpoint: string;
  /** `endpoint=${url}/;accesskey=${accessKey}`. */
  readonly connectionString: string;
  readonly resourceId: string;
  readonly accessKey: string;
  readonly faults: FaultInjector;
  /** Requests per route: `identities.create`, `identities.delete`, `identities.issueToken`, `identities.revokeTokens`, `teams.exchange`, `unmatched`. */
  readonly counters: RequestCounters;
  /** Every identity ever created, deleted ones included. */
  identities(): IdentityRecord[];
  isAlive(id: string): boolean;
  aliveIdentityIds(): string[];
  /** Whether an access token this emulator issued still stands (signature, expiry, revocation, deletion). */
  verifyAccessToken(token: string): Promise<AccessTokenVerification>;
  /** Create an identity directly (a fresh id, or `id`, which must be of this resource). Returns its id. */
  seedIdentity(id?: string): string;
  /** Delete an identity as if from outside the service (portal, another app). False if it was not alive. */
  deleteIdentityDirectly(id: string): boolean;
  /** Start a new rate-limit window for every operation. */
  resetRateLimits(): void;
  /** Public key of the emulator's ACS tokens. */
  tokenSigningJwks(): JSONWebKeySet;
  /** TCP connections accepted so far (keep-alive reuse shows as few connections for many requests). */
  connectionsAccepted(): number;
  close(): Promise<void>;
}

/** GA api-versions the JS SDK has sent (1.0 → 2021-03-07 … 1.3 → 2023-10-01). */
export const ACS_SUPPORTED_API_VERSIONS = Object.freeze(['2021-03-07', '2022-06-01', '2022-10-01', '2023-10-01'] as const);

const BASE64_PATTERN = /^[A-Za-z0-9+/]+={0,2}$/;
const MAX_BODY_BYTES = 64 * 1024;

function validateOptions(options: AcsEmulatorOptions): { resourceId: string; accessKey: string; tenantId: string; limits: AcsLimits } {
  const resourceId = (options.resourceId ?? randomUUID()).toLowerCase();
  if (!isGuid(resourceId)) throw new TypeError('resourceId must be a GUID');
  const accessKey = options.accessKey ?? randomBytes(64).toString('base64');
  if (!BASE64_PATTERN.test(accessKey) || accessKey.length % 4 !== 0 || Buffer.from(accessKey, 'base64').length < 32) {
    throw new TypeError('accessKey must be base64 of at least 32 bytes');
  }
  const tenantId = options.entraTenantId ?? LOCAL_TENANT_ID;
  if (!isGuid(tenantId)) throw new TypeError('entraTenantId must be a GUID');
  if (options.entraKeys === undefined) throw new TypeError('entraKeys is required (the Entra emulator signing keys)');
  return { resourceId, accessKey, tenantId, limits: { ...DEFAULT_ACS_LIMITS, ...options.limits } };
}

/** A correlation vector like the live `MS-CV` header (base64 of 16 random bytes, then `.0`). */
function correlationVector(): string {
  return `${randomBytes(16).toString('base64').replace(/=+$/, '')}.0`;
}

function rawBody(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

/**
 * Start an ACS Identity emulator on loopback (port 0 unless `port` is given). Point the SDK at it with
 * `createIdentityClient({ connectionString: emulator.connectionString })`, which turns on
 * `allowInsecureConnection` for the loopback http endpoint. Close it with `close()`.
 */
export async function createAcsEmulator(options: AcsEmulatorOptions): Promise<AcsEmulator> {
  const { resourceId, accessKey, tenantId, limits } = validateOptions(options);
  const macKey = Buffer.from(accessKey, 'base64');
  const registry = new IdentityRegistry(resourceId);
  const issuer = await AcsTokenIssuer.create(resourceId);
  const limiter = new FixedWindowRateLimiter(limits);
  const verifyTeamsToken = createTeamsTokenVerifier({
    entraKeys: options.entraKeys,
    tenantId,
    ...(options.entraIssuers ? { extraIssuers: options.entraIssuers } : {}),
  });
  const kit = createEmulatorKit(acsErrorEnvelope);

  const serviceHeaders: RequestHandler = (req, res, next) => {
    const startedAt = process.hrtime.bigint();
    res.setHeader('MS-CV', correlationVector());
    res.setHeader('api-supported-versions', ACS_SUPPORTED_API_VERSIONS.join(', '));
    const clientRequestId = req.get('x-ms-client-request-id');
    if (clientRequestId !== undefined) res.setHeader('x-ms-client-request-id', clientRequestId);
    // The processing time is only known when the head is written; Node calls writeHead for every
    // response (explicitly or through end()), so faults and errors get the header too.
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    // writeHead is overloaded; the wrapper forwards whatever it was given, so its arguments stay unknown[].
    res.writeHead = ((...args: unknown[]) => {
      const elapsedMs = Number((process.hrtime.bigint() - startedAt) / 1_000_000n);
      if (!res.headersSent) res.setHeader('X-Processing-Time', `${elapsedMs}ms`);
      return writeHead(...args);
    }) as Response['writeHead'];
    next();
  };

  const authenticate: RequestHandler = (req, res, next) => {
    const verdict = verifyHmacRequest(
      { method: req.method, pathAndQuery: req.originalUrl, headers: req.headers, body: rawBody(req) },
      macKey,
    );
    if (verdict.ok) next();
    else sendAcsError(res, verdict.failure === 'clock-skew' ? ACS_ERRORS.clockSkew : ACS_ERRORS.denied);
  };

  const requireApiVersion: RequestHandler = (req, res, next) => {
    const version = req.query['api-version'];
    if (typeof version === 'string' && (ACS_SUPPORTED_API_VERSIONS as readonly string[]).includes(version)) {
      next();
      return;
    }
    // ASP.NET API Versioning wording (Azure/Communication#159); status and code unconfirmed.
    const uri = `${req.protocol}://${req.get('host') ?? ''}${req.originalUrl}`;
    const shown = typeof version === 'string' ? version : '';
    sendAcsError(res, {
      status: 400,
      code: 'UnsupportedApiVersion',
      message: `The HTTP resource that matches the request URI '${uri}' does not support the API version '${shown}'.`,
    });
  };

  /** Count a request against its operation's limit; answers 429 and returns false when over it. */
  const withinLimit = (res: Response, operation: AcsOperation): boolean => {
    const decision = limiter.take(operation);
    if (decision.allowed) return true;
    sendAcsError(res, ACS_ERRORS.throttled, { 'Retry-After': String(decision.retryAfterSeconds) });
    return false;
  };

  const throttle =
    (operation: AcsOperation): RequestHandler =>
    (_req, res, next) => {
      if (withinLimit(res, operation)) next();
    };

  /** Resolve the `{id}` path segment to an alive identity of this resource, or answer the error. */
  const resolveIdentity = (req: Request, res: Response): string | undefined => {
    const param = req.params['id'];
    const id = typeof param === 'string' ? param : '';
    const parsed = parseIdentityId(id);
    let error: AcsErrorSpec | undefined;
    if (parsed.kind === 'malformed') error = ACS_ERRORS.invalidIdentity;
    else if (parsed.resourceId !== resourceId) error = ACS_ERRORS.identityNotOwned;
    else if (registry.findAlive(id) === undefined) error = ACS_ERRORS.identityNotFound;
    if (error === undefined) return id;
    sendAcsError(res, error);
    return undefined;
  };

  const mintToken = async (
    identityId: string,
    scopes: readonly AcsTokenScope[],
    expiresInMinutes: number,
  ): Promise<{ token: string; expiresOn: string }> => {
    const sequence = registry.nextTokenSequence();
    const issuedAt = Date.now();
    const expiresAt = issuedAt + expiresInMinutes * 60_000;
    const issued = await issuer.issue(identityId.slice('8:'.length), scopes, issuedAt, expiresAt);
    registry.recordToken(issued.token, identityId, sequence, expiresAt);
    return { token: issued.token, expiresOn: issued.expiresOn };
  };

  const createIdentity: RequestHandler = async (req, res) => {
    const body = parseJsonBody(rawBody(req), req.get('content-type'));
    // createUserAndToken has its own documented limit, separate from plain createUser.
    const wantsToken =
      body.ok && typeof body.value === 'object' && body.value !== null && 'createTokenWithScopes' in body.value;
    if (!withinLimit(res, wantsToken ? 'identities.createWithToken' : 'identities.create')) return;
    if (!body.ok) return sendAcsError(res, body.error);
    const request = validateCreateRequest(body.value);
    if (!request.ok) return sendAcsError(res, request.error);
    const identity = registry.create();
    if (request.value.scopes === undefined) {
      res.status(201).json({ identity: { id: identity.id } });
      return;
    }
    const accessToken = await mintToken(identity.id, request.value.scopes, request.value.expiresInMinutes);
    res.status(201).json({ identity: { id: identity.id }, accessToken });
  };

  const issueToken: RequestHandler = async (req, res) => {
    const body = parseJsonBody(rawBody(req), req.get('content-type'));
    if (!body.ok) return sendAcsError(res, body.error);
    const request = validateIssueRequest(body.value);
    if (!request.ok) return sendAcsError(res, request.error);
    const id = resolveIdentity(req, res);
    if (id === undefined) return;
    res.status(200).json(await mintToken(id, request.value.scopes, request.value.expiresInMinutes));
  };

  const revokeTokens: RequestHandler = (req, res) => {
    const id = resolveIdentity(req, res);
    if (id === undefined) return;
    registry.revokeTokens(id);
    res.status(204).end();
  };

  const deleteIdentity: RequestHandler = (req, res) => {
    const id = resolveIdentity(req, res);
    if (id === undefined) return;
    registry.delete(id);
    res.status(204).end();
  };

  const exchangeTeamsToken: RequestHandler = async (req, res) => {
    const body = parseJsonBody(rawBody(req), req.get('content-type'));
    if (!body.ok) return sendAcsError(res, body.error);
    const request = validateTeamsExchangeRequest(body.value);
    if (!request.ok) return sendAcsError(res, request.error);
    const verdict = await verifyTeamsToken(request.value.token, request.value.appId, request.value.userId);
    if (!verdict.ok) return sendAcsError(res, verdict.error);
    // Teams users are `8:orgid:{oid}` in ACS; the token lives exactly as long as the Entra token.
    const expiresAt = verdict.expiresAtSeconds * 1000;
    const issued = await issuer.issue(`orgid:${verdict.oid}`, ['chat', 'voip'], Date.now(), expiresAt);
    res.status(200).json({ token: issued.token, expiresOn: formatExpiresOn(expiresAt) });
  };

  const handleError = (error: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const status = typeof error === 'object' && error !== null && 'status' in error ? Number(error.status) : 500;
    const type = typeof error === 'object' && error !== null && 'type' in error ? String(error.type) : '';
    if (type === 'entity.too.large') sendAcsError(res, ACS_ERRORS.payloadTooLarge);
    else if (type === 'encoding.unsupported') sendAcsError(res, ACS_ERRORS.unsupportedMediaType);
    else if (status >= 400 && status < 500) sendAcsError(res, { status, code: 'BadRequest', message: 'The request is malformed.' });
    else sendAcsError(res, ACS_ERRORS.internal);
  };

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(serviceHeaders);
  // The signature covers the body bytes as sent, so they are kept raw and parsed only after the
  // HMAC check; a JSON parser would re-serialise them.
  app.use(express.raw({ type: () => true, limit: MAX_BODY_BYTES, inflate: false }));
  const guard = [authenticate, requireApiVersion];
  app.post('/identities', kit.step('identities.create'), ...guard, createIdentity);
  app.delete('/identities/:id', kit.step('identities.delete'), ...guard, throttle('identities.delete'), deleteIdentity);
  app.post(
    '/identities/:id/\\:issueAccessToken',
    kit.step('identities.issueToken'),
    ...guard,
    throttle('identities.issueToken'),
    issueToken,
  );
  app.post(
    '/identities/:id/\\:revokeAccessTokens',
    kit.step('identities.revokeTokens'),
    ...guard,
    throttle('identities.revokeTokens'),
    revokeTokens,
  );
  app.post('/teamsUser/\\:exchangeAccessToken', kit.step('teams.exchange'), ...guard, throttle('teams.exchange'), exchangeTeamsToken);
  app.use(kit.unmatched);
  app.use(handleError);

  const server = await startServer(app, {
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.port === undefined ? {} : { port: options.port }),
  });

  return {
    url: server.url,
    endpoint: `${server.url}/`,
    connectionString: `endpoint=${server.url}/;accesskey=${accessKey}`,
    resourceId,
    accessKey,
    faults: kit.faults,
    counters: kit.counters,
    identities: () => registry.list(),
    isAlive: (id) => registry.findAlive(id) !== undefined,
    aliveIdentityIds: () => registry.aliveIds(),
    async verifyAccessToken(token) {
      const check = await issuer.check(token);
      if (!check.ok) return { valid: false, reason: check.reason };
      const { claims } = check;
      if (!claims.skypeid.startsWith('acs:')) return { valid: true, claims };
      const standing = registry.tokenStanding(token, `8:${claims.skypeid}`);
      return standing === 'valid' ? { valid: true, claims } : { valid: false, reason: standing, claims };
    },
    seedIdentity: (id) => registry.create(id).id,
    deleteIdentityDirectly: (id) => registry.delete(id),
    resetRateLimits: () => limiter.reset(),
    tokenSigningJwks: () => issuer.publicJwks(),
    connectionsAccepted: () => server.connectionsAccepted(),
    close: () => server.close(),
  };
}
