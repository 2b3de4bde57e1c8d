import type { Request } from 'express';
import { Strategy } from 'passport-strategy';

import { AppError, InvalidTokenError } from '../errors/app-errors';
import type { EntraTokenValidator } from './entra-token-validator';

export const ENTRA_BEARER = 'entra-bearer';

// RFC 6750 §2.1: `Bearer` (case-insensitive) and one b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
// The Bearer scheme followed by something: anything else carries no bearer credential at all.
const BEARER_CREDENTIAL = /^Bearer\s+\S/i;

/** Reads the bearer token from the Authorization header, or explains what is wrong with it. */
export function extractBearerToken(header: string | undefined): string {
  // RFC 6750 §3.1: a request without Bearer credentials (no header, another scheme such as Basic,
  // or the scheme with nothing after it) gets a challenge without an error code, as ASP.NET's
  // JwtBearer answers it; only a Bearer credential that fails gets error="invalid_token".
  if (header === undefined || !BEARER_CREDENTIAL.test(header.trim())) {
    throw new InvalidTokenError('The request has no bearer token.', { missing: true });
  }
  const match = BEARER.exec(header);
  if (!match) throw new InvalidTokenError('The Authorization header must be "Bearer <access token>".');
  return match[1]!;
}

/**
 * A session-less passport strategy for Microsoft Entra ID bearer tokens, built on jose (Microsoft's
 * own passport strategy for Azure AD is archived and deprecated). Refusals go to `fail` with the AppError as
 * the challenge; a validation that could not run (keys unreachable) goes to `error`.
 */
export class EntraBearerStrategy extends Strategy {
  name = ENTRA_BEARER;
  // Not a #private field: passport runs each request on Object.create(strategy), which has no private slots.
  private readonly validate: EntraTokenValidator;

  constructor(validate: EntraTokenValidator) {
    super();
    this.validate = validate;
  }

  override authenticate(req: Request): void {
    let token: string;
    try {
      token = extractBearerToken(req.headers.authorization);
    } catch (error) {
      this.fail(error, 401);
      return;
    }
    this.validate(token).then(
      (caller) => this.success(caller),
      (error: unknown) => {
        if (error instanceof AppError && error.status === 401) this.fail(error, 401);
        else this.error(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }
}
