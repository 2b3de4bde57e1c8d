import { Router, type RequestHandler } from 'express';

import { callerOf, requireRole } from '../auth/authenticate';
import { BadRequestError } from '../errors/app-errors';
import { routeWithoutHead } from '../http/routes-without-head';
import { redactTokens } from '../observability/redact';
import type { IdentityService } from '../services/identity-service';
import { isGuid } from '../validation/formats';

/** `/api/user`: the caller's ACS identity mapping, and admin erasure of another user's. */
export function createUserRouter(identities: IdentityService, options: { readonly adminRole: string }): Router {
  const getUser: RequestHandler = async (req, res) => {
    res.status(200).json({ acsUserIdentity: await identities.getIdentity(callerOf(req)) });
  };

  const createUser: RequestHandler = async (req, res) => {
    const { acsUserId, created } = await identities.ensureIdentity(callerOf(req));
    res.status(created ? 201 : 200).json({ acsUserIdentity: acsUserId });
  };

  const deleteUser: RequestHandler = async (req, res) => {
    await identities.deleteIdentity(callerOf(req));
    res.status(204).end();
  };

  const eraseUser: RequestHandler = async (req, res) => {
    const param: unknown = req.params['userObjectId'];
    const userObjectId = typeof param === 'string' ? param : '';
    if (!isGuid(userObjectId)) throw new BadRequestError(`'${redactTokens(userObjectId, 64)}' is not a user object id (a GUID).`);
    await identities.deleteIdentityOfUser(callerOf(req), userObjectId.toLowerCase());
    res.status(204).end();
  };

  const router = Router();
  routeWithoutHead(router, '/', { get: getUser, post: createUser, delete: deleteUser });
  router.delete('/:userObjectId', requireRole(options.adminRole), eraseUser);
  return router;
}
