/** Small typed helpers shared by the emulator suites. */
import type { AuthenticationResult } from '@azure/msal-node';

/** The access token of an msal-node result, which msal types nullable: no result fails the test here. */
export function accessTokenOf(result: AuthenticationResult | null): string {
  if (result === null) throw new Error('msal-node answered no authentication result');
  return result.accessToken;
}
