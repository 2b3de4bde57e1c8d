import type { CommunicationIdentityClient } from '@azure/communication-identity';
import { isRestError } from '@azure/core-rest-pipeline';

import { AppError, IdentityNotFoundError, IdentityNotOwnedError, InvalidTeamsTokenError, UpstreamError } from '../../errors/app-errors';
import type { AcsIdentities } from '../../services/ports';
import { fromCredentialFailure, fromTransportFailure, fromUpstreamStatus } from '../upstream-errors';
import { ORIGINAL_RETRY_AFTER } from '../retry-after-cap';

/**
 * ACS identities and tokens on the one CommunicationIdentityClient of the process, with each
 * RestError translated into the project's errors. Every call carries its own deadline.
 */
export interface AcsIdentityAdapterOptions {
  /** Deadline for one SDK call, its own retries included. */
  readonly timeoutMs: number;
}

type Operation = 'identity' | 'teams';

function translate(error: unknown, operation: Operation): Error {
  if (error instanceof AppError) return error;
  const credential = fromCredentialFailure('acs', error, "check that the app's managed identity is on and holds a role on the resource");
  if (credential !== undefined) return credential;
  if (!isRestError(error) || error.statusCode === undefined) return fromTransportFailure('acs', error);
  const status = error.statusCode;
  const code = error.code ?? '';
  // ACS answers a bad Teams token with 401 InvalidAccessToken and a token of another user or app
  // with 400; a 401/403 with another code is ACS refusing this service's own credentials.
  if (operation === 'teams' && (status === 400 || (status === 401 && code === 'InvalidAccessToken'))) {
    const reason =
      status === 400
        ? "the Teams user token does not belong to this user or app (its 'oid' and 'appid' must match the caller and this API)"
        : 'the Teams user token is invalid or expired';
    return new InvalidTeamsTokenError(`Communication Services refused the exchange: ${reason}.`, { cause: error });
  }
  if (code === 'IdentityNotOwned') return new IdentityNotOwnedError({ cause: error });
  if (status === 404 || /doesn't exist|does not exist/i.test(error.message)) return new IdentityNotFoundError(undefined);
  if (status === 401 || status === 403) {
    // The resource refused this service's own credentials: a deployment problem, not the caller's.
    return new UpstreamError(
      'acs',
      'error',
      `refused the service's credentials (${status} ${code}); check ACS_CONNECTION_STRING or the managed identity's role`,
      {
        cause: error,
      },
    );
  }
  const headers = error.response?.headers;
  return fromUpstreamStatus('acs', status, headers?.get('retry-after') ?? headers?.get(ORIGINAL_RETRY_AFTER), error);
}

export function createAcsIdentityAdapter(client: CommunicationIdentityClient, options: AcsIdentityAdapterOptions): AcsIdentities {
  const deadline = () => ({ abortSignal: AbortSignal.timeout(options.timeoutMs) });
  async function call<T>(operation: Operation, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw translate(error, operation);
    }
  }
  const user = (communicationUserId: string) => ({ communicationUserId });

  return {
    createIdentity: () => call('identity', async () => (await client.createUser(deadline())).communicationUserId),

    createIdentityWithToken: (request) =>
      call('identity', async () => {
        const made = await client.createUserAndToken([...request.scopes], {
          ...deadline(),
          ...(request.expiresInMinutes === undefined ? {} : { tokenExpiresInMinutes: request.expiresInMinutes }),
        });
        return { acsUserId: made.user.communicationUserId, token: made.token, expiresOn: made.expiresOn };
      }),

    issueToken: (acsUserId, request) =>
      call('identity', async () => {
        const issued = await client.getToken(user(acsUserId), [...request.scopes], {
          ...deadline(),
          ...(request.expiresInMinutes === undefined ? {} : { tokenExpiresInMinutes: request.expiresInMinutes }),
        });
        return { token: issued.token, expiresOn: issued.expiresOn };
      }),

    revokeTokens: (acsUserId) => call('identity', () => client.revokeTokens(user(acsUserId), deadline())),

    deleteIdentity: (acsUserId) =>
      call('identity', async () => {
        try {
          await client.deleteUser(user(acsUserId), deadline());
        } catch (error) {
          // Already gone is what we wanted: deleting is idempotent for the service's callers.
          if (translate(error, 'identity') instanceof IdentityNotFoundError) return;
          throw error;
        }
      }),

    exchangeTeamsToken: (request) =>
      call('teams', async () => {
        const issued = await client.getTokenForTeamsUser({
          teamsUserAadToken: request.teamsToken,
          clientId: request.appId,
          userObjectId: request.userId,
          ...deadline(),
        });
        return { token: issued.token, expiresOn: issued.expiresOn };
      }),
  };
}
