import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';

import { acsResourceOf, createMappingSealer } from '../src/services/mapping-seal';

/**
 * What checking a mapping's seal costs the service: CPU microseconds per verification (an HMAC-SHA256
 * over about 200 bytes and a constant-time compare), measured in this process with a ring of two keys
 * and seals under the older one (the slower case: the key is looked up by id either way).
 * Verification runs only when a mapping is read from Graph (a mapping-cache miss), never on a cached
 * token request, and adds no upstream call.
 */
export interface SealCost {
  readonly verifications: number;
  readonly cpuMicrosecondsPerVerification: number;
  readonly cpuMicrosecondsPerSeal: number;
}

function cpuMicroseconds(work: () => void): number {
  const before = process.cpuUsage();
  work();
  const spent = process.cpuUsage(before);
  return spent.user + spent.system;
}

export function measureSealCost(verifications = 200_000): SealCost {
  const keys = ['new', 'old'].map((id) => ({ id, secret: createSecretKey(randomBytes(32)) }));
  const sealer = createMappingSealer(keys, acsResourceOf('https://contoso.communication.azure.com/'));
  const older = createMappingSealer([...keys].reverse(), acsResourceOf('https://contoso.communication.azure.com/'));
  const subjects = Array.from({ length: 1000 }, () => ({
    tid: randomUUID(),
    oid: randomUUID(),
    acsUserId: `8:acs:${randomUUID()}_${randomUUID()}`,
  }));
  const seals = subjects.map((subject) => older.seal(subject, subject.acsUserId));
  let trusted = 0;
  // Warm-up, then the measured loop.
  for (let index = 0; index < 10_000; index += 1)
    sealer.verify(subjects[index % 1000]!, subjects[index % 1000]!.acsUserId, seals[index % 1000]);
  const verifyMicros = cpuMicroseconds(() => {
    for (let index = 0; index < verifications; index += 1) {
      const subject = subjects[index % 1000]!;
      if (sealer.verify(subject, subject.acsUserId, seals[index % 1000]).trusted) trusted += 1;
    }
  });
  if (trusted !== verifications) throw new Error(`seal cost: ${verifications - trusted} seals did not verify`);
  const sealMicros = cpuMicroseconds(() => {
    for (let index = 0; index < verifications / 4; index += 1) sealer.seal(subjects[index % 1000]!, subjects[index % 1000]!.acsUserId);
  });
  const round = (value: number): number => Math.round(value * 100) / 100;
  return {
    verifications,
    cpuMicrosecondsPerVerification: round(verifyMicros / verifications),
    cpuMicrosecondsPerSeal: round(sealMicros / (verifications / 4)),
  };
}
