import type { RequestHandler } from 'express';
import type { GraphEmulatorState } from '../graph-state';
import { callerOf } from '../middleware/authenticate-caller';
import { extensionResource } from '../open-extension-store';
import { extensionEntityContext, sendODataJson } from '../odata-response';
import { targetUserOf } from '../target-user';

/**
 * `POST …/extensions`: a new open extension on the user, owned by the calling app, whose two-per-user
 * limit and the size limit the store enforces. Answers 201 with `@odata.context` and `Location`.
 */
export function createExtensionAction(state: GraphEmulatorState): RequestHandler {
  return (req, res) => {
    const user = targetUserOf(state.directory, req, res, 'write');
    const created = state.store.create(user.id, callerOf(res).appId, req.body);
    res.set('Location', `${state.baseUrl}/v1.0/users/${user.id}/extensions/${encodeURIComponent(created.id)}`);
    sendODataJson(res, 201, { '@odata.context': extensionEntityContext(state.baseUrl, user), ...extensionResource(created) });
  };
}
