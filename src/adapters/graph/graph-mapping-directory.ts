/**
 * The identity mappings of every user of the tenant, for the admin command (`npm run mappings`):
 * `GET /users?$select=id&$expand=extensions` page by page, following `@odata.nextLink`;
 * `GET /users/{id}?$select=id&$expand=extensions` to read one user's mapping again; and
 * `PATCH /users/{id}/extensions/{name}` to reseal one. Runs on an app-only token (client
 * credentials): listing and reading need the application permission User.Read.All, resealing
 * User.ReadWrite.All.
 */

import { GraphError } from '@microsoft/microsoft-graph-client';

import type { DirectoryEntry, MappingDirectory } from '../../admin/ports';
import { UpstreamError } from '../../errors/app-errors';
import type { StoredMapping } from '../../services/ports';
import type { GraphClient } from './graph-client';
import { ACS_ID_PROPERTY, findMappingExtension, SEAL_PROPERTY, storedMappingOf, translate } from './graph-mapping-store';

export interface GraphMappingDirectoryOptions {
  readonly extensionName: string;
  /** The Graph base URL the client was built with (config.graph.baseUrl); paging links must stay on it. */
  readonly baseUrl: string;
  /** An app-only Graph token. Asked for on every request: msal caches it and renews it before expiry, so a scan may outlast one token. */
  readonly appToken: () => Promise<string>;
}

/** Graph pages directory objects by at most 100 when `$expand` is present, whatever `$top` asks. */
const PAGE_SIZE = 100;
/** Skip tokens are a few hundred characters; anything far longer is not a link Graph made. */
const MAX_NEXT_LINK_LENGTH = 8192;
/** Printable ASCII only: the URL parser drops tabs and newlines that the SDK's own parsing would keep. */
const PLAIN_LINK = /^[\x21-\x7e]+$/;

interface UsersPage {
  readonly value?: unknown;
  readonly '@odata.nextLink'?: unknown;
}

/**
 * The next page's link, if it is one this scan may follow. The token goes wherever the link points,
 * so a link is followed only when it continues the same listing on the configured Graph origin:
 * checked as text (the SDK parses links by hand, not with the URL parser), not by parsing alone.
 */
function followableLink(nextLink: unknown, origin: string): string {
  const prefix = `${origin}/v1.0/users?`;
  if (typeof nextLink === 'string' && nextLink.length <= MAX_NEXT_LINK_LENGTH && PLAIN_LINK.test(nextLink) && nextLink.startsWith(prefix)) {
    return nextLink;
  }
  throw new UpstreamError('graph', 'error', `returned an @odata.nextLink that does not continue ${prefix}…; refusing to follow it`);
}

/** The mapping among a user's extensions, found exactly as the service finds it (unverified). */
function mappingOf(extensions: unknown, extensionName: string): StoredMapping | undefined {
  const extension = findMappingExtension(extensions, extensionName);
  return extension === undefined ? undefined : storedMappingOf(extension);
}

/** The entries of one page; a page without a `value` array, or a user without an id, is not Graph's answer. */
function entriesOf(page: UsersPage, extensionName: string): DirectoryEntry[] {
  if (!Array.isArray(page.value)) throw new UpstreamError('graph', 'error', 'returned a user list page without a value array');
  return (page.value as unknown[]).map((user) => {
    const { id, extensions } = (typeof user === 'object' && user !== null ? user : {}) as { id?: unknown; extensions?: unknown };
    if (typeof id !== 'string' || id === '') throw new UpstreamError('graph', 'error', 'returned a user without an id');
    return { oid: id, mapping: mappingOf(extensions, extensionName) };
  });
}

export function createGraphMappingDirectory(graph: GraphClient, options: GraphMappingDirectoryOptions): MappingDirectory {
  const { extensionName, appToken } = options;
  const origin = new URL(options.baseUrl).origin;

  async function fetchPage(link: string | undefined): Promise<UsersPage> {
    try {
      const token = await appToken();
      const request =
        link === undefined ? graph.api('/users', token).select('id').expand('extensions').top(PAGE_SIZE) : graph.api(link, token);
      return (await request.get()) as UsersPage;
    } catch (error) {
      throw translate(error);
    }
  }

  return {
    async *scan(run = (request) => request()) {
      let link: string | undefined;
      do {
        const current = link;
        const page = await run(() => fetchPage(current));
        const entries = entriesOf(page, extensionName);
        const next = page['@odata.nextLink'] === undefined ? undefined : followableLink(page['@odata.nextLink'], origin);
        // A link back to the page just read would page forever.
        if (next !== undefined && next === link) throw new UpstreamError('graph', 'error', 'returned the same @odata.nextLink twice');
        link = next;
        yield entries;
      } while (link !== undefined);
    },

    async read(oid) {
      let user: { extensions?: unknown };
      try {
        user = (await graph
          .api(`/users/${encodeURIComponent(oid)}`, await appToken())
          .select('id')
          .expand('extensions')
          .get()) as typeof user;
      } catch (error) {
        // The user was deleted since the scan: nothing is mapped any more.
        if (error instanceof GraphError && error.statusCode === 404) return undefined;
        throw translate(error);
      }
      return mappingOf(user.extensions, extensionName);
    },

    async reseal(oid, mapping) {
      try {
        const path = `/users/${encodeURIComponent(oid)}/extensions/${encodeURIComponent(extensionName)}`;
        // PATCH replaces the extension's whole custom-property set: both properties travel together.
        await graph.api(path, await appToken()).patch({ [ACS_ID_PROPERTY]: mapping.acsUserId, [SEAL_PROPERTY]: mapping.seal });
        return 'resealed';
      } catch (error) {
        // The user, or their extension, was deleted since the scan: there is nothing left to seal.
        if (error instanceof GraphError && error.statusCode === 404) return 'gone';
        throw translate(error);
      }
    },
  };
}
