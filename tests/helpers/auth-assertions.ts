import { expect } from '@jest/globals';
import type { Response } from 'supertest';

import type { TestService } from './test-service';

/**
 * Shared by the authentication suites: the routes under `/api`, the upstream calls a refused token
 * must never cause, and the shape of a refusal.
 */

export type HttpMethod = 'get' | 'post' | 'delete';

export interface ApiRoute {
  /** How the tests name it, e.g. `GET /api/user`. */
  readonly name: string;
  readonly method: HttpMethod;
  readonly path: string;
  /** Sends a valid Teams token too, so a refusal on the Teams routes can only come from the bearer token. */
  readonly teams?: boolean;
}

/** The calls that matter for "a refused token never reaches an upstream": Graph, ACS and Entra's token endpoint. */
export interface UpstreamWork {
  readonly graph: number;
  readonly acs: number;
  readonly entraToken: number;
}

export function upstreamWork(service: TestService): UpstreamWork {
  return {
    graph: service.local.graph.counters.total(),
    acs: service.local.acs.counters.total(),
    entraToken: service.local.entra.counters.get('token'),
  };
}

/** Keys documents fetched so far (v1 and v2). */
export function keyFetches(service: TestService): number {
  return service.local.entra.counters.get('keys.v1') + service.local.entra.counters.get('keys.v2');
}

export interface CallOptions {
  /** Full Authorization header value; absent sends none. */
  readonly authorization?: string;
  readonly teamsToken?: string;
}

export function call(service: TestService, route: ApiRoute, options: CallOptions = {}): Promise<Response> {
  let request = service.http[route.method](route.path);
  if (options.authorization !== undefined) request = request.set('Authorization', options.authorization);
  if (route.teams && options.teamsToken !== undefined) request = request.set('teams-user-aad-token', options.teamsToken);
  return request;
}

/** `Bearer` alone: RFC 6750 §3.1's answer to a request that carried no bearer credential. */
export const BARE_CHALLENGE = /^Bearer$/;
/** RFC 6750 §3.1's answer to a bearer token that failed validation. */
export const INVALID_TOKEN_CHALLENGE = /^Bearer error="invalid_token", error_description="[^"]+"$/;

/** The service's error body: `{ code, message, requestId }`, the id echoed in `x-request-id`. */
export function expectErrorBody(response: Response, code: string, message: RegExp | string = /./): void {
  expect(response.body).toEqual({ code, message: expect.stringMatching(message), requestId: response.headers['x-request-id'] });
  expect(response.headers['x-request-id']).toEqual(expect.any(String));
}
