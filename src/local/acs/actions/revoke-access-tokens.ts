import type { RequestHandler } from 'express';
import type { AcsResource } from '../acs-resource';
import { resolveIdentity } from '../identity-resolution';

/**
 * `POST /identities/{id}/:revokeAccessTokens`: every token issued so far for the identity stops
 * standing; tokens issued afterwards are good. Instant here (the live service may take minutes), so
 * tests see the end state without waiting.
 */
export function revokeAccessTokensAction(resource: AcsResource): RequestHandler {
  return (req, res) => {
    const id = resolveIdentity(resource, req, res);
    if (id === undefined) return;
    resource.registry.revokeTokens(id);
    res.status(204).end();
  };
}
