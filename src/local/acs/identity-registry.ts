import { randomUUID } from 'node:crypto';
import { GUID_PATTERN_SOURCE } from '../../validation/formats';

/**
 * The emulator's identities and the tokens it has issued for them. Deleted identities stay listed
 * (with `deletedAt`) so tests can tell "deleted" from "never existed"; ids are never reused.
 */
export interface IdentityRecord {
  readonly id: string;
  readonly createdAt: Date;
  readonly deletedAt?: Date;
  readonly tokensRevokedAt?: Date;
}

export type ParsedIdentityId = { readonly kind: 'acs'; readonly resourceId: string } | { readonly kind: 'malformed' };

interface MutableIdentity {
  readonly id: string;
  readonly createdAt: Date;
  deletedAt?: Date;
  tokensRevokedAt?: Date;
  /** Tokens issued with a sequence number at or below this one are revoked. */
  revokedThroughSequence: number;
}

interface IssuedTokenEntry {
  readonly identityId: string;
  readonly sequence: number;
  readonly expiresAtMs: number;
}

const ACS_USER_ID = new RegExp(`^8:acs:(${GUID_PATTERN_SOURCE})_(${GUID_PATTERN_SOURCE})$`);
/** Past this many remembered tokens, expired ones are forgotten (they fail on `exp` anyway). */
const TOKEN_PRUNE_THRESHOLD = 10_000;

/** Classify an identity id: a communication user of some resource, or not an id this API accepts. */
export function parseIdentityId(id: string): ParsedIdentityId {
  const resourceId = ACS_USER_ID.exec(id)?.[1];
  if (resourceId === undefined) return { kind: 'malformed' };
  return { kind: 'acs', resourceId: resourceId.toLowerCase() };
}

export type TokenStanding = 'valid' | 'revoked' | 'deleted' | 'unknown-identity';

/** In-memory identities of one ACS resource and the tokens issued for them. */
export class IdentityRegistry {
  readonly #resourceId: string;
  readonly #identities = new Map<string, MutableIdentity>();
  readonly #tokens = new Map<string, IssuedTokenEntry>();
  #pruneAt = TOKEN_PRUNE_THRESHOLD;
  // A counter rather than timestamps: a token issued in the same millisecond as a revoke must still
  // be ordered correctly against it.
  #sequence = 0;

  constructor(resourceId: string) {
    this.#resourceId = resourceId;
  }

  /** Create an identity with a fresh id, or with `id` (which must belong to this resource and be unused). */
  create(id?: string): IdentityRecord {
    const identityId = id ?? `8:acs:${this.#resourceId}_${randomUUID()}`;
    const parsed = parseIdentityId(identityId);
    if (parsed.kind !== 'acs' || parsed.resourceId !== this.#resourceId) {
      throw new TypeError(`${identityId} is not an identity id of resource ${this.#resourceId}`);
    }
    if (this.#identities.has(identityId)) throw new TypeError(`identity ${identityId} already exists`);
    const record: MutableIdentity = { id: identityId, createdAt: new Date(), revokedThroughSequence: 0 };
    this.#identities.set(identityId, record);
    return snapshot(record);
  }

  /** The identity if it exists and has not been deleted. */
  findAlive(id: string): IdentityRecord | undefined {
    const record = this.#identities.get(id);
    return record === undefined || record.deletedAt !== undefined ? undefined : snapshot(record);
  }

  /** Delete an identity (which revokes its tokens). Returns false when it was unknown or already deleted. */
  delete(id: string): boolean {
    const record = this.#identities.get(id);
    if (record === undefined || record.deletedAt !== undefined) return false;
    record.deletedAt = new Date();
    record.revokedThroughSequence = this.#sequence;
    return true;
  }

  /** Revoke every token issued so far for an alive identity. Returns false when it is not alive. */
  revokeTokens(id: string): boolean {
    const record = this.#identities.get(id);
    if (record === undefined || record.deletedAt !== undefined) return false;
    record.tokensRevokedAt = new Date();
    record.revokedThroughSequence = this.#sequence;
    return true;
  }

  /** Reserve the ordering slot of a token about to be signed. */
  nextTokenSequence(): number {
    this.#sequence += 1;
    return this.#sequence;
  }

  /** Remember a signed token so revocation can be checked later. */
  recordToken(token: string, identityId: string, sequence: number, expiresAtMs: number): void {
    if (this.#tokens.size >= this.#pruneAt) {
      const now = Date.now();
      for (const [key, entry] of this.#tokens) if (entry.expiresAtMs <= now) this.#tokens.delete(key);
      // Next sweep only after as many new tokens as are left: one sweep per token would make issuing
      // quadratic once more than the threshold are alive (tokens live 1 to 24 hours).
      this.#pruneAt = Math.max(TOKEN_PRUNE_THRESHOLD, 2 * this.#tokens.size);
    }
    this.#tokens.set(token, { identityId, sequence, expiresAtMs });
  }

  /** Whether a token (already known to be correctly signed) still stands for its identity. */
  tokenStanding(token: string, identityId: string): TokenStanding {
    const record = this.#identities.get(identityId);
    const entry = this.#tokens.get(token);
    if (record === undefined || entry?.identityId !== identityId) return 'unknown-identity';
    if (record.deletedAt !== undefined) return 'deleted';
    if (entry.sequence <= record.revokedThroughSequence) return 'revoked';
    return 'valid';
  }

  list(): IdentityRecord[] {
    return [...this.#identities.values()].map(snapshot);
  }

  aliveIds(): string[] {
    return [...this.#identities.values()].filter((record) => record.deletedAt === undefined).map((record) => record.id);
  }
}

function snapshot(record: MutableIdentity): IdentityRecord {
  return {
    id: record.id,
    createdAt: new Date(record.createdAt),
    ...(record.deletedAt === undefined ? {} : { deletedAt: new Date(record.deletedAt) }),
    ...(record.tokensRevokedAt === undefined ? {} : { tokensRevokedAt: new Date(record.tokensRevokedAt) }),
  };
}
