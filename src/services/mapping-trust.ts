import { MappingUntrustedError } from '../errors/app-errors';
import type { IdentityContext } from './identity-context';
import type { UntrustedReason } from './mapping-seal';
import type { MappingTarget, StoredMapping } from './ports';

/**
 * A user's stored mapping after its seal was checked. The mapping is user-writable (a Graph open
 * extension), so this module is the one place a stored mapping becomes trusted: every flow reads
 * through {@link inspect}, and only the `trusted` state carries an id that may reach ACS or the cache.
 */
export type MappingState = { readonly state: 'none' } | { readonly state: 'trusted'; readonly acsUserId: string } | UntrustedMapping;

/** A mapping whose seal does not verify: why, and the id it names (for logs and an admin, never for ACS). */
export interface UntrustedMapping {
  readonly state: 'untrusted';
  readonly reason: UntrustedReason;
  readonly storedAcsUserId: string | undefined;
}

/** What an untrusted mapping is met by: refused, replaced by a new identity, or removed (alone). */
export type UntrustedAction = 'refused' | 'replaced' | 'removed';

const UNTRUSTED_LOG: Readonly<Record<UntrustedAction, string>> = {
  refused: 'untrusted identity mapping: refused; the identity it names is not used',
  replaced: 'untrusted identity mapping: replacing it with a new identity; the identity it named is left alone',
  removed: 'untrusted identity mapping: removing the mapping only; the identity it names is left alone',
};

/** Read the stored mapping and check its seal. */
export async function inspect(ctx: Pick<IdentityContext, 'mappings' | 'sealer'>, target: MappingTarget): Promise<MappingState> {
  const stored = await ctx.mappings.read(target);
  if (stored === undefined) return { state: 'none' };
  const verdict = ctx.sealer.verify(target, stored.acsUserId, stored.seal);
  return verdict.trusted
    ? { state: 'trusted', acsUserId: verdict.acsUserId }
    : { state: 'untrusted', reason: verdict.reason, storedAcsUserId: verdict.acsUserId };
}

/**
 * Removal condition: the mapping, as stored when the removal runs, is still untrusted. One that became
 * trusted meanwhile (another request's replacement) is kept.
 */
export function stillUntrusted(ctx: Pick<IdentityContext, 'sealer'>, target: MappingTarget): (stored: StoredMapping) => boolean {
  return (stored) => !ctx.sealer.verify(target, stored.acsUserId, stored.seal).trusted;
}

/** Removal condition: the mapping, as stored when the removal runs, still names this identity. */
export function stillNames(acsUserId: string): (stored: StoredMapping) => boolean {
  return (stored) => stored.acsUserId === acsUserId;
}

export function reportUntrusted(
  ctx: Pick<IdentityContext, 'logger'>,
  target: MappingTarget,
  found: UntrustedMapping,
  action: UntrustedAction,
): void {
  ctx.logger.warn({ oid: target.oid, reason: found.reason, storedAcsUserId: found.storedAcsUserId ?? null, action }, UNTRUSTED_LOG[action]);
}

/** The trusted id, undefined when there is no mapping; an untrusted one is logged and refused (409 `mapping_untrusted`). */
export function trustedIdOrRefuse(ctx: Pick<IdentityContext, 'logger'>, target: MappingTarget, found: MappingState): string | undefined {
  if (found.state === 'untrusted') {
    reportUntrusted(ctx, target, found, 'refused');
    throw new MappingUntrustedError();
  }
  return found.state === 'trusted' ? found.acsUserId : undefined;
}
