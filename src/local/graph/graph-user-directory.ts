import type { JWTPayload } from 'jose';
import { DEMO_USERS } from '../local-directory';

/**
 * The users of the Graph emulator's tenant and the properties it serves for them. A user appears the
 * first time its token reaches Graph rather than through a provisioning step, so any user the Entra
 * emulator signs in is a Graph user too.
 *
 * @packageDocumentation
 */

/** The user properties the emulator serves (Graph v1.0's default `user` projection). */
export interface GraphUser {
  readonly id: string;
  readonly displayName: string;
  readonly userPrincipalName: string;
  readonly givenName: string | null;
  readonly surname: string | null;
  readonly mail: string | null;
  readonly jobTitle: string | null;
  readonly mobilePhone: string | null;
  readonly officeLocation: string | null;
  readonly preferredLanguage: string | null;
  readonly businessPhones: readonly string[];
}

/** Properties `$select` accepts; anything else is a 400, as on Graph. */
export const USER_PROPERTIES: ReadonlySet<string> = new Set([
  'id',
  'displayName',
  'userPrincipalName',
  'givenName',
  'surname',
  'mail',
  'jobTitle',
  'mobilePhone',
  'officeLocation',
  'preferredLanguage',
  'businessPhones',
]);

function demoUser(oid: string, displayName: string, userPrincipalName: string): GraphUser {
  const [givenName = null, surname = null] = displayName.split(' ');
  return {
    id: oid,
    displayName,
    userPrincipalName,
    givenName,
    surname,
    mail: userPrincipalName,
    jobTitle: null,
    mobilePhone: null,
    officeLocation: null,
    preferredLanguage: 'en-US',
    businessPhones: [],
  };
}

function claim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The tenant's users. The demo users always exist; any other user appears the first time a
 * delegated token for it is seen, or when a test seeds an extension on it, so local sign-ins and
 * seeded data need no provisioning step.
 */
export class GraphUserDirectory {
  readonly #users = new Map<string, GraphUser>();

  constructor() {
    this.reset();
  }

  reset(): void {
    this.#users.clear();
    for (const user of Object.values(DEMO_USERS)) {
      this.#users.set(user.oid, demoUser(user.oid, user.displayName, user.userPrincipalName));
    }
  }

  /**
   * The user `oid`, created on first sight. Names come from a delegated token's claims when there
   * are any; without claims (a seeded extension) they are generated from the oid.
   */
  ensure(oid: string, claims: JWTPayload = {}): GraphUser {
    const known = this.#users.get(oid);
    if (known !== undefined) return known;
    const upn = claim(claims, 'upn') ?? claim(claims, 'unique_name') ?? `${oid}@contoso.local`;
    const user = demoUser(oid, claim(claims, 'name') ?? upn.split('@')[0] ?? oid, upn);
    this.#users.set(oid, user);
    return user;
  }

  /**
   * Every user, ordered by id (ordinal). List pages walk this order and resume after the last id
   * they returned, so users added or removed while a client pages neither shift nor repeat others.
   */
  listById(): readonly GraphUser[] {
    return [...this.#users.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Look a user up by object id or (case-insensitively) by user principal name. */
  find(idOrUpn: string): GraphUser | undefined {
    const byId = this.#users.get(idOrUpn.toLowerCase()) ?? this.#users.get(idOrUpn);
    if (byId !== undefined) return byId;
    const upn = idOrUpn.toLowerCase();
    return [...this.#users.values()].find((user) => user.userPrincipalName.toLowerCase() === upn);
  }
}
