/**
 * The emulated tenant that every endpoint module works against: its id and issuers, its app
 * registrations and users, its signing keys and the sign-in requirements tests arm. It is one object so
 * that each endpoint module takes one argument. It is built before the server listens, and the base URL
 * is known only once it does, so everything derived from the URL is a method rather than a field.
 *
 * @packageDocumentation
 */
import type { Request } from 'express';
import { isGuid } from '../../validation/formats';
import { DEMO_USERS, LOCAL_TENANT_ID } from '../local-directory';
import { AadError } from './aad-error';
import { ApplicationRegistry } from './application-registry';
import type { AuthorizationRequest } from './authorization-request';
import { AuthorizationCodes } from './authorization-codes';
import { BrowserSessions, PendingSignIns } from './browser-sessions';
import type { EntraEmulatorOptions } from './entra-emulator';
import { stableGuid } from './entra-token-claims';
import { InteractionRequirements } from './interaction-requirements';
import { RefreshTokens } from './refresh-tokens';
import { SigningKeySet } from './signing-keys';
import { UserDirectory } from './user-directory';

export class EntraTenant {
  #baseUrl = '';

  /** `https://sts.windows.net/{tid}/`, as in Entra's v1 metadata and v1 tokens. */
  readonly issuerV1: string;

  readonly interactions = new InteractionRequirements();

  /** Sign-in state: codes, refresh tokens, signed-in browsers and sign-in pages awaiting a choice. */
  readonly codes: AuthorizationCodes;
  readonly refreshTokens: RefreshTokens;
  readonly sessions = new BrowserSessions();
  readonly signIns: PendingSignIns<AuthorizationRequest>;

  private constructor(
    readonly tenantId: string,
    readonly applications: ApplicationRegistry,
    readonly users: UserDirectory,
    readonly keys: SigningKeySet,
    /** The emulator's clock, epoch milliseconds. */
    readonly now: () => number,
  ) {
    this.issuerV1 = `https://sts.windows.net/${tenantId}/`;
    this.codes = new AuthorizationCodes(now);
    this.refreshTokens = new RefreshTokens(now);
    this.signIns = new PendingSignIns(now);
  }

  /** Checks the options (a TypeError for a non-GUID id or a bad registration) and creates keys when none are given. */
  static async create(options: EntraEmulatorOptions): Promise<EntraTenant> {
    const tenantId = (options.tenantId ?? LOCAL_TENANT_ID).toLowerCase();
    if (!isGuid(tenantId)) throw new TypeError(`tenantId must be a GUID, got '${String(tenantId)}'`);
    const applications = ApplicationRegistry.fromRegistrations(options.applications);
    const users = new UserDirectory(options.users ?? Object.values(DEMO_USERS));
    const keys = options.keys ?? (await SigningKeySet.create());
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new TypeError('clock must be a function');
    return new EntraTenant(tenantId, applications, users, keys, options.clock ?? Date.now);
  }

  /** Called once the server listens; until then the URL is empty. */
  listeningAt(url: string): void {
    this.#baseUrl = url;
  }

  /** The emulator's base URL (the authority host), e.g. `https://127.0.0.1:49152`. */
  baseUrl(): string {
    return this.#baseUrl;
  }

  /** `${url}/{tid}/v2.0`: on the authority's own host, as in the cloud. */
  issuerV2(): string {
    return `${this.#baseUrl}/${this.tenantId}/v2.0`;
  }

  /** The v2 token endpoint, also the audience client assertions must name. */
  tokenEndpoint(): string {
    return `${this.#baseUrl}/${this.tenantId}/oauth2/v2.0/token`;
  }

  /** The emulator's clock in epoch seconds, as token times are written. */
  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /** The stable service principal object id of an app (the `oid` of its app-only tokens). */
  servicePrincipalId(clientId: string): string {
    return stableGuid(`service-principal|${this.tenantId}|${clientId.toLowerCase()}`);
  }

  /** Refuses a request whose `:tenant` path segment is neither this tenant's id nor one of the aliases allowed. */
  requireTenant(req: Request, alsoAllowed: readonly string[] = []): void {
    const tenant = String(req.params['tenant'] ?? '');
    if (tenant.toLowerCase() === this.tenantId || alsoAllowed.includes(tenant.toLowerCase())) return;
    throw new AadError(
      400,
      'invalid_tenant',
      90002,
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
    );
  }
}
