import { GraphEmulatorError } from './graph-emulator-error';

/**
 * Open extensions on users, with Graph's validation and limits (two per app per user, 2048 bytes),
 * which is where this service keeps its user-to-identity mappings. The limits are the point: a client
 * that would hit them on Graph hits them here first.
 *
 * @packageDocumentation
 */

/** A custom property value: Graph allows primitives and arrays of primitives on open extensions. */
export type ExtensionPrimitive = string | number | boolean;
export type ExtensionValue = ExtensionPrimitive | readonly ExtensionPrimitive[];

/** An open extension as the emulator stores it. */
export interface StoredExtension {
  /** `id` on directory objects equals `extensionName`. */
  readonly id: string;
  readonly extensionName: string;
  /** Client id (`appid`) of the app that created it: the two-per-app limit is counted on it. */
  readonly appId: string;
  readonly properties: Readonly<Record<string, ExtensionValue>>;
}

/** An extension to seed: `extensionName` plus its custom properties, as a client would POST them. */
export type ExtensionSeed = { readonly extensionName: string } & Readonly<Record<string, ExtensionValue>>;

/** Graph's documented limits for open extensions on users (concepts/extensibility-overview.md). */
export const MAX_EXTENSIONS_PER_APP = 2;
export const MAX_EXTENSION_BYTES = 2048;

const OPEN_TYPE = 'microsoft.graph.openTypeExtension';

function badRequest(message: string): GraphEmulatorError {
  return new GraphEmulatorError(400, 'Request_BadRequest', message);
}

function isPrimitive(value: unknown): value is ExtensionPrimitive {
  return typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * Validate custom properties. `null` means "absent" (PATCH clears a property with it); OData
 * annotations (`name@odata.type`) describe values and are not stored.
 */
function parseProperties(body: Readonly<Record<string, unknown>>): Record<string, ExtensionValue> {
  const properties: Record<string, ExtensionValue> = {};
  for (const [name, value] of Object.entries(body)) {
    if (name === '@odata.type' || name === 'extensionName' || name.includes('@')) continue;
    // `id` is read-only and always equals extensionName on users; unconfirmed whether Graph ignores or rejects it: ignored.
    if (name === 'id' || value === null) continue;
    if (isPrimitive(value)) {
      properties[name] = value;
      continue;
    }
    // Collections in open types are typed (Collection(String) etc.), so a mixed array is refused; unconfirmed.
    if (Array.isArray(value) && value.every(isPrimitive) && new Set(value.map((item) => typeof item)).size <= 1) {
      properties[name] = Object.freeze([...value]);
      continue;
    }
    throw badRequest(`Invalid value for property '${name}': open extension values must be primitives or arrays of primitives of one type.`);
  }
  return properties;
}

function assertObject(body: unknown): Readonly<Record<string, unknown>> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new GraphEmulatorError(400, 'BadRequest', 'Empty Payload. JSON content expected.');
  }
  return body as Readonly<Record<string, unknown>>;
}

function assertOpenType(body: Readonly<Record<string, unknown>>, required: boolean): void {
  const type = body['@odata.type'];
  if (type === undefined && !required) return;
  if (typeof type !== 'string' || type.replace(/^#/, '') !== OPEN_TYPE) {
    throw badRequest(`Invalid '@odata.type': expected '${OPEN_TYPE}'.`);
  }
}

function assertSize(extensionName: string, properties: Readonly<Record<string, ExtensionValue>>): void {
  // Measured as the stored JSON (name plus custom properties); Graph's exact accounting is unconfirmed.
  const bytes = Buffer.byteLength(JSON.stringify({ extensionName, ...properties }), 'utf8');
  if (bytes > MAX_EXTENSION_BYTES) {
    throw badRequest(`The size of the extension exceeds the maximum allowed size of ${MAX_EXTENSION_BYTES} bytes.`);
  }
}

function notFound(): GraphEmulatorError {
  return new GraphEmulatorError(404, 'ResourceNotFound', 'Extension with given id not found.');
}

/**
 * Open extensions per user (`oid`). Ids are matched case-insensitively, like other directory
 * keys; whether Graph does so for extension names is unconfirmed.
 */
export class OpenExtensionStore {
  readonly #byUser = new Map<string, Map<string, StoredExtension>>();

  #bag(oid: string): Map<string, StoredExtension> {
    let bag = this.#byUser.get(oid);
    if (bag === undefined) {
      bag = new Map();
      this.#byUser.set(oid, bag);
    }
    return bag;
  }

  /** Extensions on a user, in creation order. */
  list(oid: string): readonly StoredExtension[] {
    return [...(this.#byUser.get(oid)?.values() ?? [])];
  }

  get(oid: string, id: string): StoredExtension {
    const found = this.#byUser.get(oid)?.get(id.toLowerCase());
    if (found === undefined) throw notFound();
    return found;
  }

  /** POST: validate a create body and store it for `appId`; enforces the per-app and size limits. */
  create(oid: string, appId: string, rawBody: unknown): StoredExtension {
    const body = assertObject(rawBody);
    assertOpenType(body, true);
    const extensionName = body['extensionName'];
    if (typeof extensionName !== 'string' || extensionName.trim() === '') {
      throw badRequest("The property 'extensionName' is required and must be a non-empty string.");
    }
    const properties = parseProperties(body);
    const bag = this.#bag(oid);
    if (bag.has(extensionName.toLowerCase())) throw badRequest('An extension already exists with given id.');
    const ownedByApp = [...bag.values()].filter((extension) => extension.appId === appId).length;
    if (ownedByApp >= MAX_EXTENSIONS_PER_APP) {
      // Message reported by real users (SharePoint/sp-dev-docs#3328); status and code are unconfirmed.
      throw badRequest(`Maximum number of extensions values supported per application is ${MAX_EXTENSIONS_PER_APP}.`);
    }
    assertSize(extensionName, properties);
    const stored: StoredExtension = Object.freeze({ id: extensionName, extensionName, appId, properties: Object.freeze(properties) });
    bag.set(extensionName.toLowerCase(), stored);
    return stored;
  }

  /** PATCH: the body replaces the whole custom-property set (properties left out are deleted). */
  replace(oid: string, id: string, rawBody: unknown): StoredExtension {
    const current = this.get(oid, id);
    const body = assertObject(rawBody);
    assertOpenType(body, false);
    const extensionName = body['extensionName'];
    if (
      extensionName !== undefined &&
      (typeof extensionName !== 'string' || extensionName.toLowerCase() !== current.extensionName.toLowerCase())
    ) {
      // Renaming would change the id; unconfirmed how Graph answers, refused here.
      throw badRequest("The property 'extensionName' cannot be changed.");
    }
    const properties = parseProperties(body);
    assertSize(current.extensionName, properties);
    const updated: StoredExtension = Object.freeze({ ...current, properties: Object.freeze(properties) });
    this.#bag(oid).set(current.extensionName.toLowerCase(), updated);
    return updated;
  }

  delete(oid: string, id: string): void {
    if (!this.#byUser.get(oid)?.delete(id.toLowerCase())) throw notFound();
  }

  /** Seed an extension as if `appId` had created it (no per-app limit, so tests can model legacy data). */
  seed(oid: string, appId: string, seed: ExtensionSeed): StoredExtension {
    const { extensionName } = seed;
    if (typeof extensionName !== 'string' || extensionName === '') throw new TypeError('extensionName is required');
    const properties = parseProperties(seed);
    const stored: StoredExtension = Object.freeze({ id: extensionName, extensionName, appId, properties: Object.freeze(properties) });
    this.#bag(oid).set(extensionName.toLowerCase(), stored);
    return stored;
  }

  reset(): void {
    this.#byUser.clear();
  }
}

/** The wire form of an extension, as Graph returns it (inside `$expand` or as an entity). */
export function extensionResource(extension: StoredExtension): Record<string, unknown> {
  return {
    '@odata.type': `#${OPEN_TYPE}`,
    extensionName: extension.extensionName,
    id: extension.id,
    ...extension.properties,
  };
}
