import { DEMO_USERS } from '../../src/local/local-directory';
import type { ApiRoute } from './auth-assertions';

/**
 * Every route behind authentication, for the suites that check a refusal happens on each of them
 * before any work: the admin erasure names Bob, and the last one matches no route at all.
 */
export const AUTHENTICATED_ROUTES: readonly ApiRoute[] = [
  { name: 'GET /api/user', method: 'get', path: '/api/user' },
  { name: 'POST /api/user', method: 'post', path: '/api/user' },
  { name: 'DELETE /api/user', method: 'delete', path: '/api/user' },
  { name: 'DELETE /api/user/{userObjectId} (admin)', method: 'delete', path: `/api/user/${DEMO_USERS.bob.oid}` },
  { name: 'GET /api/token', method: 'get', path: '/api/token' },
  { name: 'POST /api/token', method: 'post', path: '/api/token' },
  { name: 'DELETE /api/token', method: 'delete', path: '/api/token' },
  { name: 'GET /api/token/teams', method: 'get', path: '/api/token/teams', teams: true },
  { name: 'POST /api/token/teams', method: 'post', path: '/api/token/teams', teams: true },
  { name: 'GET an unknown /api route', method: 'get', path: '/api/no-such-route' },
];
