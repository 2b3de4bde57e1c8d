/**
 * Authorization codes: opaque, single use, bound to the client, the redirect URI and the PKCE challenge of the
 * sign-in that issued them, and short-lived ("typically, they expire after about 10 minutes",
 * v2-oauth2-auth-code-flow.md; RFC 6749 §4.1.2 recommends at most 10). A redeemed or expired code is remembered
 * for a while after its expiry, so that using it again is answered as reuse (AADSTS54005) or expiry
 * (AADSTS70008) rather than as an unknown code.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto';
import type { MatchedRedirectUri } from './redirect-uris';
import type { ResourceGrant } from './requested-scopes';

export const CODE_LIFETIME_MS = 10 * 60 * 1000;
/** How long a code stays known after it expired. */
const REMEMBERED_MS = 60 * 60 * 1000;

/** The PKCE challenge of the sign-in (RFC 7636). */
export interface CodeChallenge {
  readonly value: string;
  readonly method: 'S256' | 'plain';
}

/** What a code stands for. */
export interface CodeGrant {
  readonly clientId: string;
  readonly oid: string;
  /** The browser session the user signed in with (`sid`). */
  readonly sessionId: string;
  readonly redirect: MatchedRedirectUri;
  readonly codeChallenge: CodeChallenge | undefined;
  readonly nonce: string | undefined;
  /** The sign-in's `scope` parameter, the default for a redemption that sends none. */
  readonly scope: string;
  readonly granted: readonly ResourceGrant[];
}

export type CodeLookup = { readonly status: 'valid'; readonly grant: CodeGrant } | { readonly status: 'redeemed' | 'expired' | 'unknown' };

interface StoredCode {
  readonly grant: CodeGrant;
  readonly expiresAt: number;
  redeemed: boolean;
}

export class AuthorizationCodes {
  readonly #codes = new Map<string, StoredCode>();

  constructor(private readonly now: () => number) {}

  /** A new code for the grant. */
  issue(grant: CodeGrant): string {
    this.#forgetOld();
    const code = `1.${randomBytes(48).toString('base64url')}`;
    this.#codes.set(code, { grant, expiresAt: this.now() + CODE_LIFETIME_MS, redeemed: false });
    return code;
  }

  /** What the code stands for now; does not use it up. */
  look(code: string): CodeLookup {
    const stored = this.#codes.get(code);
    if (stored === undefined) return { status: 'unknown' };
    if (stored.redeemed) return { status: 'redeemed' };
    if (this.now() >= stored.expiresAt) return { status: 'expired' };
    return { status: 'valid', grant: stored.grant };
  }

  /** Use the code up: every later redemption is refused as reuse. */
  redeem(code: string): void {
    const stored = this.#codes.get(code);
    if (stored !== undefined) stored.redeemed = true;
  }

  #forgetOld(): void {
    const now = this.now();
    for (const [code, stored] of this.#codes) if (now >= stored.expiresAt + REMEMBERED_MS) this.#codes.delete(code);
  }
}
