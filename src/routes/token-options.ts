import type { AcsTokenScope } from '../config/config';
import { BadRequestError } from '../errors/app-errors';
import type { TokenRequest } from '../services/ports';

/**
 * Parses the optional query of the token routes: `scopes` (comma-separated, a subset of the
 * configured scopes) and `expiresInMinutes` (60..1440, the range ACS accepts). Anything else is
 * refused with a message that names the parameter, rather than silently ignored.
 */
export function parseTokenOptions(
  query: Readonly<Record<string, unknown>>,
  allowed: { readonly scopes: readonly AcsTokenScope[]; readonly expiresInMinutes: number | undefined },
): TokenRequest {
  for (const name of Object.keys(query)) {
    if (name !== 'scopes' && name !== 'expiresInMinutes') {
      throw new BadRequestError(`Unknown query parameter '${name}'. Allowed: scopes, expiresInMinutes.`);
    }
  }
  return {
    scopes: parseScopes(query['scopes'], allowed.scopes),
    expiresInMinutes: parseExpiresInMinutes(query['expiresInMinutes']) ?? allowed.expiresInMinutes,
  };
}

/** A query parameter given at most once, as text: the query parser turns a repeated `a=1&a=2` into an array. */
function oneQueryValue(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadRequestError(`Query parameter '${name}' must be given once, as a plain value.`);
  return value;
}

function parseScopes(value: unknown, allowed: readonly AcsTokenScope[]): AcsTokenScope[] {
  const raw = oneQueryValue('scopes', value);
  if (raw === undefined) return [...allowed];
  const scopes = raw.split(',').map((scope) => scope.trim());
  if (scopes.some((scope) => scope === '')) {
    throw new BadRequestError(`Query parameter 'scopes' must be a comma-separated list of: ${allowed.join(', ')}.`);
  }
  const refused = scopes.filter((scope) => !(allowed as readonly string[]).includes(scope));
  if (refused.length > 0) {
    throw new BadRequestError(`Query parameter 'scopes' may only name ${allowed.join(', ')}; refused: ${refused.join(', ')}.`);
  }
  return [...new Set(scopes)] as AcsTokenScope[];
}

function parseExpiresInMinutes(value: unknown): number | undefined {
  const raw = oneQueryValue('expiresInMinutes', value);
  if (raw === undefined) return undefined;
  const minutes = Number(raw);
  if (!/^\d{1,4}$/.test(raw) || minutes < 60 || minutes > 1440) {
    throw new BadRequestError(`Query parameter 'expiresInMinutes' must be a whole number from 60 to 1440.`);
  }
  return minutes;
}
