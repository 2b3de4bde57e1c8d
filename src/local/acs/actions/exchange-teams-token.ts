import type { RequestHandler } from 'express';
import { sendAcsError } from '../acs-errors';
import type { AcsResource } from '../acs-resource';
import { formatExpiresOn } from '../acs-token-issuer';
import { jsonBodyOf } from '../request-body';
import { validateTeamsExchangeRequest } from '../request-validation';
import type { TeamsTokenVerifier } from '../teams-token-verifier';

/** Teams users get the two scopes a Teams client needs; the exchange takes no scope list. */
const TEAMS_SCOPES = ['chat', 'voip'] as const;

/**
 * `POST /teamsUser/:exchangeAccessToken`: an ACS token for a Teams user, in exchange for that user's
 * Entra token (checked by `verifyTeamsToken` against the Entra emulator's keys). Teams users are not
 * identities of the resource, so the token is not recorded: `verifyAccessToken` judges it by signature
 * and expiry alone.
 */
export function exchangeTeamsTokenAction(resource: AcsResource, verifyTeamsToken: TeamsTokenVerifier): RequestHandler {
  return async (req, res) => {
    const body = jsonBodyOf(req);
    if (!body.ok) return sendAcsError(res, body.error);
    const request = validateTeamsExchangeRequest(body.value);
    if (!request.ok) return sendAcsError(res, request.error);
    const verdict = await verifyTeamsToken(request.value.token, request.value.appId, request.value.userId);
    if (!verdict.ok) return sendAcsError(res, verdict.error);
    // Teams users are `8:orgid:{oid}` in ACS; the token lives exactly as long as the Entra token.
    const expiresAt = verdict.expiresAtSeconds * 1000;
    const issued = await resource.issuer.issue(`orgid:${verdict.oid}`, TEAMS_SCOPES, Date.now(), expiresAt);
    res.status(200).json({ token: issued.token, expiresOn: formatExpiresOn(expiresAt) });
  };
}
