import type { Caller } from '../auth/caller';
import { IdentityNotFoundError, IdentityNotOwnedError } from '../errors/app-errors';
import { summarizeError } from '../observability/redact';
import { keyOf, signedInUserTarget, type IdentityContext } from './identity-context';
import { inspect, stillNames, trustedIdOrRefuse } from './mapping-trust';
import type { MappingTarget } from './ports';

/**
 * An ACS operation on one identity (issue a token, revoke tokens). This module finds the identity to
 * run it on: the cached id when there is one (the hot path: no On-Behalf-Of, no Graph), else the id of
 * the verified mapping Graph holds; and it repairs a mapping whose identity ACS no longer has, so the
 * user can start over instead of meeting the same 404 forever.
 */
export type AcsOperation<T> = (acsUserId: string) => Promise<T>;

/** An operation's result and the identity it ran on. */
export interface OnIdentity<T> {
  readonly value: T;
  readonly acsUserId: string;
}

/**
 * Run the operation on the cached identity, if there is one. Resolves undefined when there is no
 * usable entry (none, or ACS says the identity is gone or another resource's: then it is dropped and
 * the caller falls back to reading Graph, which also heals the mapping). A foreign id may have been
 * unmapped with Graph directly (the documented fix after switching resources), so only Graph can say
 * whether it still stands.
 */
export async function tryWithCachedAcsIdentity<T>(
  ctx: Pick<IdentityContext, 'cache'>,
  caller: Caller,
  operation: AcsOperation<T>,
): Promise<OnIdentity<T> | undefined> {
  const acsUserId = ctx.cache.get(keyOf(caller));
  if (acsUserId === undefined) return undefined;
  try {
    return { value: await operation(acsUserId), acsUserId };
  } catch (error) {
    if (!(error instanceof IdentityNotFoundError || error instanceof IdentityNotOwnedError)) throw error;
    ctx.cache.delete(keyOf(caller));
    return undefined;
  }
}

/**
 * Read the caller's mapping from Graph (the source of truth) and refresh the cache with it. Only a
 * verified id is cached; an untrusted mapping drops the entry and is refused.
 */
export async function readVerifiedMapping(ctx: IdentityContext, caller: Caller, target: MappingTarget): Promise<string | undefined> {
  const found = await inspect(ctx, target);
  if (found.state !== 'trusted') ctx.cache.delete(keyOf(caller));
  const acsUserId = trustedIdOrRefuse(ctx, target, found);
  if (acsUserId !== undefined) ctx.cache.set(keyOf(caller), acsUserId);
  return acsUserId;
}

/** The mapping points to an identity ACS no longer has: drop the mapping so the user can start over. */
async function healStaleMapping(ctx: IdentityContext, caller: Caller, target: MappingTarget, acsUserId: string): Promise<void> {
  ctx.logger.warn({ oid: caller.oid, acsUserId }, 'stale identity mapping: the ACS identity no longer exists; removing the mapping');
  ctx.cache.delete(keyOf(caller));
  try {
    await ctx.writes.oneWriterAtATime(keyOf(caller), () => ctx.mappings.remove(target, stillNames(acsUserId)));
  } catch (error) {
    // The caller gets ACS's 404 either way; the next request finds the stale mapping and tries again.
    ctx.logger.warn(
      { oid: caller.oid, err: summarizeError(error) },
      'could not remove a stale identity mapping; it will be retried on the next request',
    );
  }
}

/**
 * Run the operation on the identity of a verified mapping; when ACS says that identity is gone, heal
 * the mapping and rethrow.
 */
export async function withVerifiedAcsIdentity<T>(
  ctx: IdentityContext,
  caller: Caller,
  target: MappingTarget,
  acsUserId: string,
  operation: AcsOperation<T>,
): Promise<T> {
  try {
    return await operation(acsUserId);
  } catch (error) {
    if (error instanceof IdentityNotFoundError) await healStaleMapping(ctx, caller, target, acsUserId);
    throw error;
  }
}

/** Run the operation on the caller's identity: the cached one, else the one Graph maps; 404 when there is none. */
export async function withCallersAcsIdentity<T>(ctx: IdentityContext, caller: Caller, operation: AcsOperation<T>): Promise<OnIdentity<T>> {
  const cached = await tryWithCachedAcsIdentity(ctx, caller, operation);
  if (cached) return cached;
  const target = await signedInUserTarget(ctx, caller);
  const acsUserId = await readVerifiedMapping(ctx, caller, target);
  if (acsUserId === undefined) throw new IdentityNotFoundError();
  return { value: await withVerifiedAcsIdentity(ctx, caller, target, acsUserId, operation), acsUserId };
}
