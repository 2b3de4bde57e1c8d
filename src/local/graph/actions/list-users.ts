import type { RequestHandler } from 'express';
import type { GraphEmulatorState } from '../graph-state';
import { callerOf } from '../middleware/authenticate-caller';
import { sendODataJson } from '../odata-response';

/**
 * `GET /v1.0/users`: one page of the tenant's users, for an admin tool with an app-only token. Paging,
 * permissions and query checks are the listing's (`UserListing`); this only answers with it.
 */
export function listUsersAction(state: GraphEmulatorState): RequestHandler {
  return (req, res) => {
    sendODataJson(res, 200, state.listing.page(req, callerOf(res), state.baseUrl));
  };
}
