import type { RequestHandler } from 'express';
import type { GraphEmulatorState } from '../graph-state';
import { sendODataJson } from '../odata-response';
import { targetUserOf } from '../target-user';
import { parseUserQuery, userResource, usersContext } from '../user-query';

/**
 * `GET /v1.0/me` and `GET /v1.0/users/{id|upn}`: one user under `$select` and `$expand=extensions`.
 * The query is parsed before the caller is authorised, so a bad query is a 400 whoever asks, the
 * same order the user list uses.
 */
export function getUserAction(state: GraphEmulatorState): RequestHandler {
  return (req, res) => {
    const query = parseUserQuery(req);
    const user = targetUserOf(state.directory, req, res, 'read');
    sendODataJson(res, 200, {
      '@odata.context': `${state.baseUrl}/v1.0/$metadata#${usersContext(query)}/$entity`,
      ...userResource(user, query, state.store),
    });
  };
}
