import { GraphError } from '@microsoft/microsoft-graph-client';

import { AppError, MappingLimitReachedError, UpstreamError } from '../../errors/app-errors';
import type { GraphTokenSource, MappingStore, MappingTarget, StoredMapping } from '../../services/ports';
import { fromTransportFailure, fromUpstreamStatus } from '../upstream-errors';
import type { GraphClient } from './graph-client';

/**
 * The identity mapping as a Microsoft Graph open extension on the user, in the format the original
 * hero sample wrote (`extensionName` + `acsUserIdentity`), so existing data keeps working.
 */
export interface GraphMappingStoreOptions {
  readonly extensionName: string;
}

/** The property of the extension that holds the ACS user id. */
export const ACS_ID_PROPERTY = 'acsUserIdentity';
/** The property that holds the mapping's seal (services/mapping-seal.ts); the original sample ignores it. */
export const SEAL_PROPERTY = 'acsUserIdentitySeal';

export interface OpenExtension {
  readonly id?: unknown;
  readonly extensionName?: unknown;
  readonly [property: string]: unknown;
}

/** A target of this store: the user, and the Graph token to reach them with (On-Behalf-Of for `/me`, app-only for `/users/{id}`). */
export interface GraphMappingTarget extends MappingTarget {
  readonly graphToken: string;
}

/** The token inside a target; every target this store is given was made by it (ports.ts). */
function graphTarget(target: MappingTarget): GraphMappingTarget {
  if (!('graphToken' in target) || typeof target.graphToken !== 'string') {
    throw new TypeError('the Graph mapping store was given a target it did not make');
  }
  return target as GraphMappingTarget;
}

export function userPath(target: MappingTarget): string {
  return target.via === 'me' ? '/me' : `/users/${encodeURIComponent(target.oid)}`;
}

function namesOf(extension: unknown): string[] {
  if (typeof extension !== 'object' || extension === null) return [];
  const { extensionName, id } = extension as OpenExtension;
  return [extensionName, id].filter((name): name is string => typeof name === 'string');
}

/**
 * Our extension among a user's. An exact match of the configured name wins; otherwise the first
 * that matches ignoring case (whether Graph treats extension names case-insensitively is
 * unconfirmed). Where names are case-sensitive a user could add a decoy in other letter case: the
 * exact match keeps reads, writes and deletes on the one extension this service writes, and a
 * variant is only used when it is the only candidate (then it is deleted by its own id).
 */
export function findMappingExtension(extensions: unknown, extensionName: string): OpenExtension | undefined {
  if (!Array.isArray(extensions)) return undefined;
  const candidates = (extensions as unknown[]).filter((extension): extension is OpenExtension => namesOf(extension).length > 0);
  const wanted = extensionName.toLowerCase();
  return (
    candidates.find((extension) => namesOf(extension).includes(extensionName)) ??
    candidates.find((extension) => namesOf(extension).some((name) => name.toLowerCase() === wanted))
  );
}

/** The id to address an extension by in a URL: its `id`, else its name (on users they are equal). */
function idOf(extension: OpenExtension, fallback: string): string {
  return typeof extension.id === 'string' && extension.id !== ''
    ? extension.id
    : typeof extension.extensionName === 'string'
      ? extension.extensionName
      : fallback;
}

/** The mapping held by an extension, unverified; both values as Graph returned them. */
export function storedMappingOf(extension: OpenExtension): StoredMapping {
  return { acsUserId: extension[ACS_ID_PROPERTY], seal: extension[SEAL_PROPERTY] };
}

function messageOf(error: GraphError): string {
  return typeof error.message === 'string' ? error.message : '';
}

/** Translate a Graph failure the store has no specific meaning for. */
export function translate(error: unknown): Error {
  if (error instanceof AppError) return error;
  if (!(error instanceof GraphError)) return fromTransportFailure('graph', error);
  if (error.statusCode === -1) return fromTransportFailure('graph', error);
  if (error.statusCode === 401 || error.statusCode === 403) {
    // Graph refused the token this service obtained: a consent or permission problem of the
    // deployment (User.ReadWrite delegated, User.ReadWrite.All for admin erasure), not the caller's.
    return new UpstreamError(
      'graph',
      'error',
      `refused the request (${error.statusCode} ${error.code ?? ''}); check the app's Graph permissions`,
      {
        cause: error,
      },
    );
  }
  return fromUpstreamStatus('graph', error.statusCode, error.headers?.get('retry-after'), error);
}

export function createGraphMappingStore(
  graph: GraphClient,
  graphTokens: GraphTokenSource,
  options: GraphMappingStoreOptions,
): MappingStore {
  const { extensionName } = options;

  /** The user's mapping extension as Graph has it now, or undefined (none, or the user is gone). */
  async function currentExtension(target: MappingTarget): Promise<OpenExtension | undefined> {
    let user: { extensions?: unknown };
    try {
      user = (await graph.api(userPath(target), graphTarget(target).graphToken).select('id').expand('extensions').get()) as typeof user;
    } catch (error) {
      // Admin erasure of a user that does not exist (any more): there is nothing mapped.
      if (target.via === 'user' && error instanceof GraphError && error.statusCode === 404) return undefined;
      throw translate(error);
    }
    return findMappingExtension(user.extensions, extensionName);
  }

  return {
    async targetOfCaller(caller): Promise<GraphMappingTarget> {
      return { via: 'me', tid: caller.tid, oid: caller.oid, graphToken: await graphTokens.forUser(caller.assertion) };
    },

    async targetOfUser(tid, oid): Promise<GraphMappingTarget> {
      return { via: 'user', tid, oid, graphToken: await graphTokens.forApp() };
    },

    async read(target) {
      const extension = await currentExtension(target);
      return extension === undefined ? undefined : storedMappingOf(extension);
    },

    async create(target, mapping) {
      try {
        await graph.api(`${userPath(target)}/extensions`, graphTarget(target).graphToken).post({
          '@odata.type': 'microsoft.graph.openTypeExtension',
          extensionName,
          [ACS_ID_PROPERTY]: mapping.acsUserId,
          [SEAL_PROPERTY]: mapping.seal,
        });
        return 'created';
      } catch (error) {
        if (error instanceof GraphError && error.statusCode === 400) {
          const message = messageOf(error);
          // Ours, when the Graph client retried a POST whose first answer (a 503, 504) came after the write
          // landed: the retry then meets our own extension. Anyone else's: another create won.
          if (/already exists/i.test(message))
            return (await currentExtension(target))?.[ACS_ID_PROPERTY] === mapping.acsUserId ? 'created' : 'exists';
          if (/maximum number of extensions/i.test(message)) throw new MappingLimitReachedError({ cause: error });
        }
        throw translate(error);
      }
    },

    async remove(target, when) {
      // Read first: to delete the extension by the id Graph has for it, and to check `when` on what is
      // there now rather than on what the caller read earlier (another request may have replaced it).
      const extension = await currentExtension(target);
      if (extension === undefined) return 'absent';
      if (when !== undefined && !when(storedMappingOf(extension))) return 'kept';
      try {
        await graph
          .api(`${userPath(target)}/extensions/${encodeURIComponent(idOf(extension, extensionName))}`, graphTarget(target).graphToken)
          .delete();
      } catch (error) {
        if (!(error instanceof GraphError && error.statusCode === 404)) {
          // The delete may have been applied with its answer lost (a dropped connection, a timeout):
          // if the extension is gone now, it was removed; otherwise report the failure.
          if ((await currentExtension(target).catch(() => extension)) !== undefined) throw translate(error);
        }
      }
      return 'removed';
    },
  };
}
