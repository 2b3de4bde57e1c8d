import type { Caller } from '../auth/caller';
import { MappingChangedError } from '../errors/app-errors';
import { summarizeError } from '../observability/redact';
import { keyOf, signedInUserTarget, type CreateOutcome, type EnsuredIdentity, type IdentityContext } from './identity-context';
import { inspect, reportUntrusted, stillUntrusted, trustedIdOrRefuse } from './mapping-trust';
import type { IssuedToken, MappingTarget, TokenRequest } from './ports';

/**
 * Get-or-create of a user's ACS identity and its mapping, keeping the invariant of identity-service.ts:
 * the identity is made first and the mapping written second, and whoever loses the mapping write
 * deletes what it made, so no identity is left without a mapping.
 *
 * What a create does with an untrusted mapping it finds: refuse it (409 `mapping_untrusted`; every
 * get-or-create), or remove it first so the user gets a new identity of their own (`POST /api/user`,
 * the user's explicit request: it loses the old identity's data).
 */
export type OnUntrustedMapping = 'refuse' | 'replace';

/** `POST /api/user`: the caller's identity, created (replacing an untrusted mapping) when needed. */
export async function ensureCallersIdentity(ctx: IdentityContext, caller: Caller): Promise<EnsuredIdentity> {
  const target = await signedInUserTarget(ctx, caller);
  const { acsUserId, created } = await getOrCreateIdentity(ctx, caller, target, undefined, 'replace');
  ctx.cache.set(keyOf(caller), acsUserId);
  if (created) ctx.logger.info({ oid: caller.oid, acsUserId }, 'created and mapped an ACS identity');
  return { acsUserId, created };
}

/**
 * The user's identity, created and mapped when there is none; with its first token when `request` is
 * given and the identity is new. Shares a create already in flight for the user, else waits its turn
 * in the user's write queue.
 */
export function getOrCreateIdentity(
  ctx: IdentityContext,
  caller: Caller,
  target: MappingTarget,
  request: TokenRequest | undefined,
  onUntrusted: OnUntrustedMapping,
): Promise<CreateOutcome> {
  return singleFlight(ctx, caller, onUntrusted, () =>
    ctx.writes.oneWriterAtATime(keyOf(caller), () => createAndMapRetrying(ctx, target, request, onUntrusted)),
  );
}

/**
 * A create that lost the mapping write to another request, then found that mapping already gone (a
 * delete on another instance came in between), starts over: the user asked for an identity, and there
 * is no reason left not to make one. Bounded: a user whose mapping keeps flipping gets a 409.
 */
const MAX_CREATE_ROUNDS = 3;

async function createAndMapRetrying(
  ctx: IdentityContext,
  target: MappingTarget,
  request: TokenRequest | undefined,
  onUntrusted: OnUntrustedMapping,
): Promise<CreateOutcome> {
  for (let round = 0; round < MAX_CREATE_ROUNDS; round += 1) {
    const outcome = await createAndMap(ctx, target, request, onUntrusted);
    if (outcome !== 'winner_vanished') return outcome;
    ctx.logger.info({ oid: target.oid, round }, 'the mapping that won the create race was deleted meanwhile; creating again');
  }
  throw new MappingChangedError(false, 'create');
}

/**
 * Concurrent creates of one user share one outcome, per mode: a get-or-create must not answer for a
 * replacing create, nor the reverse. Those who join are told `created: false` (and get no token): the
 * identity is new only to the one who made it.
 */
function singleFlight(
  ctx: Pick<IdentityContext, 'creating'>,
  caller: Caller,
  mode: OnUntrustedMapping,
  work: () => Promise<CreateOutcome>,
): Promise<CreateOutcome> {
  const key = `${keyOf(caller)} ${mode}`;
  const inFlight = ctx.creating.get(key);
  if (inFlight) return inFlight.then(({ acsUserId }) => ({ acsUserId, created: false }));
  const promise = work().finally(() => ctx.creating.delete(key));
  ctx.creating.set(key, promise);
  return promise;
}

/**
 * Make the identity and map it. Graph refuses a second extension with the same name, which makes the
 * mapping write the arbiter between instances; whoever loses deletes what it made. An untrusted
 * mapping is refused, or (`replace`) removed first.
 */
async function createAndMap(
  ctx: IdentityContext,
  target: MappingTarget,
  request: TokenRequest | undefined,
  onUntrusted: OnUntrustedMapping,
): Promise<CreateOutcome | 'winner_vanished'> {
  const existing = await inspect(ctx, target);
  if (existing.state === 'untrusted' && onUntrusted === 'replace') {
    reportUntrusted(ctx, target, existing, 'replaced');
    // Kept if it became trusted meanwhile (another instance's replacement won): the create below then loses and adopts it.
    await ctx.mappings.remove(target, stillUntrusted(ctx, target));
  } else {
    const acsUserId = trustedIdOrRefuse(ctx, target, existing);
    if (acsUserId !== undefined) return { acsUserId, created: false };
  }

  const made = await makeIdentity(ctx, request);
  const ours: CreateOutcome = { ...made, created: true };
  let outcome: 'created' | 'exists';
  try {
    outcome = await ctx.mappings.create(target, { acsUserId: made.acsUserId, seal: ctx.sealer.seal(target, made.acsUserId) });
  } catch (writeError) {
    return recoverFromFailedWrite(ctx, target, ours, writeError);
  }
  if (outcome === 'created') return ours;

  await discardUnmappedIdentity(ctx, made.acsUserId, 'another request mapped the user first');
  const winner = trustedIdOrRefuse(ctx, target, await inspect(ctx, target));
  return winner === undefined ? 'winner_vanished' : { acsUserId: winner, created: false };
}

/**
 * The mapping write of `ours` failed, but may have landed even so (a timeout, a lost answer): look
 * before discarding the identity, and adopt a trusted mapping another request wrote meanwhile.
 */
async function recoverFromFailedWrite(
  ctx: IdentityContext,
  target: MappingTarget,
  ours: CreateOutcome,
  writeError: unknown,
): Promise<CreateOutcome> {
  const current = await inspect(ctx, target).catch(() => undefined);
  if (current?.state === 'trusted' && current.acsUserId === ours.acsUserId) return ours;
  await discardUnmappedIdentity(ctx, ours.acsUserId, 'the mapping write failed');
  if (current?.state === 'trusted') return { acsUserId: current.acsUserId, created: false };
  throw writeError;
}

/** Make an ACS identity, with its first token when one is wanted (one ACS call either way). */
async function makeIdentity(
  ctx: Pick<IdentityContext, 'acs'>,
  request: TokenRequest | undefined,
): Promise<{ acsUserId: string; token?: IssuedToken }> {
  if (!request) return { acsUserId: await ctx.acs.createIdentity() };
  const made = await ctx.acs.createIdentityWithToken(request);
  return { acsUserId: made.acsUserId, token: { token: made.token, expiresOn: made.expiresOn } };
}

/** Delete an identity this process made but could not map. Failure here is the one way to orphan one: log it loudly. */
async function discardUnmappedIdentity(ctx: Pick<IdentityContext, 'acs' | 'logger'>, acsUserId: string, reason: string): Promise<void> {
  try {
    await ctx.acs.deleteIdentity(acsUserId);
    ctx.logger.info({ acsUserId, reason }, 'deleted an ACS identity that lost the mapping race');
  } catch (error) {
    ctx.logger.error(
      { acsUserId, reason, err: summarizeError(error) },
      'ORPHANED ACS identity: could not delete an identity that has no mapping; delete it by hand',
    );
    throw error;
  }
}
