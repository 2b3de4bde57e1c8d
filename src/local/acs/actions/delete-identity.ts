import type { RequestHandler } from 'express';
import type { AcsResource } from '../acs-resource';
import { resolveIdentity } from '../identity-resolution';

/**
 * `DELETE /identities/{id}`: the identity and all its tokens die. It stays listed as deleted, so a
 * test can tell "deleted" from "never existed", and a second delete is a 404 like any unknown id.
 */
export function deleteIdentityAction(resource: AcsResource): RequestHandler {
  return (req, res) => {
    const id = resolveIdentity(resource, req, res);
    if (id === undefined) return;
    resource.registry.delete(id);
    res.status(204).end();
  };
}
