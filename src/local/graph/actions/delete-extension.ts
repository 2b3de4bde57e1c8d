import type { RequestHandler } from 'express';
import type { GraphEmulatorState } from '../graph-state';
import { extensionIdParam } from '../route-params';
import { targetUserOf } from '../target-user';

/** `DELETE …/extensions/{id}`: removes the extension (204), or 404 `ResourceNotFound` when it is not there. */
export function deleteExtensionAction(state: GraphEmulatorState): RequestHandler {
  return (req, res) => {
    const user = targetUserOf(state.directory, req, res, 'write');
    state.store.delete(user.id, extensionIdParam(req));
    res.status(204).end();
  };
}
