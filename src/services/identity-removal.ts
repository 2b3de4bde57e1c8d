import type { Caller } from '../auth/caller';
import { MappingChangedError, MappingUntrustedError } from '../errors/app-errors';
import { keyOf, signedInUserTarget, type IdentityContext } from './identity-context';
import { mappingKey } from './mapping-cache';
import { inspect, reportUntrusted, stillNames, stillUntrusted, type UntrustedMapping } from './mapping-trust';
import type { MappingTarget } from './ports';

/**
 * What an untrusted mapping is met by when deleting: removed on its own (the user's own delete; the
 * identity it names may be somebody else's), or refused (an admin erasure: one that cannot say which
 * identity is the user's must not answer "done").
 */
export type OnUntrustedRemoval = 'remove' | 'refuse';

/** `DELETE /api/user`: delete the caller's identity and mapping; idempotent and safe to retry. */
export async function deleteCallersIdentity(ctx: IdentityContext, caller: Caller): Promise<void> {
  // Dropped before, so this instance stops handing out the identity while it is deleted, and again
  // after, as a lookup that read Graph before the removal may have cached it meanwhile.
  ctx.cache.delete(keyOf(caller));
  const target = await signedInUserTarget(ctx, caller);
  const removed = await ctx.writes.oneWriterAtATime(keyOf(caller), () => removeIdentityAndMapping(ctx, target, 'remove'));
  ctx.cache.delete(keyOf(caller));
  if (removed !== undefined) ctx.logger.info({ oid: caller.oid, acsUserId: removed }, 'deleted the ACS identity and its mapping');
}

/** Admin erasure of another user (of the admin's tenant); the Graph store uses the app's own access. */
export async function eraseUsersIdentity(ctx: IdentityContext, admin: Caller, userObjectId: string): Promise<void> {
  const target = await ctx.mappings.targetOfUser(admin.tid, userObjectId);
  const key = mappingKey(admin.tid, userObjectId);
  // Before and after, as in deleteCallersIdentity.
  ctx.cache.delete(key);
  const removed = await ctx.writes.oneWriterAtATime(key, () => removeIdentityAndMapping(ctx, target, 'refuse'));
  ctx.cache.delete(key);
  ctx.logger.info(
    { adminOid: admin.oid, targetOid: userObjectId, acsUserId: removed ?? null },
    removed === undefined ? 'admin erasure: the user had no identity mapping' : 'admin erasure: deleted the ACS identity and its mapping',
  );
}

/** Delete the user's identity and mapping; returns the identity deleted, undefined when none was. */
async function removeIdentityAndMapping(
  ctx: IdentityContext,
  target: MappingTarget,
  onUntrusted: OnUntrustedRemoval,
): Promise<string | undefined> {
  const found = await inspect(ctx, target);
  if (found.state === 'none') return undefined;
  if (found.state === 'untrusted') {
    if (onUntrusted === 'refuse') {
      reportUntrusted(ctx, target, found, 'refused');
      throw new MappingUntrustedError(erasureRefusal(found));
    }
    reportUntrusted(ctx, target, found, 'removed');
    // 'kept': a trusted mapping replaced it meanwhile (the user's own POST /api/user, on any instance);
    // answering "done" would hide that the user now has an identity.
    if ((await ctx.mappings.remove(target, stillUntrusted(ctx, target))) === 'kept') throw mappingChanged(ctx, target.oid, undefined);
    return undefined;
  }
  // Identity first: if the mapping removal then fails, a retry finds the mapping, re-deletes the
  // (already gone) identity and tries again. The other order could strand a live identity.
  await ctx.acs.deleteIdentity(found.acsUserId);
  // 'kept': another mapping was written meanwhile (another instance's create, or one put back by hand):
  // the identity is gone, but the user is not erased. Say so rather than answer "done".
  if ((await ctx.mappings.remove(target, stillNames(found.acsUserId))) === 'kept') throw mappingChanged(ctx, target.oid, found.acsUserId);
  return found.acsUserId;
}

/** Logs that the mapping changed under a delete (and which identity, if any, was deleted) and makes the 409. */
function mappingChanged(ctx: IdentityContext, oid: string, deletedAcsUserId: string | undefined): MappingChangedError {
  ctx.logger.warn(
    { oid, acsUserId: deletedAcsUserId ?? null },
    'the identity mapping changed while it was being deleted; the new mapping was kept',
  );
  return new MappingChangedError(deletedAcsUserId !== undefined);
}

/**
 * What an admin erasing a user with an untrusted mapping is told: the admin may see which identity
 * it names and why it is not trusted (the user may not: that could help them probe).
 */
function erasureRefusal(found: UntrustedMapping): string {
  const names = found.storedAcsUserId === undefined ? 'names no valid identity' : `names ${found.storedAcsUserId}`;
  return (
    `The user's identity mapping is not trusted (${found.reason}): nothing was deleted and the mapping was left in place. ` +
    `It ${names}, which may be another user's identity. Check with 'npm run mappings -- audit', then delete the identity and the mapping by hand (docs/troubleshooting.md).`
  );
}
