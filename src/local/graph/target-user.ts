import type { Request, Response } from 'express';
import { requirePermission, type GraphCaller } from './graph-caller';
import { GraphEmulatorError } from './graph-emulator-error';
import type { GraphUser, GraphUserDirectory } from './graph-user-directory';
import { callerOf } from './middleware/authenticate-caller';
import { userIdParam } from './route-params';

/**
 * Caller authorisation for the routes about one user (`/me…`, `/users/{id}…`): who the request is
 * about and whether this caller may read or write it (contract §3). One function for all of them, so
 * the user and its extensions cannot disagree on who may see what.
 */
export function authorizeTargetUser(
  directory: GraphUserDirectory,
  caller: GraphCaller,
  userParam: string | undefined,
  access: 'read' | 'write',
): GraphUser {
  if (userParam === undefined) {
    if (caller.kind === 'app')
      throw new GraphEmulatorError(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
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
  if (user === undefined) throw userNotFound(userParam);
  return user;
}

/** {@link authorizeTargetUser} for an authenticated request: the caller and the user come from it. */
export function targetUserOf(directory: GraphUserDirectory, req: Request, res: Response, access: 'read' | 'write'): GraphUser {
  return authorizeTargetUser(directory, callerOf(res), userIdParam(req), access);
}

function userNotFound(id: string): GraphEmulatorError {
  return new GraphEmulatorError(
    404,
    'Request_ResourceNotFound',
    `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`,
  );
}
