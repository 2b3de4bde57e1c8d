import type { Request, Response } from 'express';
import { ACS_ERRORS, sendAcsError, type AcsErrorSpec } from './acs-errors';
import type { AcsResource } from './acs-resource';
import { parseIdentityId } from './identity-registry';

/**
 * Resolve the `{id}` path segment to an alive identity of this resource, or answer the error the
 * service gives (malformed, another resource's, unknown or deleted). Shared by the issue, revoke and
 * delete actions so all three refuse an identity the same way.
 */
export function resolveIdentity(resource: AcsResource, req: Request, res: Response): string | undefined {
  const param = req.params['id'];
  const id = typeof param === 'string' ? param : '';
  const parsed = parseIdentityId(id);
  let error: AcsErrorSpec | undefined;
  if (parsed.kind === 'malformed') error = ACS_ERRORS.invalidIdentity;
  else if (parsed.resourceId !== resource.resourceId) error = ACS_ERRORS.identityNotOwned;
  else if (resource.registry.findAlive(id) === undefined) error = ACS_ERRORS.identityNotFound;
  if (error === undefined) return id;
  sendAcsError(res, error);
  return undefined;
}
