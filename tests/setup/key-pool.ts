import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import { freshRsaKeys } from '../../src/local/kit/rsa-keys';
import { generateLocalCertificates } from '../../src/local/tls/local-certificate-authority';
import { KEY_POOL_FILE, readKeyPool, type KeyPool } from '../helpers/key-pool';

/** Enough for the file that starts the most emulators (with key rolls); past it a file makes fresh keys. */
const POOL_SIZE = 64;
const MAX_AGE_MS = 7 * 86_400_000;

/**
 * Jest's globalSetup: makes the run's key pool (tests/helpers/key-pool.ts) unless a recent one is there. It lives
 * in node_modules/.cache, so `npm ci` starts without one and later runs on the same install reuse it. Throwaway
 * test keys only: nothing outside the tests trusts them.
 */
export default async function makeKeyPool(): Promise<void> {
  const existing = readKeyPool();
  if (existing !== null && existing.keys.length >= POOL_SIZE && Date.now() - Date.parse(existing.createdAt) < MAX_AGE_MS) return;
  const [certificates, ...keys] = await Promise.all([
    generateLocalCertificates(),
    ...Array.from({ length: POOL_SIZE }, () => freshRsaKeys()),
  ]);
  const pool: KeyPool = { version: 1, createdAt: new Date().toISOString(), certificates, keys };
  await mkdir(dirname(KEY_POOL_FILE), { recursive: true });
  // Written beside the file and renamed, so a run stopped half-way never leaves half a pool.
  const partial = `${KEY_POOL_FILE}.${process.pid}.partial`;
  await writeFile(partial, JSON.stringify(pool), { mode: 0o600 });
  await rename(partial, KEY_POOL_FILE);
}
