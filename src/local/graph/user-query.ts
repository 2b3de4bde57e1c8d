/**
 * The OData query options the Graph emulator understands on users (`$select`, `$expand=extensions`)
 * and the user projection they produce. One home for both routes that return users, the single
 * user (`/me`, `/users/{id}`) and the list (`/users`), so the two cannot drift apart.
 *
 * @packageDocumentation
 */
import type { Request } from 'express';
import { GraphEmulatorError } from './graph-emulator-error';
import { USER_PROPERTIES, type GraphUser } from './graph-user-directory';
import { extensionResource, type OpenExtensionStore } from './open-extension-store';

export interface UserQuery {
  /** Canonical property names, in request order; undefined for the default projection. */
  readonly select: readonly string[] | undefined;
  readonly expandExtensions: boolean;
  /** From `$expand=extensions($filter=id eq '…')`. */
  readonly extensionIdFilter: string | undefined;
}

/**
 * One query option as a string. Express parses a repeated option into an array; Graph refuses a
 * repeated system query option, and taking either copy would silently answer another question.
 */
export function singleQueryOption(req: Request, name: string): string | undefined {
  const value = (req.query as Record<string, unknown>)[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new GraphEmulatorError(
      400,
      'BadRequest',
      `Query option '${name}' was specified more than once, but it must be specified at most once.`,
    );
  }
  return value;
}

function selectExpandError(name: string): GraphEmulatorError {
  return new GraphEmulatorError(
    400,
    'BadRequest',
    `Parsing OData Select and Expand failed: Could not find a property named '${name}' on type 'microsoft.graph.user'.`,
  );
}

const CANONICAL_PROPERTIES = new Map([...USER_PROPERTIES].map((name) => [name.toLowerCase(), name]));

function parseSelect(rawSelect: string | undefined): string[] | undefined {
  if (rawSelect === undefined) return undefined;
  const select: string[] = [];
  for (const part of rawSelect.split(',')) {
    const name = part.trim();
    const canonical = CANONICAL_PROPERTIES.get(name.toLowerCase());
    if (canonical === undefined) throw selectExpandError(name);
    if (!select.includes(canonical)) select.push(canonical);
  }
  return select;
}

/** Parse `$select` and `$expand` as Graph does for a user or a collection of users. */
export function parseUserQuery(req: Request): UserQuery {
  const select = parseSelect(singleQueryOption(req, '$select'));
  const rawExpand = singleQueryOption(req, '$expand');
  if (rawExpand === undefined) return { select, expandExtensions: false, extensionIdFilter: undefined };
  const expand = /^\s*extensions(?:\((.*)\))?\s*$/i.exec(rawExpand);
  if (expand === null) throw selectExpandError(rawExpand.split('(')[0]?.trim() ?? rawExpand);
  let extensionIdFilter: string | undefined;
  const inner = expand[1]?.trim();
  if (inner !== undefined && inner !== '') {
    const quotedId = /^\$filter\s*=\s*id\s+eq\s+'((?:[^']|'')*)'$/i.exec(inner)?.[1];
    if (quotedId === undefined) {
      throw new GraphEmulatorError(
        400,
        'BadRequest',
        `Invalid $expand options for 'extensions': only $filter=id eq '{name}' is supported.`,
      );
    }
    extensionIdFilter = quotedId.replaceAll("''", "'");
  }
  // Graph documents that $select must include id when expanding extensions on users (opentypeextension-get.md).
  if (select !== undefined && !select.includes('id')) {
    throw new GraphEmulatorError(
      400,
      'Request_BadRequest',
      "The $select query option must include 'id' when $expand=extensions is requested.",
    );
  }
  return { select, expandExtensions: true, extensionIdFilter };
}

/**
 * The `@odata.context` fragment after `$metadata#` for users under this query: `users` for the
 * default projection, else `users(id,extensions())`. Append `/$entity` for a single user.
 */
export function usersContext(query: UserQuery): string {
  const projection = query.select === undefined ? [] : [...query.select];
  if (query.expandExtensions) projection.push('extensions()');
  return projection.length === 0 ? 'users' : `users(${projection.join(',')})`;
}

/**
 * A user as Graph returns it under this query. Expanded extensions are always an array (the hero
 * sample reads `extensions.length` directly). Graph documents a 20-item cap on `$expand` of
 * directory-object relationships; whether it covers open extensions is unconfirmed, and with two
 * extensions per app it is out of reach in practice, so it is not modelled.
 */
export function userResource(user: GraphUser, query: UserQuery, store: OpenExtensionStore): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const name of query.select ?? [...USER_PROPERTIES]) body[name] = user[name as keyof GraphUser];
  if (query.expandExtensions) {
    const wanted = query.extensionIdFilter?.toLowerCase();
    body['extensions'] = store
      .list(user.id)
      .filter((extension) => wanted === undefined || extension.id.toLowerCase() === wanted)
      .map(extensionResource);
  }
  return body;
}
