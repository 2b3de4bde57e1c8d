import { parse, type ParsedUrlQuery } from 'node:querystring';

import cors from 'cors';
import express, { type Express } from 'express';
import helmet from 'helmet';

import { createAuthenticate, requireClientApp, requireScope } from './auth/authenticate';
import type { EntraTokenValidator } from './auth/entra-token-validator';
import type { Config } from './config/config';
import { createErrorHandler, notFound } from './errors/error-handler';
import { parseJsonBodies } from './http/json-body';
import { assignRequestId } from './http/request-id';
import { limitByCaller, limitByClientAddress } from './http/rate-limits';
import { logRequests } from './http/request-logger';
import { refuseLongUrls } from './http/url-limit';
import { createOpenApiDocument } from './openapi/openapi-document';
import { createOpenApiRouter } from './openapi/openapi-router';
import type { Logger } from './observability/logger';
import { createTokenRouter } from './routes/token-router';
import { createUserRouter } from './routes/user-router';
import type { IdentityService } from './services/identity-service';
import type { WebPage } from './web/web-page';
import type { SharedState } from './adapters/redis/shared-state';

/** What the app is built from: the config it needs and the already-built service parts. */
export interface AppDependencies {
  readonly config: Pick<Config, 'environment' | 'server' | 'entra' | 'acs' | 'rateLimits' | 'mappings'>;
  readonly logger: Logger;
  readonly validateToken: EntraTokenValidator;
  readonly identities: IdentityService;
  /** The sign-in page at `/` (already read from its build folder); absent when WEB_PAGE is off. */
  readonly webPage?: WebPage | undefined;
  /** State shared with the other instances (REDIS_URL); absent: every instance counts for itself. */
  readonly sharedState?: SharedState | undefined;
}

/**
 * Builds the Express app from already-built dependencies. It reads no environment and never
 * listens: `composition-root.ts` builds the dependencies from the config, `server.ts` reads the
 * environment and listens, and tests hand it emulator-backed dependencies.
 */
export function createApp(deps: AppDependencies): Express {
  const { config, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  // API answers are never revalidated (every token is new): hashing each body for an ETag is wasted work.
  app.set('etag', false);
  app.set('trust proxy', config.server.trustProxy);
  app.set('query parser', parseQueryString);

  app.use(assignRequestId);
  app.use(helmet());
  // Before the log line and every other step that reads the URL, so none of them sees an unbounded one.
  app.use(refuseLongUrls);
  app.use(logRequests(logger));
  if (config.server.corsAllowedOrigins.length > 0) {
    app.use(
      cors({
        origin: [...config.server.corsAllowedOrigins],
        methods: ['GET', 'POST', 'DELETE'],
        allowedHeaders: ['Authorization', 'Content-Type', 'teams-user-aad-token', 'x-ms-client-request-id', 'x-request-id'],
        exposedHeaders: ['x-request-id', 'x-ms-client-request-id', 'WWW-Authenticate', 'Retry-After', 'RateLimit', 'RateLimit-Policy'],
        maxAge: 600,
      }),
    );
  }
  // Liveness for App Service's health check: no upstream call, so a slow dependency never recycles the instance.
  // With Redis, a detail: whether limits are shared right now. Never a failure: the service answers without Redis.
  const { sharedState } = deps;
  app.get('/health', (_req, res) => {
    res.status(200).json(sharedState === undefined ? { status: 'ok' } : { status: 'ok', redis: sharedState.state() });
  });
  // Static and served from memory, so neither rate limited nor authenticated: the page signs the user in itself.
  if (deps.webPage !== undefined) app.use(deps.webPage.router);

  const { perAddressPerMinute, perUserPerMinute } = config.rateLimits;
  if (perAddressPerMinute > 0) app.use('/api', limitByClientAddress(perAddressPerMinute, sharedState?.rateLimitStore('per-address')));
  app.use(parseJsonBodies(config.server.jsonBodyLimitBytes));
  // Public, so clients and tools can read the API description before they have a token.
  app.use(
    '/api',
    createOpenApiRouter(
      createOpenApiDocument({
        requiredScope: config.entra.requiredScope,
        tokenScopes: config.acs.tokenScopes,
        adminRole: config.entra.adminRole,
        mappingStore: config.mappings.store,
      }),
    ),
  );
  const authenticate = createAuthenticate(deps.validateToken);
  app.use('/api', authenticate, requireClientApp(config.entra.allowedClientAppIds), requireScope(config.entra.requiredScope));
  if (perUserPerMinute > 0) app.use('/api', limitByCaller(perUserPerMinute, sharedState?.rateLimitStore('per-user')));
  app.use('/api/user', createUserRouter(deps.identities, { adminRole: config.entra.adminRole }));
  app.use(
    '/api/token',
    createTokenRouter(deps.identities, { scopes: config.acs.tokenScopes, expiresInMinutes: config.acs.tokenExpiresInMinutes }),
  );

  app.use(notFound);
  app.use(createErrorHandler({ logger, exposeStack: config.environment === 'development' }));
  return app;
}

/**
 * Express's 'simple' query parser (node:querystring) without its 1,000-pair cap: past the cap it drops
 * the rest silently, so a parameter hidden behind 1,000 `&` would escape the routes' check that refuses
 * unknown ones. The 8,192-character URL limit (`refuseLongUrls`, which runs first) bounds the work.
 */
function parseQueryString(query: string): ParsedUrlQuery {
  return parse(query, '&', '=', { maxKeys: 0 });
}
