/**
 * The authenticated caller, as established from a validated Microsoft Entra ID access token.
 */
export interface Caller {
  /** Object id of the user in the tenant (stable across apps; the Graph user id). */
  readonly oid: string;
  readonly tid: string;
  /** Delegated scopes (`scp`), split on spaces. */
  readonly scopes: readonly string[];
  /** App roles assigned to the user (`roles`). */
  readonly roles: readonly string[];
  readonly tokenVersion: '1.0' | '2.0';
  /** The client app that obtained the token (`appid` in v1, `azp` in v2), a lower-case GUID. */
  readonly clientAppId: string;
  /** The token's `exp`, in seconds since the epoch. */
  readonly expiresAt: number;
  /**
   * The validated token itself, kept only to be redeemed in the On-Behalf-Of exchange. Not
   * enumerable, so a caller object that reaches a log line or a JSON body never carries it.
   */
  readonly assertion: string;
}

export function createCaller(fields: Omit<Caller, 'assertion'>, assertion: string): Caller {
  const caller = { ...fields } as Caller;
  Object.defineProperty(caller, 'assertion', { value: assertion, enumerable: false });
  return Object.freeze(caller);
}

declare global {
  // passport types `req.user` as Express.User; this service's user is always a Caller.
  // eslint-disable-next-line @typescript-eslint/no-namespace -- module augmentation of Express's global namespace is the only way to retype req.user
  namespace Express {
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- declaration merging: the interface gains Caller's members
    interface User extends Caller {}
  }
}
