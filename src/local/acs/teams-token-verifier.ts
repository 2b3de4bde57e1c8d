import { ACS_TEAMS_AUDIENCE } from '../local-directory';
import type { SigningKeySet } from '../entra/signing-keys';
import { ACS_ERRORS, type AcsErrorSpec } from './acs-errors';

/**
 * Checks the Entra ID token of a Teams user presented to `/teamsUser/:exchangeAccessToken`, as the
 * live service does: signed by Entra, unexpired, issued by the tenant for the ACS resource
 * (`https://auth.msft.communication.azure.com`) with the delegated scopes `Teams.ManageCalls` and
 * `Teams.ManageChats`; then `appId` must equal the token's client (`appid`, or `azp` in v2 tokens) and
 * `userId` its `oid`.
 */
export interface TeamsTokenVerifierOptions {
  readonly entraKeys: SigningKeySet;
  readonly tenantId: string;
  /** Extra accepted issuers: the Entra emulator's v2 issuer lives on its own host, not login.microsoftonline.com. */
  readonly extraIssuers?: readonly string[];
}

export type TeamsTokenVerdict =
  { readonly ok: true; readonly oid: string; readonly expiresAtSeconds: number } | { readonly ok: false; readonly error: AcsErrorSpec };

const REQUIRED_SCOPES = ['Teams.ManageCalls', 'Teams.ManageChats'];
/** Entra resources commonly allow 5 minutes of clock skew (the .NET token-validation default); unconfirmed for ACS. */
const CLOCK_TOLERANCE_SECONDS = 300;

function sameGuid(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Verify a Teams user's Entra token against the `appId` and `userId` the caller claims. */
export type TeamsTokenVerifier = (token: string, appId: string, userId: string) => Promise<TeamsTokenVerdict>;

/** Build the verifier for one tenant and the Entra emulator's published keys. */
export function createTeamsTokenVerifier(options: TeamsTokenVerifierOptions): TeamsTokenVerifier {
  const issuers = [
    `https://sts.windows.net/${options.tenantId}/`,
    `https://login.microsoftonline.com/${options.tenantId}/v2.0`,
    ...(options.extraIssuers ?? []),
  ];

  return async function verifyTeamsToken(token: string, appId: string, userId: string): Promise<TeamsTokenVerdict> {
    const rejected: TeamsTokenVerdict = { ok: false, error: ACS_ERRORS.invalidAccessToken };
    if (token === '') return rejected;
    let claims: Record<string, unknown>;
    try {
      claims = await options.entraKeys.verify(token, {
        issuer: issuers,
        audience: ACS_TEAMS_AUDIENCE,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp', 'oid'],
      });
    } catch {
      return rejected;
    }
    const scopes = typeof claims['scp'] === 'string' ? claims['scp'].split(' ') : [];
    if (!REQUIRED_SCOPES.every((scope) => scopes.includes(scope))) return rejected;
    const oid = claims['oid'];
    const exp = claims['exp'];
    const client = claims['appid'] ?? claims['azp'];
    if (typeof oid !== 'string' || typeof exp !== 'number' || typeof client !== 'string') return rejected;

    // Status 400 for both mismatches comes from the Java SDK's live tests; code and wording are ours.
    if (!sameGuid(client, appId)) {
      return {
        ok: false,
        error: {
          status: 400,
          code: 'ValidationError',
          message: "Provided appId doesn't match the appid claim of the access token.",
          target: 'appId',
        },
      };
    }
    if (!sameGuid(oid, userId)) {
      return {
        ok: false,
        error: {
          status: 400,
          code: 'ValidationError',
          message: "Provided userId doesn't match the oid claim of the access token.",
          target: 'userId',
        },
      };
    }
    return { ok: true, oid, expiresAtSeconds: exp };
  };
}
