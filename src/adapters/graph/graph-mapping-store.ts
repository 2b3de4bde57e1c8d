import { GraphError } from '@microsoft/microsoft-graph-client';

import { AppError, MappingLimitReachedError, UpstreamError } from '../../errors/app-errors';
import type { MappingStore, MappingTarget, StoredMapping } from '../../services/ports';
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

export function userPath(target: MappingTarget): string {
  return target.via === 'me' ? '/me' : `/users/${encodeURIComponent(target.oid)}`;
}

/** Our extension among a user's, matched by name or id (case-insensitively, as Graph treats directory keys). */
export function findMappingExtension(extensions: unknown, extensionName: string): OpenExtension | undefined {
  if (!Array.isArray(extensions)) return undefined;
  const wanted = extensionName.toLowerCase();
  return (extensions as unknown[]).find(
    (extension): extension is OpenExtension =>
      typeof extension === 'object' &&
      extension !== null &&
      [(extension as OpenExtension).extensionName, (extension as OpenExtension).id].some((name) => typeof name === 'string' && name.toLowerCase() === wanted),
  );
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
    return new UpstreamError('graph', 'error', `refused the request (${error.statusCode} ${error.code ?? ''}); check the app's Graph permissions`, {
      cause: error,
    });
  }
  return fromUpstreamStatus('graph', error.statusCode, error.headers?.get('retry-after'), error);
}

export function createGraphMappingStore(graph: GraphClient, options: GraphMappingStoreOptions): MappingStore {
  const { extensionName } = options;

  return {
    async read(target) {
      let user: { extensions?: unknown };
      try {
        user = (await graph.api(userPath(target), target.graphToken).select('id').expand('extensions').get()) as typeof user;
      } catch (error) {
        // Admin erasure of a user that does not exist (any more): there is nothing mapped.
        if (target.via === 'user' && error instanceof GraphError && error.statusCode === 404) return undefined;
        throw translate(error);
      }
      const extension = findMappingExtension(user.extensions, extensionName);
      return extension === undefined ? undefined : storedMappingOf(extension);
    },

    async create(target, mapping) {
      try {
        await graph.api(`${userPath(target)}/extensions`, target.graphToken).post({
          '@odata.type': 'microsoft.graph.openTypeExtension',
          extensionName,
          [ACS_ID_PROPERTY]: mapping.acsUserId,
          [SEAL_PROPERTY]: mapping.seal,
        });
        return 'created';
      } catch (error) {
        if (error instanceof GraphError && error.statusCode === 400) {
          const message = messageOf(error);
          if (/already exists/i.test(message)) return 'exists';
          if (/maximum number of extensions/i.test(message)) throw new MappingLimitReachedError({ cause: error });
        }
        throw translate(error);
      }
    },

    async remove(target) {
      try {
        await graph.api(`${userPath(target)}/extensions/${encodeURIComponent(extensionName)}`, target.graphToken).delete();
      } catch (error) {
        if (error instanceof GraphError && error.statusCode === 404) return;
        throw translate(error);
      }
    },
  };
}
