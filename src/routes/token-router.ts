import { Router, type Request, type RequestHandler } from 'express';

import { callerOf } from '../auth/authenticate';
import type { AcsTokenScope } from '../config/config';
import { BadRequestError } from '../errors/app-errors';
import { routeWithoutHead } from '../http/routes-without-head';
import type { IdentityService } from '../services/identity-service';
import { parseTokenOptions } from './token-options';

export const TEAMS_TOKEN_HEADER = 'teams-user-aad-token';

function teamsTokenOf(req: Request): string {
  const header = req.headers[TEAMS_TOKEN_HEADER];
  const body: unknown = req.body;
  const fromBody = typeof body === 'object' && body !== null && 'teamsUserAadToken' in body ? body.teamsUserAadToken : undefined;
  if (fromBody !== undefined && typeof fromBody !== 'string') throw new BadRequestError("'teamsUserAadToken' must be a string.");
  const token = (typeof fromBody === 'string' ? fromBody : typeof header === 'string' ? header : '').trim();
  if (token === '') {
    throw new BadRequestError(
      `A Teams user's Entra ID token is required, in the '${TEAMS_TOKEN_HEADER}' header or as 'teamsUserAadToken' in a JSON body.`,
    );
  }
  return token;
}

/**
 * `/api/token`: ACS access tokens for the caller's identity. 201 on issue, as the original sample
 * answered, so its clients keep working.
 */
export function createTokenRouter(
  identities: IdentityService,
  tokenDefaults: { readonly scopes: readonly AcsTokenScope[]; readonly expiresInMinutes: number | undefined },
): Router {
  const issueToken: RequestHandler = async (req, res) => {
    const options = parseTokenOptions(req.query, tokenDefaults);
    const issued = await identities.issueToken(callerOf(req), options);
    res.status(201).json({ token: issued.token, expiresOn: issued.expiresOn, user: { communicationUserId: issued.acsUserId } });
  };

  const issueTokenCreatingIdentity: RequestHandler = async (req, res) => {
    const options = parseTokenOptions(req.query, tokenDefaults);
    const issued = await identities.issueTokenCreatingIdentity(callerOf(req), options);
    res.status(201).json({ token: issued.token, expiresOn: issued.expiresOn, user: { communicationUserId: issued.acsUserId } });
  };

  const revokeTokens: RequestHandler = async (req, res) => {
    await identities.revokeTokens(callerOf(req));
    res.status(204).end();
  };

  const exchangeTeamsToken: RequestHandler = async (req, res) => {
    const issued = await identities.exchangeTeamsToken(callerOf(req), teamsTokenOf(req));
    res.status(201).json({ token: issued.token, expiresOn: issued.expiresOn });
  };

  const router = Router();
  routeWithoutHead(router, '/', { get: issueToken, post: issueTokenCreatingIdentity, delete: revokeTokens });
  routeWithoutHead(router, '/teams', { get: exchangeTeamsToken, post: exchangeTeamsToken });
  return router;
}
