/**
 * `GET /v1.0/users` for the Graph emulator: the page an admin tool with an app-only token walks to
 * find every user's open extensions, with Graph's page sizes, `@odata.nextLink` paging and errors.
 *
 * Real-Graph facts modelled here (sources in the comments below):
 * - the default page size for users is 100 and `$top` must be 1..999, else 400
 *   `Request_UnsupportedQuery` "Invalid page size specified: '…'. Must be between 1 and 999 inclusive.";
 * - with `$expand` a page of directory objects holds at most 100 objects, whatever `$top` asks;
 * - the next link is an absolute URL carrying an opaque `$skiptoken` (`X'…'`, hex) plus every other
 *   query option of the request.
 *
 * @packageDocumentation
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { requirePermission, type GraphCaller } from './graph-caller';
import { GraphEmulatorError } from './graph-emulator-error';
import type { GraphUser, GraphUserDirectory } from './graph-user-directory';
import type { OpenExtensionStore } from './open-extension-store';
import { parseUserQuery, singleQueryOption, userResource, usersContext, type UserQuery } from './user-query';

/** Page size without `$top` (user-list.md, the paging docs: "The default page size is 100"). */
export const DEFAULT_USERS_PAGE_SIZE = 100;
/** Largest `$top` Graph accepts for users; larger (or below 1) is a 400. */
export const MAX_USERS_PAGE_SIZE = 999;
/**
 * Largest page when `$expand` is present: Graph known issue 13635, "$expand on directory objects:
 * returns a maximum of 100 objects", so `$top=999&$expand=…` still pages by 100 without an error.
 */
export const MAX_EXPANDED_USERS_PAGE_SIZE = 100;

/** The only system query options this route understands; `$skiptoken` is spelt as Graph's own links spell it. */
const SUPPORTED_OPTIONS: ReadonlySet<string> = new Set(['$select', '$expand', '$top', '$skiptoken']);

interface ListQuery extends UserQuery {
  readonly top: number | undefined;
  readonly skipToken: string | undefined;
}

/**
 * Refuse system query options the emulator does not implement. Graph supports `$filter`,
 * `$orderby`, `$count` and `$search` here; ignoring them would hand back an unfiltered list that
 * looks like an answer, so they are refused. Option names are matched exactly: whether Graph also
 * accepts other spellings (`$skipToken`) is unconfirmed, and a silently ignored token would loop a
 * client on page one forever.
 */
function assertSupportedOptions(req: Request): void {
  for (const name of Object.keys(req.query)) {
    if (name.startsWith('$') && !SUPPORTED_OPTIONS.has(name)) {
      throw new GraphEmulatorError(
        400,
        'Request_UnsupportedQuery',
        `The query option '${name.slice(0, 40)}' is not supported on /users by the Graph emulator.`,
      );
    }
  }
}

/**
 * `$top` as Graph validates it for directory objects. Status, code and message are Graph's, as
 * quoted by turbot/steampipe-plugin-azuread (azuread/table_azuread_user.go, for `$top=1000` on
 * users) and microsoftgraph/entra-powershell (AdditionalFunctions/Get-EntraPolicy.ps1, for 0).
 * A non-numeric `$top` answering the same error is unconfirmed.
 */
function parseTop(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const top = /^\s*\d{1,4}\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(top >= 1 && top <= MAX_USERS_PAGE_SIZE)) {
    throw new GraphEmulatorError(
      400,
      'Request_UnsupportedQuery',
      `Invalid page size specified: '${raw.slice(0, 40)}'. Must be between 1 and ${MAX_USERS_PAGE_SIZE} inclusive.`,
    );
  }
  return top;
}

function parseListQuery(req: Request): ListQuery {
  assertSupportedOptions(req);
  const userQuery = parseUserQuery(req);
  return { ...userQuery, top: parseTop(singleQueryOption(req, '$top')), skipToken: singleQueryOption(req, '$skiptoken') };
}

/** How many users one page holds under this query. */
function pageSizeOf(query: ListQuery): number {
  const size = query.top ?? DEFAULT_USERS_PAGE_SIZE;
  return query.expandExtensions ? Math.min(size, MAX_EXPANDED_USERS_PAGE_SIZE) : size;
}

/**
 * Graph's answer to a skip token it cannot use: `{"code":"","message":"Invalid Skip Token"}`, as
 * reported in microsoftgraph/microsoft-graph-docs#8612 (the status was not shown there; 400 is
 * assumed, unconfirmed).
 */
function invalidSkipToken(): GraphEmulatorError {
  return new GraphEmulatorError(400, '', 'Invalid Skip Token');
}

const TOKEN_VERSION = 1;
const QUERY_KEY_BYTES = 16;
const MAC_BYTES = 32;
/** Bound on the token's hex text, checked before any decoding (ids are 36-character GUIDs). */
const MAX_TOKEN_HEX = 2048;

/**
 * Opaque skip tokens: the id of the last user a page returned, bound to the query that produced it
 * and sealed with an HMAC under a per-emulator key. Resuming after an id (not an offset) keeps
 * paging stable while users are added; the seal makes a tampered or foreign token a 400 instead of
 * a jump to an arbitrary position. Binding to the query is the strict reading of the paging
 * docs ("Do not try to extract the $skiptoken … and use it in a different request"): whether Graph
 * refuses such reuse is unconfirmed. Tokens never expire here; real ones may
 * (`Directory_ExpiredPageToken` reports), unconfirmed how soon.
 */
class SkipTokens {
  readonly #key = randomBytes(32);

  /** A fingerprint of the options that shape the result, so a token only resumes the same query. */
  static queryKey(query: ListQuery): Buffer {
    const shape = JSON.stringify([query.select ?? null, query.expandExtensions, query.extensionIdFilter ?? null, query.top ?? null]);
    return createHash('sha256').update(shape).digest().subarray(0, QUERY_KEY_BYTES);
  }

  /** `X'…'` with upper-case hex, the shape of Graph's directory skip tokens. */
  encode(afterId: string, queryKey: Buffer): string {
    const body = Buffer.concat([Buffer.from([TOKEN_VERSION]), queryKey, Buffer.from(afterId, 'utf8')]);
    const mac = createHmac('sha256', this.#key).update(body).digest();
    return `X'${Buffer.concat([body, mac]).toString('hex').toUpperCase()}'`;
  }

  /** The id to resume after; throws Graph's 400 for anything this emulator did not mint for this query. */
  decode(token: string, queryKey: Buffer): string {
    const hex = /^X'([0-9A-Fa-f]+)'$/.exec(token)?.[1];
    if (hex === undefined || hex.length > MAX_TOKEN_HEX || hex.length % 2 !== 0) throw invalidSkipToken();
    const bytes = Buffer.from(hex, 'hex');
    if (bytes.length <= 1 + QUERY_KEY_BYTES + MAC_BYTES) throw invalidSkipToken();
    const body = bytes.subarray(0, bytes.length - MAC_BYTES);
    const expected = createHmac('sha256', this.#key).update(body).digest();
    if (!timingSafeEqual(expected, bytes.subarray(bytes.length - MAC_BYTES))) throw invalidSkipToken();
    if (body[0] !== TOKEN_VERSION || !body.subarray(1, 1 + QUERY_KEY_BYTES).equals(queryKey)) throw invalidSkipToken();
    return body.subarray(1 + QUERY_KEY_BYTES).toString('utf8');
  }
}

function isSkipTokenSegment(segment: string): boolean {
  const name = segment.split('=', 1)[0] ?? '';
  try {
    return decodeURIComponent(name) === '$skiptoken';
  } catch {
    return false;
  }
}

/**
 * The next page's absolute URL: the request's own query options, exactly as sent, with the skip
 * token replaced. Graph's links carry "all the other query parameters present in the original
 * request" (paging.md), and clients such as the SDK's PageIterator follow them verbatim.
 */
function nextLinkOf(req: Request, baseUrl: string, token: string): string {
  const queryAt = req.originalUrl.indexOf('?');
  const kept = queryAt === -1 ? [] : req.originalUrl.slice(queryAt + 1).split('&');
  const segments = kept.filter((segment) => segment !== '' && !isSkipTokenSegment(segment));
  // encodeURIComponent leaves quotes alone; Graph's links show them as %27.
  segments.push(`$skiptoken=${encodeURIComponent(token).replaceAll("'", '%27')}`);
  return `${baseUrl}/v1.0/users?${segments.join('&')}`;
}

/** Index of the first user after `afterId` in id order (the list is sorted by {@link GraphUserDirectory.listById}). */
function startAfter(users: readonly GraphUser[], afterId: string | undefined): number {
  if (afterId === undefined) return 0;
  const index = users.findIndex((user) => user.id > afterId);
  return index === -1 ? users.length : index;
}

/** Pages of the directory's users for `GET /v1.0/users`. One per emulator: it owns the skip-token key. */
export class UserListing {
  readonly #directory: GraphUserDirectory;
  readonly #store: OpenExtensionStore;
  readonly #tokens = new SkipTokens();

  constructor(directory: GraphUserDirectory, store: OpenExtensionStore) {
    this.#directory = directory;
    this.#store = store;
  }

  /**
   * The response body for one page. Validates the query (400), then the caller's permission (403),
   * then the skip token (400), the order `getUser` uses for the single user.
   */
  page(req: Request, caller: GraphCaller, baseUrl: string): Record<string, unknown> {
    const query = parseListQuery(req);
    requirePermission(caller, 'list');
    const queryKey = SkipTokens.queryKey(query);
    const afterId = query.skipToken === undefined ? undefined : this.#tokens.decode(query.skipToken, queryKey);
    const users = this.#directory.listById();
    const start = startAfter(users, afterId);
    const page = users.slice(start, start + pageSizeOf(query));
    const body: Record<string, unknown> = { '@odata.context': `${baseUrl}/v1.0/$metadata#${usersContext(query)}` };
    const last = page[page.length - 1];
    if (last !== undefined && start + page.length < users.length) {
      body['@odata.nextLink'] = nextLinkOf(req, baseUrl, this.#tokens.encode(last.id, queryKey));
    }
    body['value'] = page.map((user) => userResource(user, query, this.#store));
    return body;
  }
}
