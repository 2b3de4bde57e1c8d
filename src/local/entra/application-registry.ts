/**
 * The app registrations of the emulated tenant: the options checked as strictly as the portal and Graph
 * would check them (GUID ids, no duplicates, only Graph permissions the emulator knows), then resolved
 * into the form the token endpoint needs: lower-case ids, defaults filled in, and uploaded certificates
 * indexed by the thumbprints client assertions name them with.
 *
 * @packageDocumentation
 */
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { isGuid } from '../../validation/formats';
import { canonicalAcsPermission } from './acs-permission-catalog';
import type { RegisteredApplication } from './entra-emulator';
import { canonicalApplicationGraphPermission, canonicalDelegatedGraphPermission } from './graph-permission-catalog';
import { isSpaOrigin, registeredRedirectUri, type RegisteredRedirectUri } from './redirect-uris';

/** A certificate credential of an app registration, indexed the way client assertions name it. */
export interface RegisteredCertificate {
  /** base64url SHA-256 of the DER: the `x5t#S256` header. */
  readonly x5tS256: string;
  /** base64url SHA-1 of the DER: the legacy `x5t` header. */
  readonly x5t: string;
  readonly publicKey: KeyObject;
  readonly validFrom: Date;
  readonly validTo: Date;
  readonly der: Buffer;
}

/** An app registration with its id in lower case and every default applied. */
export interface ResolvedApplication {
  readonly clientId: string;
  readonly clientSecret: string | undefined;
  readonly certificates: readonly RegisteredCertificate[];
  readonly appIdUri: string;
  readonly displayName: string;
  readonly graphDelegatedScopes: readonly string[];
  readonly graphApplicationRoles: readonly string[];
  /** Delegated ACS permissions (`Teams.ManageCalls`, `Teams.ManageChats`) granted to this app, canonically spelled. */
  readonly acsDelegatedScopes: readonly string[];
  /** Redirect URIs of the SPA and Web platforms, in that order. */
  readonly redirectUris: readonly RegisteredRedirectUri[];
  /** Delegated permissions the app exposes as an API, as spelled at registration. */
  readonly exposedScopes: readonly string[];
  /** Format of access tokens issued for this app as a resource. */
  readonly accessTokenVersion: 1 | 2;
}

export class ApplicationRegistry {
  readonly #applications: readonly ResolvedApplication[];

  /**
   * The first registration: the default audience of minted API tokens (the service under test), and the
   * app the local Teams tokens are issued to when the sample SPA is not registered.
   */
  readonly api: ResolvedApplication;

  private constructor(api: ResolvedApplication, applications: readonly ResolvedApplication[]) {
    this.api = api;
    this.#applications = applications;
  }

  /** Checks and resolves the registrations of the options; a TypeError names the first mistake. */
  static fromRegistrations(registrations: readonly RegisteredApplication[]): ApplicationRegistry {
    const noApplications = 'applications must list at least one app registration';
    // Checked at run time too: JavaScript callers and JSON fixtures bypass the type.
    const untypedRegistrations: unknown = registrations;
    if (!Array.isArray(untypedRegistrations)) throw new TypeError(noApplications);
    const seen = new Set<string>();
    const applications = registrations.map((registration) => resolveApplication(registration, seen));
    const [api] = applications;
    if (api === undefined) throw new TypeError(noApplications);
    return new ApplicationRegistry(api, applications);
  }

  /** The registration with this client id (case-insensitive). */
  byClientId(clientId: string): ResolvedApplication | undefined {
    return this.#applications.find((app) => app.clientId === clientId.toLowerCase());
  }

  /** The registration a token audience names: its App ID URI (exact) or its client id. */
  byAudience(audience: string): ResolvedApplication | undefined {
    return this.#applications.find((app) => app.appIdUri === audience || app.clientId === audience.toLowerCase());
  }

  /** True when the origin is that of an SPA redirect URI of any app: the origins the token endpoint answers CORS for. */
  isSpaOriginOfAnyApp(origin: string): boolean {
    return this.#applications.some((app) => isSpaOrigin(app.redirectUris, origin));
  }
}

function resolveApplication(registration: RegisteredApplication, seen: Set<string>): ResolvedApplication {
  if (!isGuid(registration.clientId)) throw new TypeError(`application clientId must be a GUID, got '${String(registration.clientId)}'`);
  const clientId = registration.clientId.toLowerCase();
  if (seen.has(clientId)) throw new TypeError(`application ${clientId} is registered twice`);
  seen.add(clientId);
  if (registration.clientSecret !== undefined && registration.clientSecret === '') {
    throw new TypeError(`application ${clientId}: clientSecret must not be empty`);
  }
  const delegated = canonicalPermissions(registration.graphDelegatedScopes, canonicalDelegatedGraphPermission, (name) => {
    return `application ${clientId}: '${name}' is not a delegated Graph permission the emulator knows`;
  });
  const roles = canonicalPermissions(registration.graphApplicationRoles, canonicalApplicationGraphPermission, (name) => {
    return `application ${clientId}: '${name}' is not a Graph application permission the emulator knows`;
  });
  const acsDelegated = canonicalPermissions(registration.acsDelegatedScopes, canonicalAcsPermission, (name) => {
    return `application ${clientId}: '${name}' is not a delegated Azure Communication Services permission the emulator knows`;
  });
  const certificates = (registration.certificates ?? []).map((certificate, index) =>
    indexCertificate(certificate.certPem, clientId, index),
  );
  const version = registration.accessTokenVersion ?? 1;
  if (version !== 1 && version !== 2) throw new TypeError(`application ${clientId}: accessTokenVersion must be 1 or 2`);
  return {
    clientId,
    clientSecret: registration.clientSecret,
    certificates,
    appIdUri: registration.appIdUri ?? `api://${clientId}`,
    displayName: registration.displayName ?? `app ${clientId.slice(0, 8)}`,
    graphDelegatedScopes: delegated,
    graphApplicationRoles: roles,
    acsDelegatedScopes: acsDelegated,
    redirectUris: [
      ...(registration.spa?.redirectUris ?? []).map((uri) => registeredRedirectUri(uri, 'spa', clientId)),
      ...(registration.web?.redirectUris ?? []).map((uri) => registeredRedirectUri(uri, 'web', clientId)),
    ],
    exposedScopes: exposedScopes(registration.exposedScopes, clientId),
    accessTokenVersion: version,
  };
}

/** Scope names as the portal accepts them: no spaces, not reserved, no repeats (case-insensitively). */
function exposedScopes(names: readonly string[] | undefined, clientId: string): string[] {
  const seen = new Set<string>();
  for (const name of names ?? []) {
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$/.test(name) || name.toLowerCase() === '.default') {
      throw new TypeError(`application ${clientId}: '${String(name)}' is not a valid scope name to expose`);
    }
    if (seen.has(name.toLowerCase())) throw new TypeError(`application ${clientId}: scope '${name}' is exposed twice`);
    seen.add(name.toLowerCase());
  }
  return [...(names ?? [])];
}

/** Permission names in Graph's spelling, without repeats; an unknown name is a TypeError. */
function canonicalPermissions(
  names: readonly string[] | undefined,
  canonicalName: (name: string) => string | undefined,
  unknownNameMessage: (name: string) => string,
): string[] {
  const canonical = (names ?? []).map((name) => {
    const known = canonicalName(name);
    if (known === undefined) throw new TypeError(unknownNameMessage(name));
    return known;
  });
  return [...new Set(canonical)];
}

function indexCertificate(certPem: string, clientId: string, index: number): RegisteredCertificate {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch {
    throw new TypeError(`application ${clientId}: certificates[${index}] is not a PEM certificate`);
  }
  return {
    x5tS256: createHash('sha256').update(x509.raw).digest('base64url'),
    x5t: createHash('sha1').update(x509.raw).digest('base64url'),
    publicKey: x509.publicKey,
    validFrom: new Date(x509.validFrom),
    validTo: new Date(x509.validTo),
    der: x509.raw,
  };
}
