import { installNetworkGuard, takeBlockedAttempts } from './network-guard';

/**
 * Jest `setupFilesAfterEnv`: no test reaches the network (see network-guard.ts). A refused attempt
 * throws where it is made; in case an SDK catches that error and retries, falls back or reports
 * something vaguer, the test (or, for an attempt after the last test, the file) also fails here
 * with the destinations named.
 */
installNetworkGuard();

function failOnBlockedAttempts(when: string): void {
  const attempts = takeBlockedAttempts();
  if (attempts.length > 0) {
    throw new Error(`The network guard refused ${attempts.length} outbound attempt(s) ${when}: ${attempts.join('; ')}`);
  }
}

afterEach(() => failOnBlockedAttempts('during this test'));
afterAll(() => failOnBlockedAttempts('after the last test of this file'));
