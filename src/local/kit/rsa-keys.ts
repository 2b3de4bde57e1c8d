/**
 * Where the emulators' RSA-2048 key pairs come from (the Entra and ACS token-signing keys). Fresh ones by
 * default, made off the main thread. Making a key costs about 300 ms of CPU, most of an emulator's start-up, so
 * a test run may instead hand out real key pairs it made in advance (tests/helpers/key-pool.ts): every pair
 * is still a real key, only made once per run instead of once per emulator.
 *
 * @packageDocumentation
 */
import { generateKeyPair, type RSAKeyPairOptions } from 'node:crypto';
import { promisify } from 'node:util';

export interface RsaKeyPairPem {
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  /** SPKI PEM. */
  readonly publicKeyPem: string;
}

/** Yields a new RSA-2048 key pair on each call; two calls never yield the same pair. */
export type RsaKeySource = () => Promise<RsaKeyPairPem>;

const RSA_2048_PEM: RSAKeyPairOptions<'pem', 'pem'> = {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
};

const generateRsaPem = promisify(generateKeyPair);

/** A key pair made now, in libuv's thread pool (several at once use several cores). */
export const freshRsaKeys: RsaKeySource = async () => {
  const { publicKey, privateKey } = await generateRsaPem('rsa', RSA_2048_PEM);
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
};
