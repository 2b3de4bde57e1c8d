import type { RequestHandler } from 'express';
import type { GraphEmulatorState } from '../graph-state';
import { extensionIdParam } from '../route-params';
import { targetUserOf } from '../target-user';

/**
 * `PATCH …/extensions/{id}`: the body replaces the extension's whole property set (properties left
 * out are deleted), so a client that sends only the property it changed loses the others, and tests
 * can see it happen.
 */
export function updateExtensionAction(state: GraphEmulatorState): RequestHandler {
  return (req, res) => {
    const user = targetUserOf(state.directory, req, res, 'write');
    state.store.replace(user.id, extensionIdParam(req), req.body);
    res.status(204).end();
  };
}
