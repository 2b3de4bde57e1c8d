import type { Caller } from '../auth/caller';
import { IdentityNotFoundError } from '../errors/app-errors';
import { keyOf, signedInUserTarget, type IdentityContext } from './identity-context';
import { getOrCreateIdentity } from './identity-creation';
import { tryWithCachedAcsIdentity, withVerifiedAcsIdentity } from './identity-lookup';
import type { IssuedToken, TokenRequest } from './ports';

/**
 * A token for the caller's identity, and whether that identity was created for it: the answer of
 * `POST /api/token`, which gets or creates the identity and issues its token in as few upstream
 * calls as possible (see {@link issueTokenCreatingIdentity}).
 */
export interface TokenCreatingIdentity extends IssuedToken {
  readonly acsUserId: string;
  readonly created: boolean;
}

/**
 * The cached identity needs ACS alone; otherwise one On-Behalf-Of token serves the Graph read and
 * write, and a new identity is made together with its first token (one ACS call).
 */
export async function issueTokenCreatingIdentity(
  ctx: IdentityContext,
  caller: Caller,
  request: TokenRequest,
): Promise<TokenCreatingIdentity> {
  const cached = await tryWithCachedAcsIdentity(ctx, caller, (id) => ctx.acs.issueToken(id, request));
  if (cached) return { ...cached.value, acsUserId: cached.acsUserId, created: false };
  const target = await signedInUserTarget(ctx, caller);
  for (let attempt = 0; ; attempt += 1) {
    // Get-or-create never replaces an untrusted mapping: that loses an identity, which only POST /api/user may ask for.
    const ensured = await getOrCreateIdentity(ctx, caller, target, request, 'refuse');
    ctx.cache.set(keyOf(caller), ensured.acsUserId);
    // The same record as POST /api/user writes: which identity belongs to whom, for erasure and audit.
    if (ensured.created) ctx.logger.info({ oid: caller.oid, acsUserId: ensured.acsUserId }, 'created and mapped an ACS identity');
    if (ensured.token) return { ...ensured.token, acsUserId: ensured.acsUserId, created: ensured.created };
    try {
      const token = await withVerifiedAcsIdentity(ctx, caller, target, ensured.acsUserId, (id) => ctx.acs.issueToken(id, request));
      return { ...token, acsUserId: ensured.acsUserId, created: ensured.created };
    } catch (error) {
      // A stale mapping was just removed: create a fresh identity, once.
      if (!(error instanceof IdentityNotFoundError) || attempt > 0) throw error;
    }
  }
}
