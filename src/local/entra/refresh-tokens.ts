/**
 * Refresh tokens: opaque, bound to the client they were issued to. Each redemption issues a new one and the
 * old one stays valid ("Refresh tokens aren't revoked when used to acquire new access tokens"). Those issued
 * to a `spa` redirect URI expire 24 hours after the sign-in, and the ones acquired with them carry over that
 * expiry (AADSTS700084); the others expire after 90 days without use (AADSTS700082). Sources:
 * v2-oauth2-auth-code-flow.md ("Refresh the access token"), refresh-tokens.md, reference-error-codes.md.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import type { RedirectUriType } from './redirect-uris';
import type { ResourceGrant } from './requested-scopes';

export const SPA_REFRESH_TOKEN_LIFETIME_MS = 24 * 60 * 60 * 1000;
export const INACTIVE_REFRESH_TOKEN_MS = 90 * 24 * 60 * 60 * 1000;

/** What a refresh token stands for. */
export interface RefreshGrant {
  readonly clientId: string;
  readonly oid: string;
  readonly sessionId: string;
  /** The platform of the redirect URI the first code went to: `spa` tokens are redeemed cross-origin only. */
  readonly platform: RedirectUriType;
  readonly scope: string;
  readonly granted: readonly ResourceGrant[];
  /** When the sign-in happened (epoch ms): SPA refresh tokens expire a fixed time after it. */
  readonly signedInAt: number;
}

export type RefreshLookup =
  | { readonly status: 'valid'; readonly grant: RefreshGrant }
  | { readonly status: 'spaExpired' | 'inactive'; readonly grant: RefreshGrant }
  | { readonly status: 'unknown' };

interface StoredRefreshToken {
  readonly grant: RefreshGrant;
  lastUsedAt: number;
}

export class RefreshTokens {
  readonly #tokens = new Map<string, StoredRefreshToken>();

  constructor(private readonly now: () => number) {}

  issue(grant: RefreshGrant): string {
    const token = `1.${randomBytes(64).toString('base64url')}`;
    this.#tokens.set(token, { grant, lastUsedAt: this.now() });
    return token;
  }

  /** What the token stands for now; a valid lookup counts as use. */
  use(token: string): RefreshLookup {
    const stored = this.#tokens.get(token);
    if (stored === undefined) return { status: 'unknown' };
    const now = this.now();
    if (stored.grant.platform === 'spa' && now >= this.expiresAt(stored.grant)) return { status: 'spaExpired', grant: stored.grant };
    if (stored.grant.platform !== 'spa' && now >= stored.lastUsedAt + INACTIVE_REFRESH_TOKEN_MS)
      return { status: 'inactive', grant: stored.grant };
    stored.lastUsedAt = now;
    return { status: 'valid', grant: stored.grant };
  }

  /** When a SPA refresh token of this grant expires (epoch ms). */
  expiresAt(grant: RefreshGrant): number {
    return grant.signedInAt + SPA_REFRESH_TOKEN_LIFETIME_MS;
  }
}
