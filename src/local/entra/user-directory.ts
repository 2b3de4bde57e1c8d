/**
 * The users of the emulated tenant, looked up by object id (On-Behalf-Of, minting) and by demo name
 * (the local token endpoints and the CLI). Tests name users either way, so minting resolves both.
 *
 * @packageDocumentation
 */
import { isGuid } from '../../validation/formats';
import type { DemoUser } from '../local-directory';

/** Who a minted token is about: an object id, and the directory's user when the tenant lists one. */
export interface TokenSubject {
  readonly oid: string;
  readonly user: DemoUser | undefined;
}

export class UserDirectory {
  readonly #users: readonly DemoUser[];
  // Indexed, so a tenant of 100,000 users (the memory benchmark) costs no linear scan per token request.
  readonly #byOid: ReadonlyMap<string, DemoUser>;

  constructor(users: readonly DemoUser[]) {
    this.#users = users;
    this.#byOid = new Map(users.map((user) => [user.oid.toLowerCase(), user] as const));
  }

  /** The user with this object id (case-insensitive). */
  byOid(oid: string): DemoUser | undefined {
    return this.#byOid.get(oid.toLowerCase());
  }

  /**
   * The user with this demo name. A scan rather than an index: only the local token endpoints and
   * in-process minting look names up, and a second index would weigh on the memory benchmark.
   */
  byName(name: string): DemoUser | undefined {
    return this.#users.find((candidate) => candidate.name === name);
  }

  /** The first users of the directory, for the account picker (a benchmark tenant has thousands). */
  first(count: number): readonly DemoUser[] {
    return this.#users.slice(0, count);
  }

  /** The user with this sign-in name (UPN, case-insensitive), as a `login_hint` names one. */
  byUserPrincipalName(upn: string): DemoUser | undefined {
    const wanted = upn.toLowerCase();
    return this.#users.find((candidate) => candidate.userPrincipalName.toLowerCase() === wanted);
  }

  /**
   * The subject of a minted token: `oid` wins; else `user` as a demo name, a listed oid, or any GUID
   * (a user the directory does not list); else the first user. Throws a TypeError for anything else.
   */
  resolveSubject(user: string | undefined, oid: string | undefined): TokenSubject {
    if (oid !== undefined) return { oid, user: this.byOid(oid) };
    if (user === undefined) {
      const first = this.#users[0];
      if (first === undefined) throw new TypeError('the emulator has no users; pass user or oid');
      return { oid: first.oid, user: first };
    }
    const named = this.byName(user) ?? this.byOid(user);
    if (named !== undefined) return { oid: named.oid, user: named };
    if (isGuid(user)) return { oid: user, user: undefined };
    throw new TypeError(`unknown user '${String(user)}': pass a user name from the directory or an oid`);
  }
}
