import { randomBytes, randomUUID } from 'node:crypto';
import { isBase64, isGuid } from '../../validation/formats';
import type { SigningKeySet } from '../entra/signing-keys';
import type { RsaKeySource } from '../kit/rsa-keys';
import { LOCAL_TENANT_ID } from '../local-directory';
import { DEFAULT_ACS_LIMITS, type AcsLimits, type AcsOperation, type OperationLimit } from './rate-limiter';

/**
 * What a test or local mode may choose about an ACS emulator. Every choice is checked when the emulator
 * starts, so a bad resource id or key fails there with a plain message rather than later as a 401 that
 * looks like a client bug.
 */
export interface AcsEmulatorOptions {
  /** The ACS resource's immutable id (a GUID); random by default. It appears in every identity id. */
  readonly resourceId?: string;
  /** The access key, base64 of at least 32 bytes; 64 random bytes (like a live key) by default. */
  readonly accessKey?: string;
  /** The Entra ID emulator's signing keys, used to verify Teams users' tokens. */
  readonly entraKeys: SigningKeySet;
  /** Tenant whose issuers (`https://sts.windows.net/{tid}/`, `https://login.microsoftonline.com/{tid}/v2.0`) are accepted. */
  readonly entraTenantId?: string;
  /** Further issuers to accept on Teams users' tokens (the Entra emulator's v2 issuer). */
  readonly entraIssuers?: readonly string[];
  /** Override request limits per operation (the documented limits otherwise). */
  readonly limits?: Partial<Record<AcsOperation, OperationLimit>>;
  /**
   * Issue every identity token with this lifetime instead of the requested `expiresInMinutes` (whose live
   * minimum is 60 minutes): only for tests that watch a client refresh its token. 1 to 86,400 seconds.
   */
  readonly tokenLifetimeSeconds?: number;
  /** Where its token-signing key comes from (fresh by default; tests hand out keys made in advance). */
  readonly rsaKeys?: RsaKeySource;
  readonly host?: string;
  readonly port?: number;
}

/** The options with defaults filled in: what the emulator is built from. */
export interface ResolvedAcsOptions {
  /** Lower-cased, as identity ids spell it. */
  readonly resourceId: string;
  readonly accessKey: string;
  readonly tenantId: string;
  readonly limits: AcsLimits;
  /** Set only when a test asked for short-lived tokens ({@link AcsEmulatorOptions.tokenLifetimeSeconds}). */
  readonly tokenLifetimeSeconds: number | undefined;
}

/** The smallest key the emulator accepts; live keys are 64 bytes. */
const MIN_ACCESS_KEY_BYTES = 32;

/** Fill in defaults and refuse options the live service could never have (throws `TypeError`). */
export function resolveAcsEmulatorOptions(options: AcsEmulatorOptions): ResolvedAcsOptions {
  const resourceId = (options.resourceId ?? randomUUID()).toLowerCase();
  if (!isGuid(resourceId)) throw new TypeError('resourceId must be a GUID');
  const accessKey = options.accessKey ?? randomBytes(64).toString('base64');
  if (!isBase64(accessKey) || Buffer.from(accessKey, 'base64').length < MIN_ACCESS_KEY_BYTES) {
    throw new TypeError('accessKey must be base64 of at least 32 bytes');
  }
  const tenantId = options.entraTenantId ?? LOCAL_TENANT_ID;
  if (!isGuid(tenantId)) throw new TypeError('entraTenantId must be a GUID');
  // Callers in plain JavaScript (or with a cast) can still leave it out; say so instead of failing on first use.
  if (options.entraKeys === undefined) throw new TypeError('entraKeys is required (the Entra emulator signing keys)');
  const { tokenLifetimeSeconds } = options;
  if (
    tokenLifetimeSeconds !== undefined &&
    !(Number.isInteger(tokenLifetimeSeconds) && tokenLifetimeSeconds >= 1 && tokenLifetimeSeconds <= 86_400)
  ) {
    throw new TypeError('tokenLifetimeSeconds must be a whole number from 1 to 86400');
  }
  return { resourceId, accessKey, tenantId, limits: { ...DEFAULT_ACS_LIMITS, ...options.limits }, tokenLifetimeSeconds };
}
