import type { RequestHandler, Router } from 'express';

import { MethodNotAllowedError } from '../errors/request-errors';

/**
 * Express answers a HEAD request with the route's GET handler and throws the body away. On a route
 * that does work, the work still happens: `HEAD /api/token` issued an ACS token nobody saw, and
 * `HEAD /api/user` cost an On-Behalf-Of exchange and a Graph read. Routes declared here answer HEAD
 * with 405 and an `Allow` header naming the methods they have, and do nothing else. The public routes
 * without side effects (`/health`, which liveness probes call with HEAD, the OpenAPI document and the
 * docs page) keep Express's HEAD.
 */
export type RouteMethod = 'get' | 'post' | 'delete';

export function routeWithoutHead(router: Router, path: string, handlers: Readonly<Partial<Record<RouteMethod, RequestHandler>>>): void {
  const methods = (['get', 'post', 'delete'] as const).filter((method) => handlers[method] !== undefined);
  const allow = methods.map((method) => method.toUpperCase());
  const route = router.route(path);
  route.head(function refuseHead(req, _res, next) {
    next(new MethodNotAllowedError(req.method, allow));
  });
  for (const method of methods) route[method](handlers[method]!);
}
