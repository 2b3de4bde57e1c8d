/**
 * The page's calls to this service (same origin), each with the signed-in user's Entra ID token for the API.
 * Errors carry what the API answered: its `code`, `message` and request id.
 */

/** An answer of the API other than 2xx, as its JSON error body says. */
export class ServiceError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | undefined,
    /** On 401 `interaction_required`: the claims challenge (JSON) for the interactive sign-in, if it has one. */
    readonly claims: string | undefined = undefined,
  ) {
    super(message);
    this.name = 'ServiceError';
  }
}

export interface ServiceApi {
  /** POST /api/user: the caller's ACS identity, created (201) if there was none. */
  getOrCreateIdentity(): Promise<{ readonly identity: string; readonly created: boolean }>;
  /** DELETE /api/user: the identity, its tokens and its mapping. */
  deleteIdentity(): Promise<void>;
  /** DELETE /api/token: every token of the caller's identity. */
  revokeTokens(): Promise<void>;
  /** POST /api/token/teams: an ACS token for the caller's Teams identity. */
  exchangeTeamsToken(teamsToken: string): Promise<{ readonly expiresOn: string }>;
}

export function createServiceApi(serviceUrl: string, entraToken: () => Promise<string>): ServiceApi {
  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = { Authorization: `Bearer ${await entraToken()}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(new URL(path, serviceUrl), {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json: unknown = response.status === 204 ? undefined : await response.json().catch(() => undefined);
    if (!response.ok) throw errorOf(response, json);
    return { status: response.status, json };
  }

  return {
    async getOrCreateIdentity() {
      const { status, json } = await call('POST', '/api/user');
      return { identity: stringField(json, 'acsUserIdentity'), created: status === 201 };
    },
    async deleteIdentity() {
      await call('DELETE', '/api/user');
    },
    async revokeTokens() {
      await call('DELETE', '/api/token');
    },
    async exchangeTeamsToken(teamsToken) {
      const { json } = await call('POST', '/api/token/teams', { teamsUserAadToken: teamsToken });
      return { expiresOn: stringField(json, 'expiresOn') };
    },
  };
}

function errorOf(response: Response, json: unknown): ServiceError {
  const requestId = response.headers.get('x-request-id') ?? undefined;
  const record = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
  const code = typeof record['code'] === 'string' ? record['code'] : `http_${response.status}`;
  const message = typeof record['message'] === 'string' ? record['message'] : `The service answered ${response.status}.`;
  const claims = code === 'interaction_required' ? claimsOf(response.headers.get('www-authenticate')) : undefined;
  return new ServiceError(response.status, code, message, requestId, claims);
}

/** The `claims` parameter of a `WWW-Authenticate: Bearer …` challenge, base64-decoded. */
function claimsOf(challenge: string | null): string | undefined {
  const encoded = /(?:^|[\s,])claims="([A-Za-z0-9+/=_-]{1,8192})"/.exec(challenge ?? '')?.[1];
  if (encoded === undefined) return undefined;
  try {
    const binary = atob(encoded.replace(/-/g, '+').replace(/_/g, '/'));
    return new TextDecoder().decode(Uint8Array.from(binary, (char) => char.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

function stringField(json: unknown, name: string): string {
  const value = typeof json === 'object' && json !== null ? (json as Record<string, unknown>)[name] : undefined;
  if (typeof value !== 'string') throw new ServiceError(0, 'unexpected_answer', `The service's answer has no '${name}'.`, undefined);
  return value;
}
