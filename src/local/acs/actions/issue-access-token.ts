import type { RequestHandler } from 'express';
import { sendAcsError } from '../acs-errors';
import { mintIdentityToken, type AcsResource } from '../acs-resource';
import { resolveIdentity } from '../identity-resolution';
import { jsonBodyOf } from '../request-body';
import { validateIssueRequest } from '../request-validation';

/**
 * `POST /identities/{id}/:issueAccessToken`: a new token for an alive identity. The body is checked
 * before the identity (the order docs/local-development.md documents), so a request wrong on both
 * counts always gets the same answer.
 */
export function issueAccessTokenAction(resource: AcsResource): RequestHandler {
  return async (req, res) => {
    const body = jsonBodyOf(req);
    if (!body.ok) return sendAcsError(res, body.error);
    const request = validateIssueRequest(body.value);
    if (!request.ok) return sendAcsError(res, request.error);
    const id = resolveIdentity(resource, req, res);
    if (id === undefined) return;
    res.status(200).json(await mintIdentityToken(resource, id, request.value.scopes, request.value.expiresInMinutes));
  };
}
