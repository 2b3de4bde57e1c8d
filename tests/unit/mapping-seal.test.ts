import { createSecretKey, randomBytes } from 'node:crypto';

import fc from 'fast-check';

import { acsResourceOf, createMappingSealer, type SealKey } from '../../src/services/mapping-seal';

const key = (id: string): SealKey => ({ id, secret: createSecretKey(randomBytes(32)) });
const A = key('a');
const B = key('b');
const RESOURCE = acsResourceOf('https://contoso.communication.azure.com/');
const ALICE = { tid: '11111111-2222-4333-8444-555555555555', oid: '4e3bceae-c3d6-4f18-af3b-e572b99fb2f1' };
const BOB = { ...ALICE, oid: '9bcb3c9e-81a2-443a-82fd-7f44ef56e186' };
const ID = '8:acs:0e4b2f4c-7f6b-4c3a-9a43-1d2b3c4d5e6f_00000019-2a3b-4c5d-8e9f-0a1b2c3d4e5f';
const OTHER_ID = '8:acs:0e4b2f4c-7f6b-4c3a-9a43-1d2b3c4d5e6f_00000019-ffff-4c5d-8e9f-0a1b2c3d4e5f';

describe('mapping seals', () => {
  const sealer = createMappingSealer([A], RESOURCE);
  const seal = sealer.seal(ALICE, ID);

  it('seal as v1.<key id>.<43 base64url characters> and verify under the same subject, id and resource', () => {
    expect(seal).toMatch(/^v1\.s\.a\.[A-Za-z0-9_-]{43}$/);
    expect(sealer.verify(ALICE, ID, seal)).toEqual({ trusted: true, acsUserId: ID, keyId: 'a', currentKey: true, origin: 'service' });
  });

  it('bind the tenant and user case-insensitively (GUIDs), the ACS id exactly', () => {
    expect(sealer.verify({ tid: ALICE.tid.toUpperCase(), oid: ALICE.oid.toUpperCase() }, ID, seal)).toMatchObject({ trusted: true });
    expect(sealer.verify(ALICE, ID.toUpperCase().replace('8:ACS:', '8:acs:'), seal)).toMatchObject({
      trusted: false,
      reason: 'seal_mismatch',
    });
  });

  it.each([
    ['another user', BOB, ID, RESOURCE],
    ['another tenant', { ...ALICE, tid: '00000000-0000-4000-8000-000000000000' }, ID, RESOURCE],
    ['another identity', ALICE, OTHER_ID, RESOURCE],
    ['another ACS resource', ALICE, ID, acsResourceOf('https://fabrikam.communication.azure.com')],
  ])('refuse a seal made for %s', (_label, subject, acsUserId, resource) => {
    const other = createMappingSealer([A], resource);
    expect(other.verify(subject, acsUserId, seal)).toEqual({ trusted: false, reason: 'seal_mismatch', acsUserId });
  });

  it.each([
    ['missing', undefined, 'no_seal'],
    ['null', null, 'no_seal'],
    ['empty', '', 'no_seal'],
    ['a number', 42, 'malformed_seal'],
    ['an array', [seal], 'malformed_seal'],
    ['an object', { seal }, 'malformed_seal'],
    ['truncated', seal.slice(0, -1), 'malformed_seal'],
    ['longer', `${seal}A`, 'malformed_seal'],
    ['of another version', seal.replace(/^v1/, 'v2'), 'malformed_seal'],
    ['very long', 'v1.s.a.'.padEnd(100_000, 'A'), 'malformed_seal'],
    ['under an unknown key id', seal.replace(/^v1\.s\.a\./, 'v1.s.z.'), 'unknown_key'],
  ])('refuse a seal that is %s', (_label, value, reason) => {
    expect(sealer.verify(ALICE, ID, value)).toMatchObject({ trusted: false, reason });
  });

  it('refuse a MAC that differs in its unused trailing bits (one canonical encoding only)', () => {
    const mac = seal.split('.').at(3);
    if (mac === undefined) throw new Error(`not a v1 seal: ${seal}`);
    // The 43rd character carries 4 data bits and 2 padding bits: change only the padding bits.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(mac.slice(-1));
    const twin = `${mac.slice(0, -1)}${alphabet.charAt(last ^ 1)}`;
    expect(Buffer.from(twin, 'base64url').equals(Buffer.from(mac, 'base64url'))).toBe(true);
    expect(sealer.verify(ALICE, ID, `v1.s.a.${twin}`)).toMatchObject({ trusted: false, reason: 'malformed_seal' });
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['not an ACS user id', 'alice'],
    ['a Teams user id', '8:orgid:4e3bceae-c3d6-4f18-af3b-e572b99fb2f1'],
    ['an array', [ID]],
    ['too long', `8:acs:${'a'.repeat(300)}`],
  ])('refuse an identity that is %s, before looking at the seal', (_label, acsUserId) => {
    expect(sealer.verify(ALICE, acsUserId, seal)).toEqual({ trusted: false, reason: 'malformed_identity', acsUserId: undefined });
  });

  it('bind the origin: an adopted seal verifies as adopted, and cannot pass for a service seal', () => {
    const adopted = sealer.seal(ALICE, ID, 'adopted');
    expect(adopted).toMatch(/^v1\.a\.a\./);
    expect(sealer.verify(ALICE, ID, adopted)).toMatchObject({ trusted: true, origin: 'adopted' });
    expect(sealer.verify(ALICE, ID, adopted.replace(/^v1\.a\./, 'v1.s.'))).toMatchObject({ trusted: false, reason: 'seal_mismatch' });
    expect(sealer.verify(ALICE, ID, seal.replace(/^v1\.s\./, 'v1.a.'))).toMatchObject({ trusted: false, reason: 'seal_mismatch' });
    expect(sealer.verify(ALICE, ID, seal.replace(/^v1\.s\./, 'v1.x.'))).toMatchObject({ trusted: false, reason: 'malformed_seal' });
  });

  it('refuse to seal what is not an ACS user id', () => {
    expect(() => sealer.seal(ALICE, 'not-an-id')).toThrow(TypeError);
  });

  describe('across a key rotation', () => {
    it('verify seals of every key of the ring, sealing with the first', () => {
      const rotated = createMappingSealer([B, A], RESOURCE);
      expect(rotated.verify(ALICE, ID, seal)).toEqual({ trusted: true, acsUserId: ID, keyId: 'a', currentKey: false, origin: 'service' });
      const resealed = rotated.seal(ALICE, ID);
      expect(resealed).toMatch(/^v1\.s\.b\./);
      expect(createMappingSealer([B], RESOURCE).verify(ALICE, ID, resealed)).toMatchObject({ trusted: true, currentKey: true });
      expect(createMappingSealer([B], RESOURCE).verify(ALICE, ID, seal)).toMatchObject({ trusted: false, reason: 'unknown_key' });
    });

    it('refuse a seal under a key of the same id but other bytes', () => {
      expect(createMappingSealer([key('a')], RESOURCE).verify(ALICE, ID, seal)).toMatchObject({ trusted: false, reason: 'seal_mismatch' });
    });

    it('refuse a ring without keys or with one id twice', () => {
      expect(() => createMappingSealer([], RESOURCE)).toThrow(TypeError);
      expect(() => createMappingSealer([A, key('a')], RESOURCE)).toThrow(TypeError);
    });
  });

  it('treat connection-string and managed-identity endpoints of one resource alike', () => {
    expect(acsResourceOf('https://Contoso.communication.azure.com/')).toBe(acsResourceOf('https://contoso.communication.azure.com'));
  });

  it('trust no value a caller could make up without the key', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^v1\.[sa]\.a\.[A-Za-z0-9_-]{43}$/), fc.anything()), (forged) => {
        expect(sealer.verify(ALICE, ID, forged).trusted).toBe(forged === seal);
      }),
      { numRuns: 2000 },
    );
  });
});
