import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';

import type { Config } from '../config/config';

/**
 * Seals on identity mappings.
 *
 * The mapping lives where the user can write it (a Graph open extension: any app the user consents
 * `User.ReadWrite` to can create, patch or delete it), and ACS user ids are not secret (every chat or
 * call participant sees them). So a mapping is only trusted when it carries a seal: an HMAC-SHA256,
 * under a key only this service holds, over the tenant, the user, the ACS identity and the ACS
 * resource. A user can still delete or break their own mapping, but can no longer point it at
 * somebody else's identity, copy another user's sealed mapping, or reuse a seal made for another
 * ACS resource.
 *
 * Wire form of a seal: `v1.<origin>.<key id>.<base64url MAC>`, stored next to `acsUserIdentity` in
 * the same extension (about 60 bytes of Graph's 2 KB). The origin, bound by the MAC like the rest, says
 * who vouched for the mapping: `s`, the service, which made the identity itself; `a`, the admin
 * command, which adopted a mapping the original sample wrote. The admin command adopts unsealed
 * mappings only while no service seal exists, i.e. before the service went live: after that, an
 * unsealed mapping is something a user wrote, not legacy data (see admin/mapping-maintenance.ts).
 */

/**
 * One key of the ring: an id (stored in each seal, so verification picks the key) and the secret as
 * a KeyObject, which prints and serialises as nothing, so a logged config cannot leak it.
 */
export interface SealKey {
  readonly id: string;
  readonly secret: KeyObject;
}

/** Who the mapping belongs to: the tenant and object id of the user, from a validated token. */
export interface MappingSubject {
  readonly tid: string;
  readonly oid: string;
}

/** Why a mapping is not trusted; logged (never sent to the caller) and counted by the audit. */
export type UntrustedReason =
  /** No seal at all: written by the original sample, this service before seals, or someone else. */
  | 'no_seal'
  /** Not a string, or not of the `v1.<kid>.<mac>` form (a truncated or hand-edited seal). */
  | 'malformed_seal'
  /** Sealed under a key the ring no longer (or never) held. */
  | 'unknown_key'
  /** The MAC does not match: another user's, tenant's or ACS resource's seal, or another identity. */
  | 'seal_mismatch'
  /** `acsUserIdentity` is missing, empty, not a string, or not an ACS user id. */
  | 'malformed_identity';

/** Who vouched for a mapping: the service (it made the identity) or the admin command (it adopted legacy data). */
export type SealOrigin = 'service' | 'adopted';

export type MappingVerdict =
  | {
      readonly trusted: true;
      readonly acsUserId: string;
      readonly keyId: string;
      readonly currentKey: boolean;
      readonly origin: SealOrigin;
    }
  | { readonly trusted: false; readonly reason: UntrustedReason; readonly acsUserId: string | undefined };

export interface MappingSealer {
  /** The seal for a mapping, under the first (current) key of the ring; `service` unless the admin command adopts it. */
  seal(subject: MappingSubject, acsUserId: string, origin?: SealOrigin): string;
  /** Check a stored mapping as found (both values unverified, of any type). */
  verify(subject: MappingSubject, acsUserId: unknown, seal: unknown): MappingVerdict;
  /** Id of the key new seals are made with. */
  readonly currentKeyId: string;
}

export const SEAL_VERSION = 'v1';
/** Key ids: short and URL-safe, as they travel inside every seal. */
export const SEAL_KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
export const MIN_SEAL_KEY_BYTES = 32;
export const MAX_SEAL_KEY_BYTES = 64;
/** Longest well-formed seal: `v1.s.` + 32-character id + `.` + 43 characters of MAC. Anything longer is refused unparsed. */
const MAX_SEAL_LENGTH = 5 + 32 + 1 + 43;
const MAC_BYTES = 32;
/** Bounded and anchored, checked only after the length bound, so it runs in linear time on any input. */
const SEAL_SHAPE = /^v1\.([sa])\.([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]{43})$/;
const ORIGIN_CODES: Readonly<Record<SealOrigin, string>> = { service: 's', adopted: 'a' };
/** ACS user ids (`8:acs:<resource id>_<user id>`) are well under this; it bounds what reaches the MAC and the logs. */
const MAX_ACS_ID_LENGTH = 256;
const ACS_USER_ID = /^8:acs:[A-Za-z0-9_-]{1,200}$/;

/** Domain-separated, unambiguous input: a JSON array of the bound values (no separator can be smuggled). */
function sealedMessage(subject: MappingSubject, acsUserId: string, acsResource: string, origin: SealOrigin): string {
  return JSON.stringify([
    'acs-auth-server mapping seal',
    SEAL_VERSION,
    origin,
    subject.tid.toLowerCase(),
    subject.oid.toLowerCase(),
    acsUserId,
    acsResource,
  ]);
}

export function isAcsUserId(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_ACS_ID_LENGTH && ACS_USER_ID.test(value);
}

/**
 * The ACS resource a seal is bound to: the endpoint's origin, lower-cased, so the connection string
 * and the managed-identity endpoint of one resource seal alike.
 */
export function acsResourceOf(endpoint: string): string {
  return new URL(endpoint).origin.toLowerCase();
}

/**
 * @param keys the ring, current key first; ids must be unique (the config checks it).
 * @param acsResource from {@link acsResourceOf}.
 */
export function createMappingSealer(keys: readonly SealKey[], acsResource: string): MappingSealer {
  const [current] = keys;
  if (current === undefined) throw new TypeError('a mapping sealer needs at least one key');
  const byId = new Map(keys.map((key) => [key.id, key]));
  if (byId.size !== keys.length) throw new TypeError('seal key ids must be unique');

  const mac = (key: SealKey, subject: MappingSubject, acsUserId: string, origin: SealOrigin): Buffer =>
    createHmac('sha256', key.secret)
      .update(sealedMessage(subject, acsUserId, acsResource, origin), 'utf8')
      .digest();

  return {
    currentKeyId: current.id,

    seal(subject, acsUserId, origin = 'service') {
      if (!isAcsUserId(acsUserId)) throw new TypeError('only ACS user ids are sealed');
      return `${SEAL_VERSION}.${ORIGIN_CODES[origin]}.${current.id}.${mac(current, subject, acsUserId, origin).toString('base64url')}`;
    },

    verify(subject, acsUserId, seal) {
      const id = isAcsUserId(acsUserId) ? acsUserId : undefined;
      const untrusted = (reason: UntrustedReason): MappingVerdict => ({ trusted: false, reason, acsUserId: id });
      if (id === undefined) return untrusted('malformed_identity');
      if (seal === undefined || seal === null || seal === '') return untrusted('no_seal');
      if (typeof seal !== 'string' || seal.length > MAX_SEAL_LENGTH) return untrusted('malformed_seal');
      // No match leaves every part undefined; a match has all three (none of the groups is optional).
      const [, originCode, keyId, macText] = SEAL_SHAPE.exec(seal) ?? [];
      if (keyId === undefined || macText === undefined) return untrusted('malformed_seal');
      const origin: SealOrigin = originCode === 'a' ? 'adopted' : 'service';
      const key = byId.get(keyId);
      if (key === undefined) return untrusted('unknown_key');
      const presented = Buffer.from(macText, 'base64url');
      // Canonical encoding only: a MAC with other trailing bits would decode to the same bytes.
      if (presented.length !== MAC_BYTES || presented.toString('base64url') !== macText) return untrusted('malformed_seal');
      if (!timingSafeEqual(presented, mac(key, subject, id, origin))) return untrusted('seal_mismatch');
      return { trusted: true, acsUserId: id, keyId: key.id, currentKey: key.id === current.id, origin };
    },
  };
}

/** The `keyId` of mappings in a store only this service writes: no key is involved. */
export const OWNED_STORE_KEY_ID = 'store';

/**
 * The "sealer" of a store only this service can write (the table store): there the store's access
 * control is what makes a mapping trustworthy, so no key is needed. What is kept is the binding to the
 * ACS resource: the "seal" is the resource the identity was made in (a column of its own), so that after
 * the deployment moves to another ACS resource the old ids are refused (409 `mapping_untrusted`, as with
 * a Graph seal of another resource) instead of being sent to a resource that does not own them.
 */
export function createOwnedStoreSealer(acsResource: string): MappingSealer {
  return {
    currentKeyId: OWNED_STORE_KEY_ID,
    seal(_subject, acsUserId) {
      if (!isAcsUserId(acsUserId)) throw new TypeError('only ACS user ids are mapped');
      return acsResource;
    },
    verify(_subject, acsUserId, seal) {
      if (!isAcsUserId(acsUserId)) return { trusted: false, reason: 'malformed_identity', acsUserId: undefined };
      if (seal === undefined || seal === null || seal === '') return { trusted: false, reason: 'no_seal', acsUserId };
      if (seal !== acsResource) return { trusted: false, reason: 'seal_mismatch', acsUserId };
      return { trusted: true, acsUserId, keyId: OWNED_STORE_KEY_ID, currentKey: true, origin: 'service' };
    },
  };
}

/**
 * The sealer a configuration makes: for the Graph store, its MAPPING_SEAL_KEYS ring; for the table
 * store, the resource binding alone; either bound to its ACS resource. The service, the admin command,
 * the tests and the bench all seal through this, so they cannot disagree.
 */
export function mappingSealerOf(config: Pick<Config, 'mappings' | 'acs'>): MappingSealer {
  return config.mappings.store === 'graph'
    ? graphSealerOf(config, config.mappings.graph)
    : createOwnedStoreSealer(acsResourceOf(config.acs.auth.endpoint));
}

/** The Graph store's sealer (the admin command's, which works on Graph even when the table is the target). */
export function graphSealerOf(config: Pick<Config, 'acs'>, graph: { readonly sealKeys: readonly SealKey[] }): MappingSealer {
  return createMappingSealer(graph.sealKeys, acsResourceOf(config.acs.auth.endpoint));
}
