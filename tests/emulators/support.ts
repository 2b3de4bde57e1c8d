/** Small typed helpers shared by the emulator suites. */
import type { AuthenticationResult } from '@azure/msal-node';

/**
 * Jest's asymmetric matchers typed `unknown` rather than `any` (@types/jest declares them `any`), so an
 * expected object that holds one stays type-checked instead of turning into `any` (no-unsafe-assignment):
 * `toMatchObject({ token: match.any(String) })` where `expect.any(String)` would be. Passed directly to a
 * matcher (`toEqual(expect.any(String))`) the jest originals are fine.
 */
export const match = {
  /** `expect.any(type)`: a value made by that constructor, or a primitive of that type (String, Number, ...). */
  any: (type: abstract new (...args: never[]) => unknown): unknown => expect.any(type),
  /** `expect.stringContaining(text)`. */
  stringContaining: (text: string): unknown => expect.stringContaining(text),
  /** `expect.objectContaining(object)`. */
  objectContaining: (object: Readonly<Record<string, unknown>>): unknown => expect.objectContaining(object),
  /** `expect.arrayContaining(items)`. */
  arrayContaining: (items: readonly unknown[]): unknown => expect.arrayContaining(items),
};

/** The access token of an msal-node result, which msal types nullable: no result fails the test here. */
export function accessTokenOf(result: AuthenticationResult | null): string {
  if (result === null) throw new Error('msal-node answered no authentication result');
  return result.accessToken;
}
