import type { RequestHandler } from 'express';
import type { GraphEmulatorState } from '../graph-state';
import { extensionResource } from '../open-extension-store';
import { extensionEntityContext, extensionsContext, sendODataJson } from '../odata-response';
import { extensionIdParam } from '../route-params';
import { targetUserOf } from '../target-user';

/**
 * The two reads of a user's open extensions: the collection and one by id. Both need only read
 * access, which is why they share a module while each write has its own.
 *
 * @packageDocumentation
 */

/** `GET …/extensions`: every extension on the user, in creation order. */
export function listExtensionsAction(state: GraphEmulatorState): RequestHandler {
  return (req, res) => {
    const user = targetUserOf(state.directory, req, res, 'read');
    sendODataJson(res, 200, {
      '@odata.context': extensionsContext(state.baseUrl, user),
      value: state.store.list(user.id).map(extensionResource),
    });
  };
}

/** `GET …/extensions/{id}`: one extension, or 404 `ResourceNotFound`. */
export function getExtensionAction(state: GraphEmulatorState): RequestHandler {
  return (req, res) => {
    const user = targetUserOf(state.directory, req, res, 'read');
    const extension = state.store.get(user.id, extensionIdParam(req));
    sendODataJson(res, 200, { '@odata.context': extensionEntityContext(state.baseUrl, user), ...extensionResource(extension) });
  };
}
