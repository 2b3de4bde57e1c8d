import express, { type Express } from 'express';
import type { SigningKeySet } from '../entra/signing-keys';
import type { EmulatorKit } from '../kit/faults';
import { createExtensionAction } from './actions/create-extension';
import { deleteExtensionAction } from './actions/delete-extension';
import { getUserAction } from './actions/get-user';
import { listUsersAction } from './actions/list-users';
import { getExtensionAction, listExtensionsAction } from './actions/read-extensions';
import { updateExtensionAction } from './actions/update-extension';
import type { GraphEmulatorState } from './graph-state';
import { throttlePerApp } from './middleware/app-throttle';
import { authenticateCaller } from './middleware/authenticate-caller';
import { graphErrorHandler } from './middleware/error-handler';
import type { RequestIdAssignment } from './middleware/request-ids';

/** What the Graph routes are built from. */
export interface GraphAppParts {
  readonly state: GraphEmulatorState;
  /** Counters and faults; every route is named through `kit.step`. */
  readonly kit: EmulatorKit;
  readonly requestIds: RequestIdAssignment;
  /** The Entra emulator's signing keys, which Graph tokens must be signed with. */
  readonly keys: SigningKeySet;
}

/** JSON bodies up to 64 KiB (413 beyond); only the two writes that carry a body parse one. */
const parseJson = express.json({ limit: '64kb' });

/**
 * The Graph routes in one table, each in the order the emulator checks a request: count and fault,
 * authenticate, throttle, JSON body, then the action. Keeping the order visible in one place is the
 * point: it decides which error a bad request gets.
 */
export function createGraphApp({ state, kit, requestIds, keys }: GraphAppParts): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestIds.assign);

  const guarded = [authenticateCaller(keys, state.tenantId), throttlePerApp(state.throttle, kit)];
  app.get('/v1.0/users', kit.step('users.list'), ...guarded, listUsersAction(state));
  // The signed-in user and any user by id or UPN answer the same routes.
  for (const prefix of ['/v1.0/me', '/v1.0/users/:userId']) {
    app.get(prefix, kit.step('user.get'), ...guarded, getUserAction(state));
    app.get(`${prefix}/extensions`, kit.step('extensions.list'), ...guarded, listExtensionsAction(state));
    app.post(`${prefix}/extensions`, kit.step('extensions.create'), ...guarded, parseJson, createExtensionAction(state));
    app.get(`${prefix}/extensions/:extensionId`, kit.step('extensions.get'), ...guarded, getExtensionAction(state));
    app.patch(`${prefix}/extensions/:extensionId`, kit.step('extensions.update'), ...guarded, parseJson, updateExtensionAction(state));
    app.delete(`${prefix}/extensions/:extensionId`, kit.step('extensions.delete'), ...guarded, deleteExtensionAction(state));
  }
  app.use(kit.unmatched);
  app.use(graphErrorHandler(kit));
  return app;
}
