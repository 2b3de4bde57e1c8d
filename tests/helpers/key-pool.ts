import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { freshRsaKeys, type RsaKeyPairPem, type RsaKeySource } from '../../src/local/kit/rsa-keys';
import type { LocalCertificates } from '../../src/local/tls/local-certificate-authority';

/**
 * Key pairs and a CA made once per test run (tests/setup/key-pool.ts, Jest's globalSetup) instead of once per
 * emulator: RSA key generation was most of the suites' CPU time. They are real keys; what changes is only
 * when they were made. Within a test file each emulator gets keys no other emulator of the file has (the file's
 * module registry starts the count at 0); files run in separate workers and never talk to each other's
 * emulators, so sharing keys across files proves nothing false. Past the pool, keys are made fresh.
 */
export const KEY_POOL_FILE = join(__dirname, '..', '..', 'node_modules', '.cache', 'acs-auth-server-tests', 'key-pool.json');

export interface KeyPool {
  readonly version: 1;
  /** When the pool was made (ISO 8601); the setup makes a new one after a week (the CA lives 30 days). */
  readonly createdAt: string;
  readonly certificates: LocalCertificates;
  readonly keys: readonly RsaKeyPairPem[];
}

let pool: KeyPool | null | undefined;
let handedOut = 0;

/** The run's pool, or null when there is none (a test file run without the setup). */
export function readKeyPool(file = KEY_POOL_FILE): KeyPool | null {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<KeyPool>;
    return parsed.version === 1 && Array.isArray(parsed.keys) && parsed.certificates !== undefined ? (parsed as KeyPool) : null;
  } catch {
    return null;
  }
}

function currentPool(): KeyPool | null {
  if (pool === undefined) pool = readKeyPool();
  return pool;
}

/** Key pairs for this file's emulators: each call a pair not handed out before in this file. */
export const pooledRsaKeys: RsaKeySource = async () => {
  const keys = currentPool()?.keys ?? [];
  const next = keys[handedOut];
  if (next === undefined) return freshRsaKeys();
  handedOut += 1;
  return next;
};

/** The run's CA and server certificate, if the pool has them. */
export function pooledCertificates(): LocalCertificates | undefined {
  return currentPool()?.certificates;
}
