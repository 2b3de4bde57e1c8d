/**
 * The sign-in requirements a test arms for a user, so that On-Behalf-Of for that user fails the way
 * Entra fails it when conditional access demands MFA or the user has not consented: the only way to
 * exercise a service's handling of `interaction_required` without a real tenant.
 *
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { InteractionKind } from './entra-emulator';

/** Armed requirements by user object id (case-insensitive, as Entra treats ids). */
export class InteractionRequirements {
  readonly #byOid = new Map<string, InteractionKind>();

  /** Named in MFA claims challenges; random per emulator, as each tenant's policies have their own ids. */
  readonly conditionalAccessPolicyId = randomUUID();

  /** Arm a requirement; the kind is checked because JavaScript callers and JSON fixtures bypass the type. */
  require(oid: string, kind: InteractionKind): void {
    if (kind !== 'mfa' && kind !== 'consent') throw new TypeError("kind must be 'mfa' or 'consent'");
    this.#byOid.set(oid.toLowerCase(), kind);
  }

  clear(oid: string): void {
    this.#byOid.delete(oid.toLowerCase());
  }

  /** The requirement armed for this user, if any. */
  requiredFor(oid: string): InteractionKind | undefined {
    return this.#byOid.get(oid.toLowerCase());
  }
}
