import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { isRestError, type RestError } from '@azure/core-rest-pipeline';

import { AppError, IdentityMappedElsewhereError, UpstreamError } from '../../errors/app-errors';
import type { MappingStore, MappingTarget, SealedMapping, StoredMapping } from '../../services/ports';
import { ORIGINAL_RETRY_AFTER } from '../retry-after-cap';
import { fromCredentialFailure, fromTransportFailure, fromUpstreamStatus } from '../upstream-errors';

/**
 * The identity mappings in an Azure Table Storage table that only this service can write (its managed
 * identity holds Storage Table Data Contributor; users hold nothing). Unlike the Graph open extension,
 * nobody but the service can change a row, so the store's access control is what makes a mapping
 * trustworthy, and no On-Behalf-Of, Graph call or Entra credential is needed.
 *
 * Layout, one partition per tenant (PartitionKey = tid):
 * - `user:<oid>`: the user's mapping: `acsUserId`, and `acsResource`, the ACS resource it was made in
 *   (the "seal" of this store: services/mapping-seal.ts `createOwnedStoreSealer`).
 * - `identity:<acsUserId>`: which user the identity is mapped to (`oid`). Written in one transaction
 *   with the user row, so an ACS id can never be mapped to two users: the second insert fails whole.
 *
 * Concurrency is arbitrated by the store: a create is an insert-if-absent of both rows; a removal is a
 * delete of the user row conditional on the ETag of the row it checked. A write whose answer was lost
 * (the SDK retries it and meets its own row: 409, or 404 for a delete) is recognised by reading the row
 * again, never by assuming.
 */
export interface TableMappingStoreOptions {
  /** Deadline of one store call, the SDK's own retries included. */
  readonly timeoutMs: number;
}

/** The user's row as stored. Values are typed `unknown`: they are checked by the sealer, not trusted for their type. */
interface UserRow {
  readonly acsUserId?: unknown;
  readonly acsResource?: unknown;
}

interface IdentityRow {
  readonly oid?: unknown;
}

const USER_ROW = 'user:';
const IDENTITY_ROW = 'identity:';
/** Removal re-checks the row after each lost race; more rounds than this mean something keeps rewriting it. */
const MAX_REMOVE_ROUNDS = 3;

const KEY_FORBIDDEN = new Set(['/', '\\', '#', '?']);

/** Keys may not hold '/', '\\', '#', '?' or control characters; tid and oid are GUIDs from a validated token. */
function isKeySafe(key: string): boolean {
  if (key.length === 0 || key.length > 512) return false;
  for (const char of key) {
    const code = char.charCodeAt(0);
    if (KEY_FORBIDDEN.has(char) || code <= 0x1f || (code >= 0x7f && code <= 0x9f)) return false;
  }
  return true;
}

function keysOf(target: MappingTarget): { partitionKey: string; rowKey: string } {
  const partitionKey = target.tid.toLowerCase();
  const rowKey = `${USER_ROW}${target.oid.toLowerCase()}`;
  if (!isKeySafe(partitionKey) || !isKeySafe(rowKey)) throw new TypeError('tenant and object ids must be usable as table keys');
  return { partitionKey, rowKey };
}

function identityRowKey(acsUserId: string): string | undefined {
  const rowKey = `${IDENTITY_ROW}${acsUserId}`;
  return isKeySafe(rowKey) ? rowKey : undefined;
}

/** The storage error code (`EntityAlreadyExists`, `TableNotFound`, `UpdateConditionNotSatisfied`, …). */
export function storageErrorCode(error: RestError): string {
  const fromHeader = error.response?.headers.get('x-ms-error-code');
  if (fromHeader) return fromHeader;
  const details = error.details as { errorCode?: unknown; odataError?: { code?: unknown } } | undefined;
  const code = details?.errorCode ?? details?.odataError?.code ?? error.code;
  return typeof code === 'string' ? code : '';
}

function statusOf(error: unknown): number | undefined {
  return isRestError(error) ? error.statusCode : undefined;
}

function isTableNotFound(error: unknown): boolean {
  return isRestError(error) && error.statusCode === 404 && storageErrorCode(error) === 'TableNotFound';
}

/** Translate a Tables failure the store has no specific meaning for. */
export function translateStorageError(error: unknown): Error {
  if (error instanceof AppError) return error;
  const credential = fromCredentialFailure(
    'storage',
    error,
    "check that the app's managed identity is on (and AZURE_CLIENT_ID for a user-assigned one)",
  );
  if (credential !== undefined) return credential;
  if (!isRestError(error) || error.statusCode === undefined) return fromTransportFailure('storage', error);
  const status = error.statusCode;
  if (status === 401 || status === 403) {
    // The account refused this service's own credentials: a deployment problem, not the caller's.
    return new UpstreamError(
      'storage',
      'error',
      `refused the service's credentials (${status} ${storageErrorCode(error)}); check that the managed identity holds Storage Table Data Contributor on the account, or MAPPING_TABLE_CONNECTION_STRING`,
      { cause: error },
    );
  }
  const headers = error.response?.headers;
  return fromUpstreamStatus('storage', status, headers?.get('retry-after') ?? headers?.get(ORIGINAL_RETRY_AFTER), error);
}

function storedMappingOf(row: UserRow): StoredMapping {
  return { acsUserId: row.acsUserId, seal: row.acsResource };
}

/** The table's rows, read and written with a deadline per call and the missing table made on first use. */
interface MappingRows {
  readonly deadline: () => { abortSignal: AbortSignal };
  /** Run a store call; a missing table (a new deployment, or Azurite just started) is created, then the call is run again. */
  call<T>(work: () => Promise<T>): Promise<T>;
  readUserRow(target: MappingTarget): Promise<TableEntityResult<UserRow> | undefined>;
  /** Delete the identity row of `acsUserId` if it names this user; a row of another user is left alone. */
  removeIdentityRow(target: MappingTarget, acsUserId: unknown): Promise<void>;
}

function mappingRows(client: TableClient, timeoutMs: number): MappingRows {
  const deadline = () => ({ abortSignal: AbortSignal.timeout(timeoutMs) });
  /**
   * The table being made, shared by every request that found it missing meanwhile. (The SDK's createTable
   * already treats "another instance made it first", 409 TableAlreadyExists, as done.)
   */
  let tableReady: Promise<void> | undefined;

  async function call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (!isTableNotFound(error)) throw translateStorageError(error);
    }
    tableReady ??= client.createTable(deadline()).finally(() => {
      tableReady = undefined;
    });
    await tableReady.catch((error: unknown) => {
      throw translateStorageError(error);
    });
    try {
      return await work();
    } catch (error) {
      throw translateStorageError(error);
    }
  }

  /** One entity, or undefined when it does not exist (a missing table is not "no entity": it is made by `call`). */
  async function entity<T extends object>(partitionKey: string, rowKey: string): Promise<TableEntityResult<T> | undefined> {
    try {
      return await client.getEntity<T>(partitionKey, rowKey, deadline());
    } catch (error) {
      if (statusOf(error) === 404 && !isTableNotFound(error)) return undefined;
      throw error;
    }
  }

  return {
    deadline,
    call,
    readUserRow(target) {
      const { partitionKey, rowKey } = keysOf(target);
      return call(() => entity<UserRow>(partitionKey, rowKey));
    },
    async removeIdentityRow(target, acsUserId) {
      const rowKey = typeof acsUserId === 'string' ? identityRowKey(acsUserId) : undefined;
      if (rowKey === undefined) return;
      const { partitionKey } = keysOf(target);
      await call(async () => {
        const row = await entity<IdentityRow>(partitionKey, rowKey);
        if (row?.oid !== target.oid.toLowerCase()) return;
        try {
          await client.deleteEntity(partitionKey, rowKey, { ...deadline(), etag: row.etag });
        } catch (error) {
          // Gone already (a retry of ours, or another removal), or rewritten: either way not ours to delete now.
          if (statusOf(error) !== 404 && statusOf(error) !== 412) throw error;
        }
      });
    },
  };
}

/**
 * Insert the user row and the identity row in one transaction (both or neither). False when either
 * exists already (409): the caller reads the user row to tell which.
 */
async function insertBoth(client: TableClient, rows: MappingRows, target: MappingTarget, mapping: SealedMapping): Promise<boolean> {
  const { partitionKey, rowKey } = keysOf(target);
  const identityKey = identityRowKey(mapping.acsUserId);
  if (identityKey === undefined) throw new TypeError('an ACS user id must be usable as a table key');
  return rows.call(async () => {
    try {
      await client.submitTransaction(
        [
          ['create', { partitionKey, rowKey, acsUserId: mapping.acsUserId, acsResource: mapping.seal }],
          ['create', { partitionKey, rowKey: identityKey, oid: target.oid.toLowerCase() }],
        ],
        rows.deadline(),
      );
      return true;
    } catch (error) {
      if (statusOf(error) === 409) return false;
      throw error;
    }
  });
}

/**
 * Delete the user row if it still carries `etag`: 'removed', or 'changed' when it was rewritten since
 * (412) or is gone (404: our own delete retried after a lost answer, or another removal).
 */
function deleteIfUnchanged(client: TableClient, rows: MappingRows, target: MappingTarget, etag: string): Promise<'removed' | 'changed'> {
  const { partitionKey, rowKey } = keysOf(target);
  return rows.call(async () => {
    try {
      await client.deleteEntity(partitionKey, rowKey, { ...rows.deadline(), etag });
      return 'removed' as const;
    } catch (error) {
      if (statusOf(error) === 412 || (statusOf(error) === 404 && !isTableNotFound(error))) return 'changed' as const;
      throw error;
    }
  });
}

export function createTableMappingStore(client: TableClient, options: TableMappingStoreOptions): MappingStore {
  const rows = mappingRows(client, options.timeoutMs);

  return {
    targetOfCaller: (caller) => Promise.resolve({ via: 'me', tid: caller.tid, oid: caller.oid }),

    targetOfUser: (tid, oid) => Promise.resolve({ via: 'user', tid, oid }),

    async read(target) {
      const row = await rows.readUserRow(target);
      return row === undefined ? undefined : storedMappingOf(row);
    },

    async create(target, mapping) {
      if (await insertBoth(client, rows, target, mapping)) return 'created';
      // Either row exists. Ours (the transaction landed and its answer was lost; the SDK's retry met it):
      // created. Another mapping of the user: 'exists'. Neither: the identity row belongs to someone else.
      const current = await rows.readUserRow(target);
      if (current?.acsUserId === mapping.acsUserId) return 'created';
      if (current !== undefined) return 'exists';
      throw new IdentityMappedElsewhereError();
    },

    async remove(target, when) {
      for (let round = 0; round < MAX_REMOVE_ROUNDS; round += 1) {
        const row = await rows.readUserRow(target);
        if (row === undefined) return 'absent';
        if (when !== undefined && !when(storedMappingOf(row))) return 'kept';
        // 'changed' and gone is a removal (ours, its answer lost, or another's); changed and present is checked again.
        if ((await deleteIfUnchanged(client, rows, target, row.etag)) === 'removed' || (await rows.readUserRow(target)) === undefined) {
          await rows.removeIdentityRow(target, row.acsUserId);
          return 'removed';
        }
      }
      throw new UpstreamError('storage', 'error', 'the mapping kept changing while it was being removed; try again');
    },
  };
}
