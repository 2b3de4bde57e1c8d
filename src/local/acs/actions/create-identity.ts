import type { RequestHandler } from 'express';
import { sendAcsError } from '../acs-errors';
import { mintIdentityToken, type AcsResource } from '../acs-resource';
import { withinLimit } from '../middleware/operation-limits';
import { jsonBodyOf } from '../request-body';
import { validateCreateRequest } from '../request-validation';

/**
 * `POST /identities` (createUser, and createUserAndToken when the body has `createTokenWithScopes`):
 * a new communication user of this resource, with an access token when one was asked for.
 */
export function createIdentityAction(resource: AcsResource): RequestHandler {
  return async (req, res) => {
    const body = jsonBodyOf(req);
    // createUserAndToken has its own documented limit, separate from plain createUser, so the limit is
    // only known once the body is read.
    const wantsToken = body.ok && typeof body.value === 'object' && body.value !== null && 'createTokenWithScopes' in body.value;
    if (!withinLimit(resource.limiter, res, wantsToken ? 'identities.createWithToken' : 'identities.create')) return;
    if (!body.ok) return sendAcsError(res, body.error);
    const request = validateCreateRequest(body.value);
    if (!request.ok) return sendAcsError(res, request.error);
    const identity = resource.registry.create();
    if (request.value.scopes === undefined) {
      res.status(201).json({ identity: { id: identity.id } });
      return;
    }
    const accessToken = await mintIdentityToken(resource, identity.id, request.value.scopes, request.value.expiresInMinutes);
    res.status(201).json({ identity: { id: identity.id }, accessToken });
  };
}
