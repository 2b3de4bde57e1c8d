import express, { type Express } from 'express';
import type { EmulatorKit } from '../kit/faults';
import { createIdentityAction } from './actions/create-identity';
import { deleteIdentityAction } from './actions/delete-identity';
import { exchangeTeamsTokenAction } from './actions/exchange-teams-token';
import { issueAccessTokenAction } from './actions/issue-access-token';
import { revokeAccessTokensAction } from './actions/revoke-access-tokens';
import type { AcsResource } from './acs-resource';
import { authenticateAccessKey } from './middleware/access-key-authentication';
import { requireApiVersion } from './middleware/api-version';
import { handleAcsError } from './middleware/error-handler';
import { limitOperation } from './middleware/operation-limits';
import { serviceHeaders } from './middleware/service-headers';
import { rawBodyParser } from './request-body';
import type { AcsOperation } from './rate-limiter';
import type { TeamsTokenVerifier } from './teams-token-verifier';

/** What the ACS routes are built from. */
export interface AcsAppParts {
  readonly resource: AcsResource;
  /** Counters and faults; every route is named through `kit.step`. */
  readonly kit: EmulatorKit;
  /** The resource's access key, base64-decoded: requests are signed with it. */
  readonly macKey: Buffer;
  readonly verifyTeamsToken: TeamsTokenVerifier;
}

/**
 * The ACS Identity routes in one table, each in the order the emulator checks a request: count and
 * fault, HMAC, api-version, rate limit, then the action (which reads the body and the identity).
 * Keeping the order visible in one place is the point: it decides which error a bad request gets.
 */
export function createAcsApp({ resource, kit, macKey, verifyTeamsToken }: AcsAppParts): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(serviceHeaders);
  app.use(rawBodyParser);
  const guard = [authenticateAccessKey(macKey), requireApiVersion];
  const limit = (operation: AcsOperation) => limitOperation(resource.limiter, operation);
  // Create takes its limit inside the action: createUser and createUserAndToken are limited apart.
  app.post('/identities', kit.step('identities.create'), ...guard, createIdentityAction(resource));
  app.delete('/identities/:id', kit.step('identities.delete'), ...guard, limit('identities.delete'), deleteIdentityAction(resource));
  app.post(
    '/identities/:id/\\:issueAccessToken',
    kit.step('identities.issueToken'),
    ...guard,
    limit('identities.issueToken'),
    issueAccessTokenAction(resource),
  );
  app.post(
    '/identities/:id/\\:revokeAccessTokens',
    kit.step('identities.revokeTokens'),
    ...guard,
    limit('identities.revokeTokens'),
    revokeAccessTokensAction(resource),
  );
  app.post(
    '/teamsUser/\\:exchangeAccessToken',
    kit.step('teams.exchange'),
    ...guard,
    limit('teams.exchange'),
    exchangeTeamsTokenAction(resource, verifyTeamsToken),
  );
  app.use(kit.unmatched);
  app.use(handleAcsError);
  return app;
}
