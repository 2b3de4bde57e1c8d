import type { Caller } from '../auth/caller';
import type { Logger } from '../observability/logger';
import { mappingKey, type MappingCache } from './mapping-cache';
import type { MappingSealer } from './mapping-seal';
import type { AcsIdentities, IssuedToken, MappingStore, MappingTarget } from './ports';
import type { UserWriteQueue } from './user-write-queue';

/**
 * What the identity service's flows share: its upstream ports and its per-process state. The flows
 * (mapping-trust.ts, identity-lookup.ts, identity-creation.ts, identity-removal.ts, token-issue.ts)
 * are plain functions of this context rather than closures inside one factory, so that each can be
 * read, and kept short, on its own. identity-service.ts builds the one context per service.
 */
export interface IdentityContext {
  readonly mappings: MappingStore;
  readonly acs: AcsIdentities;
  readonly logger: Logger;
  /** Remembered mappings for the token operations; only verified ids are ever put in it. */
  readonly cache: MappingCache;
  /** Seals the mappings the service writes and verifies every mapping it reads. */
  readonly sealer: MappingSealer;
  /** Each user's mapping writes, one after another in this process. */
  readonly writes: UserWriteQueue;
  /** One in-flight create per user and mode in this process (identity-creation.ts `singleFlight`). */
  readonly creating: Map<string, Promise<CreateOutcome>>;
}

/** A user's identity, and whether this request created it. */
export interface EnsuredIdentity {
  readonly acsUserId: string;
  readonly created: boolean;
}

/** A create's result; `token` is set when the identity was made together with its first token. */
export interface CreateOutcome extends EnsuredIdentity {
  readonly token?: IssuedToken;
}

/** The cache and write-queue key of the caller. */
export function keyOf(caller: Caller): string {
  return mappingKey(caller.tid, caller.oid);
}

/** The caller's own mapping, as the store reaches it (Graph: `/me` with an On-Behalf-Of token). */
export function signedInUserTarget(ctx: Pick<IdentityContext, 'mappings'>, caller: Caller): Promise<MappingTarget> {
  return ctx.mappings.targetOfCaller(caller);
}
