import type { ErrorCode } from '../errors/app-errors';
import { MAX_URL_LENGTH } from '../http/url-limit';

/**
 * The OpenAPI 3.1 description of this service's HTTP API, built from the same settings the app
 * runs with (required scope, ACS token scopes, admin role), so the document never drifts from the
 * deployment it is served by. Every status listed for an operation is one the code can really
 * answer; `tests/integration/openapi.test.ts` checks real responses against it.
 */

/** A JSON Schema (draft 2020-12, OpenAPI 3.1's dialect): only the keywords this document uses. */
export interface JsonSchema {
  readonly $ref?: string;
  readonly type?: 'object' | 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'null';
  readonly description?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | JsonSchema;
  readonly items?: JsonSchema;
  readonly enum?: readonly (string | number)[];
  readonly const?: string | number | boolean;
  readonly format?: string;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly default?: string | number | boolean;
  readonly allOf?: readonly JsonSchema[];
  readonly examples?: readonly unknown[];
}

export interface OpenApiReference {
  readonly $ref: string;
  readonly description?: string;
}

export interface OpenApiHeader {
  readonly description?: string;
  readonly required?: boolean;
  readonly schema: JsonSchema;
}

export interface OpenApiMediaType {
  readonly schema: JsonSchema;
  readonly example?: unknown;
}

export interface OpenApiResponse {
  readonly description: string;
  readonly headers?: Readonly<Record<string, OpenApiHeader | OpenApiReference>>;
  readonly content?: Readonly<Record<string, OpenApiMediaType>>;
}

export interface OpenApiParameter {
  readonly name: string;
  readonly in: 'query' | 'header' | 'path' | 'cookie';
  readonly description?: string;
  readonly required?: boolean;
  readonly schema: JsonSchema;
  readonly example?: unknown;
}

export interface OpenApiRequestBody {
  readonly description?: string;
  readonly required?: boolean;
  readonly content: Readonly<Record<string, OpenApiMediaType>>;
}

export type OpenApiSecurityRequirement = Readonly<Record<string, readonly string[]>>;

export interface OpenApiOperation {
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags?: readonly string[];
  readonly parameters?: readonly OpenApiParameter[];
  readonly requestBody?: OpenApiRequestBody;
  readonly responses: Readonly<Record<string, OpenApiResponse>>;
  /** Overrides the document's security; `[]` makes the operation public. */
  readonly security?: readonly OpenApiSecurityRequirement[];
  /** The app role the caller's token must carry in `roles` (admin operations only). */
  readonly 'x-required-app-role'?: string;
}

export type HttpMethod = 'get' | 'post' | 'delete';

export type OpenApiPathItem = Partial<Readonly<Record<HttpMethod, OpenApiOperation>>>;

export interface OpenApiSecurityScheme {
  readonly type: 'http';
  readonly scheme: 'bearer';
  readonly bearerFormat?: string;
  readonly description?: string;
}

export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly jsonSchemaDialect: string;
  readonly info: { readonly title: string; readonly version: string; readonly summary?: string; readonly description?: string; readonly license?: { readonly name: string; readonly identifier?: string } };
  readonly servers?: readonly { readonly url: string; readonly description?: string }[];
  readonly tags: readonly { readonly name: string; readonly description?: string }[];
  readonly security: readonly OpenApiSecurityRequirement[];
  readonly paths: Readonly<Record<string, OpenApiPathItem>>;
  readonly components: {
    readonly schemas: Readonly<Record<string, JsonSchema>>;
    readonly headers: Readonly<Record<string, OpenApiHeader>>;
    readonly securitySchemes: Readonly<Record<string, OpenApiSecurityScheme>>;
  };
}

export interface OpenApiDocumentOptions {
  /** Absolute URL the API is served at; absent, clients use the document's own origin. */
  readonly serverUrl?: string;
  /** The delegated scope (`scp`) every `/api` call needs (ENTRA_REQUIRED_SCOPE). */
  readonly requiredScope: string;
  /** ACS token scopes issued by default, and the only ones a caller may ask for (ACS_TOKEN_SCOPES). */
  readonly tokenScopes: readonly string[];
  /** App role that admin erasure needs (ENTRA_ADMIN_ROLE). */
  readonly adminRole: string;
}

/** Every code the error handler can answer with (the `ErrorCode` union of app-errors.ts). */
export const ERROR_CODES = [
  'bad_request',
  'invalid_token',
  'insufficient_scope',
  'client_app_not_allowed',
  'forbidden',
  'interaction_required',
  'not_found',
  'identity_not_found',
  'identity_not_owned',
  'mapping_untrusted',
  'mapping_changed',
  'mapping_limit_reached',
  'invalid_teams_token',
  'method_not_allowed',
  'uri_too_long',
  'payload_too_large',
  'unsupported_media_type',
  'too_many_requests',
  'upstream_throttled',
  'upstream_unavailable',
  'upstream_error',
  'upstream_timeout',
  'internal_error',
] as const satisfies readonly ErrorCode[];

// Fails to compile when app-errors.ts gains a code this list lacks.
type MissingErrorCode = Exclude<ErrorCode, (typeof ERROR_CODES)[number]>;
const everyErrorCodeListed: MissingErrorCode extends never ? true : never = true;
void everyErrorCodeListed;

const SECURITY_SCHEME = 'entraId';
const JSON_MEDIA_TYPE = 'application/json';
const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const headerRef = (name: string): OpenApiReference => ({ $ref: `#/components/headers/${name}` });

/** Headers on every response: the request id the service echoes or assigns. */
const REQUEST_ID_HEADERS = { 'x-request-id': headerRef('RequestId'), 'x-ms-client-request-id': headerRef('ClientRequestId') };

function success(description: string, schemaName: string | undefined): OpenApiResponse {
  return {
    description,
    headers: REQUEST_ID_HEADERS,
    ...(schemaName === undefined ? {} : { content: { [JSON_MEDIA_TYPE]: { schema: ref(schemaName) } } }),
  };
}

/**
 * An error response whose body is the `Error` schema narrowed to the codes this operation can give
 * with this status, so a client (and the contract test) knows exactly which codes to expect.
 */
function failure(
  description: string,
  codes: readonly ErrorCode[],
  extraHeaders: Readonly<Record<string, OpenApiReference>> = {},
): OpenApiResponse {
  return {
    description,
    headers: { ...REQUEST_ID_HEADERS, ...extraHeaders },
    content: {
      [JSON_MEDIA_TYPE]: {
        schema: { allOf: [ref('Error'), { type: 'object', properties: { code: { enum: [...codes] } } }] },
      },
    },
  };
}

/** This service's own rate limits (http/rate-limits.ts): every `/api` route, the public ones included. */
function tooManyRequests(description: string): OpenApiResponse {
  return failure(description, ['too_many_requests'], {
    'Retry-After': headerRef('RetryAfterRequired'),
    RateLimit: headerRef('RateLimit'),
    'RateLimit-Policy': headerRef('RateLimitPolicy'),
  });
}

/**
 * What any route answers, before authentication, to a JSON body it cannot take; listed on the
 * operations that take a body or may be sent one (POST). The 400 for a body that does not parse is
 * in each operation's own 400.
 */
function bodyRefusals(): Record<string, OpenApiResponse> {
  return {
    '413': failure('The JSON body is larger than JSON_BODY_LIMIT_BYTES.', ['payload_too_large']),
    '415': failure('The JSON body is not UTF-8 (`charset` other than `utf-8`) or has an unsupported `Content-Encoding`.', ['unsupported_media_type']),
  };
}

/** What the service answers when an upstream (Entra ID, Graph, ACS) fails; `/api` routes only. */
function upstreamFailures(): Record<string, OpenApiResponse> {
  return {
    '429': tooManyRequests('Too many requests from this client address or this user (RATE_LIMIT_* settings); retry after `Retry-After` seconds.'),
    '500': failure('Unexpected failure in the service (details are logged, never returned).', ['internal_error']),
    '502': failure('An upstream service refused or failed the request (often a deployment problem: credentials, permissions).', ['upstream_error']),
    '503': failure(
      'An upstream service is unavailable (`upstream_unavailable`) or keeps throttling (`upstream_throttled`, with `Retry-After`).',
      ['upstream_unavailable', 'upstream_throttled'],
      { 'Retry-After': headerRef('RetryAfter') },
    ),
    '504': failure('An upstream service did not answer within UPSTREAM_TIMEOUT_MS.', ['upstream_timeout']),
  };
}

function unauthorized(onBehalfOf: boolean): OpenApiResponse {
  return failure(
    onBehalfOf
      ? 'No valid bearer token (`invalid_token`), or Entra ID needs the user to sign in again before Graph can be reached on their behalf (`interaction_required`, with a claims challenge in `WWW-Authenticate`).'
      : 'No valid bearer token (`invalid_token`).',
    onBehalfOf ? ['invalid_token', 'interaction_required'] : ['invalid_token'],
    { 'WWW-Authenticate': headerRef('WwwAuthenticate') },
  );
}

function forbidden(requiredScope: string, adminRole?: string): OpenApiResponse {
  const clientAppText =
    'the client application that obtained the token is not listed in ENTRA_ALLOWED_CLIENT_APP_IDS (`client_app_not_allowed`, only when that setting is used)';
  const scopeText = `The token lacks the scope '${requiredScope}' (\`insufficient_scope\`, with \`WWW-Authenticate\`)`;
  return failure(
    adminRole === undefined
      ? `${scopeText}, or ${clientAppText}.`
      : `${scopeText}, ${clientAppText}, or the user lacks the app role '${adminRole}' (\`forbidden\`).`,
    adminRole === undefined ? ['insufficient_scope', 'client_app_not_allowed'] : ['insufficient_scope', 'client_app_not_allowed', 'forbidden'],
    { 'WWW-Authenticate': headerRef('WwwAuthenticateInsufficientScope') },
  );
}

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function tokenQueryParameters(tokenScopes: readonly string[]): OpenApiParameter[] {
  const scope = `(${tokenScopes.map(escapeRegExp).join('|')})`;
  return [
    {
      name: 'scopes',
      in: 'query',
      required: false,
      description: `Comma-separated ACS token scopes, each one of: ${tokenScopes.join(', ')}. Default: all of them. Any other query parameter is refused with 400.`,
      // The parser trims each item, so spaces around commas are accepted.
      schema: { type: 'string', pattern: `^\\s*${scope}\\s*(,\\s*${scope}\\s*)*$`, default: tokenScopes.join(',') },
      example: tokenScopes.join(','),
    },
    {
      name: 'expiresInMinutes',
      in: 'query',
      required: false,
      description: 'Token lifetime in minutes, 60 to 1440. Default: ACS_TOKEN_EXPIRES_IN_MINUTES, else ACS\'s own default (24 hours).',
      schema: { type: 'integer', minimum: 60, maximum: 1440 },
      example: 60,
    },
  ];
}

const TEAMS_HEADER: OpenApiParameter = {
  name: 'teams-user-aad-token',
  in: 'header',
  description: "The Teams user's Microsoft Entra ID access token for Communication Services (aud `https://auth.msft.communication.azure.com`).",
  schema: { type: 'string', minLength: 1 },
};

/** Build the document. Pure: the same options always give the same document. */
export function createOpenApiDocument(options: OpenApiDocumentOptions): OpenApiDocument {
  const { requiredScope, tokenScopes, adminRole } = options;
  const security: OpenApiSecurityRequirement[] = [{ [SECURITY_SCHEME]: [requiredScope] }];
  const upstream = upstreamFailures();
  const badQuery = failure('A query parameter is unknown, repeated or out of range.', ['bad_request']);
  const noIdentity = failure('The caller has no ACS identity mapped (or the mapped identity no longer exists and the mapping was removed).', [
    'identity_not_found',
  ]);
  const untrustedText =
    '`mapping_untrusted`: the stored mapping has no valid seal of this service (written or changed outside it, copied from another user, or sealed for another ACS resource or under a retired key); nothing was done with the identity it names. `POST /api/user` replaces it.';
  const untrusted = failure(untrustedText, ['mapping_untrusted']);
  const untrustedOrNotOwned = failure(`\`identity_not_owned\`: the mapped ACS identity belongs to another Communication Services resource. ${untrustedText}`, [
    'identity_not_owned',
    'mapping_untrusted',
  ]);

  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'ACS authentication server',
      version: '1.0.0',
      summary: 'Maps Microsoft Entra ID users to Azure Communication Services identities and issues ACS access tokens.',
      description: [
        'Each Entra ID user gets one ACS identity, stored in a Microsoft Graph open extension on the user',
        '(named by GRAPH_EXTENSION_NAME, `com.contoso.identityMapping` by default, property `acsUserIdentity`).',
        'Every mapping carries a seal (property `acsUserIdentitySeal`, an HMAC under a key only this service holds); a mapping',
        'whose seal does not verify for the caller is never used and answers 409 `mapping_untrusted`.',
        '',
        `Every \`/api\` operation needs a delegated Entra ID access token for this API carrying the scope \`${requiredScope}\`;`,
        'this document (`/api/openapi.json`) and the interactive docs (`/api/docs`) are public.',
        '',
        'Errors are JSON `{ code, message, requestId }`; match on `code`. A JSON request body that is malformed (400),',
        'larger than JSON_BODY_LIMIT_BYTES (413) or not UTF-8 or in an unsupported encoding (415) is refused on any route',
        'before authentication. An unknown path answers 404 `not_found` (after authentication under `/api`).',
        `A URL (path and query) longer than ${MAX_URL_LENGTH} characters is refused on any path with 414 \`bad_request\`, before anything else.`,
        '',
        'HEAD is answered like GET, without a body, only where it has no effect: `/health` (for liveness probes),',
        '`/api/openapi.json` and `/api/docs`. The other routes answer HEAD with 405 and an `Allow` header, after',
        'authentication, and do nothing (a GET there calls Graph or issues a token).',
      ].join('\n'),
      license: { name: 'MIT', identifier: 'MIT' },
    },
    ...(options.serverUrl === undefined ? {} : { servers: [{ url: options.serverUrl }] }),
    tags: [
      { name: 'identity', description: "The caller's ACS identity mapping." },
      { name: 'token', description: 'ACS access tokens.' },
      { name: 'admin', description: `Operations that need the app role '${adminRole}'.` },
      { name: 'service', description: 'Health and this description.' },
    ],
    security,
    paths: {
      '/api/user': {
        get: {
          operationId: 'getUserIdentity',
          tags: ['identity'],
          summary: "Get the caller's ACS identity",
          responses: {
            '200': success("The caller's mapped ACS identity.", 'UserIdentity'),
            '401': unauthorized(true),
            '403': forbidden(requiredScope),
            '404': failure('The caller has no ACS identity mapped.', ['identity_not_found']),
            '409': untrusted,
            ...upstream,
          },
        },
        post: {
          operationId: 'ensureUserIdentity',
          tags: ['identity'],
          summary: "Create the caller's ACS identity, or return the existing one",
          description:
            'Idempotent: concurrent calls for one user end with one identity. A stored mapping that is not trusted (no valid seal) is replaced by a new identity: the identity it named is neither used nor deleted, so whatever was tied to it (chat threads, history) is not reachable through this service any more.',
          responses: {
            '200': success('The caller already had an identity; it is returned unchanged.', 'UserIdentity'),
            '201': success('A new identity was created and mapped to the caller.', 'UserIdentity'),
            '400': failure('A body was sent and is not valid JSON (the operation reads no body: send none, or `{}`).', ['bad_request']),
            ...bodyRefusals(),
            '401': unauthorized(true),
            '403': forbidden(requiredScope),
            '409': failure(
              'The user already has the maximum number of open extensions this app may create (2) (`mapping_limit_reached`), or another client wrote an untrusted mapping while this one was being created (`mapping_untrusted`).',
              ['mapping_limit_reached', 'mapping_untrusted'],
            ),
            ...upstream,
          },
        },
        delete: {
          operationId: 'deleteUserIdentity',
          tags: ['identity'],
          summary: "Delete the caller's ACS identity and its mapping",
          description:
            'Idempotent: 204 also when the caller has no identity. Deletes the identity (and its tokens and data) first, then the mapping. A mapping that is not trusted (no valid seal) is removed on its own: the identity it names is never deleted, as it may be another user\'s.',
          responses: {
            '204': success('Deleted, or there was nothing to delete.', undefined),
            '401': unauthorized(true),
            '403': forbidden(requiredScope),
            '409': failure(
              '`identity_not_owned`: the mapped identity belongs to another Communication Services resource. `mapping_changed`: another mapping was written while this one was being deleted (the identity it named is deleted); call again.',
              ['identity_not_owned', 'mapping_changed'],
            ),
            ...upstream,
          },
        },
      },
      '/api/user/{userObjectId}': {
        delete: {
          operationId: 'eraseUserIdentity',
          tags: ['admin'],
          summary: "Erase another user's ACS identity and mapping (admin)",
          description: `Needs the app role '${adminRole}' in the token's \`roles\`. Uses the app's own Graph permission (User.ReadWrite.All). Idempotent: 204 also when the user has no identity or does not exist. A mapping that is not trusted (no valid seal) is refused with 409 \`mapping_untrusted\`: nothing is deleted, and the message names the identity the mapping points to, which may be another user's.`,
          'x-required-app-role': adminRole,
          parameters: [
            {
              name: 'userObjectId',
              in: 'path',
              required: true,
              description: "The user's Entra ID object id (oid), a GUID (any letter case).",
              schema: { type: 'string', pattern: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$' },
            },
          ],
          responses: {
            '204': success('Erased, or there was nothing to erase.', undefined),
            '400': failure('`userObjectId` is not a GUID.', ['bad_request']),
            '401': unauthorized(false),
            '403': forbidden(requiredScope, adminRole),
            '409': failure(
              '`identity_not_owned`: the mapped identity belongs to another Communication Services resource. `mapping_untrusted`: the mapping has no valid seal, so the service cannot tell whether the identity it names is this user\'s; nothing was deleted. `mapping_changed`: another mapping was written during the erasure (the identity it named is deleted); call again.',
              ['identity_not_owned', 'mapping_untrusted', 'mapping_changed'],
            ),
            ...upstream,
          },
        },
      },
      '/api/token': {
        get: {
          operationId: 'issueToken',
          tags: ['token'],
          summary: "Issue an ACS access token for the caller's existing identity",
          description: 'Answers 201 (not 200) for compatibility with the clients of the original sample.',
          parameters: tokenQueryParameters(tokenScopes),
          responses: {
            '201': success('A token was issued.', 'AccessToken'),
            '400': badQuery,
            '401': unauthorized(true),
            '403': forbidden(requiredScope),
            '404': noIdentity,
            '409': untrustedOrNotOwned,
            ...upstream,
          },
        },
        post: {
          operationId: 'issueTokenCreatingIdentity',
          tags: ['token'],
          summary: 'Issue an ACS access token, creating and mapping the identity first if the caller has none',
          description: 'Always 201, whether or not the identity was created. A mapping to an identity that no longer exists is replaced once.',
          parameters: tokenQueryParameters(tokenScopes),
          responses: {
            '201': success('A token was issued (for a new or existing identity).', 'AccessToken'),
            '400': failure('A query parameter is unknown, repeated or out of range, or a body was sent and is not valid JSON (the operation reads no body).', ['bad_request']),
            ...bodyRefusals(),
            '401': unauthorized(true),
            '403': forbidden(requiredScope),
            '404': failure('The mapped identity no longer exists and the stale mapping could not be removed; try again.', ['identity_not_found']),
            '409': failure(
              `The mapped identity belongs to another ACS resource (\`identity_not_owned\`), or the user has the maximum number of open extensions (\`mapping_limit_reached\`). ${untrustedText} This route never replaces an untrusted mapping.`,
              ['identity_not_owned', 'mapping_limit_reached', 'mapping_untrusted'],
            ),
            ...upstream,
          },
        },
        delete: {
          operationId: 'revokeTokens',
          tags: ['token'],
          summary: "Revoke every ACS access token of the caller's identity",
          responses: {
            '204': success('Revoked.', undefined),
            '401': unauthorized(true),
            '403': forbidden(requiredScope),
            '404': noIdentity,
            '409': untrustedOrNotOwned,
            ...upstream,
          },
        },
      },
      '/api/token/teams': {
        get: {
          operationId: 'exchangeTeamsToken',
          tags: ['token'],
          summary: "Exchange a Teams user's Entra ID token for an ACS token (header)",
          description:
            "The Teams token must belong to the caller (same `oid`) and be issued to this service's Teams client id (TEAMS_CLIENT_ID). Answers 201 like the other token routes.",
          parameters: [{ ...TEAMS_HEADER, required: true }],
          responses: teamsResponses(requiredScope, upstream, false),
        },
        post: {
          operationId: 'exchangeTeamsTokenFromBody',
          tags: ['token'],
          summary: "Exchange a Teams user's Entra ID token for an ACS token (header or body)",
          description:
            "Takes the Teams token from the JSON body's `teamsUserAadToken` or, without one, from the `teams-user-aad-token` header. The Teams token must belong to the caller (same `oid`) and be issued to TEAMS_CLIENT_ID.",
          parameters: [{ ...TEAMS_HEADER, required: false }],
          requestBody: {
            required: false,
            content: { [JSON_MEDIA_TYPE]: { schema: ref('TeamsTokenRequest') } },
          },
          responses: teamsResponses(requiredScope, upstream, true),
        },
      },
      '/api/openapi.json': {
        get: {
          operationId: 'getOpenApiDocument',
          tags: ['service'],
          summary: 'This OpenAPI document',
          description: 'Public. The interactive documentation is at `/api/docs`. HEAD is answered too.',
          security: [],
          responses: {
            '200': { description: 'The OpenAPI 3.1 document.', headers: REQUEST_ID_HEADERS, content: { [JSON_MEDIA_TYPE]: { schema: { type: 'object' } } } },
            '429': tooManyRequests('Too many requests from this client address (RATE_LIMIT_PER_ADDRESS_PER_MINUTE, which counts every `/api` request); retry after `Retry-After` seconds.'),
          },
        },
      },
      '/health': {
        get: {
          operationId: 'getHealth',
          tags: ['service'],
          summary: 'Liveness',
          description: 'Public. Calls no upstream, so a slow dependency never fails it. HEAD is answered too (liveness probes use it). Not rate limited.',
          security: [],
          responses: { '200': success('The process is up.', 'Health') },
        },
      },
    },
    components: {
      schemas: {
        UserIdentity: {
          type: 'object',
          required: ['acsUserIdentity'],
          additionalProperties: false,
          properties: {
            acsUserIdentity: {
              type: 'string',
              minLength: 1,
              description: 'The ACS communication user id.',
              examples: ['8:acs:0e656e5b-2a2c-4b62-b5c1-a9a1d5c0f1b2_00000021-3b4f-6a8c-28f4-343a0d00a3c1'],
            },
          },
        },
        AccessToken: {
          type: 'object',
          required: ['token', 'expiresOn', 'user'],
          additionalProperties: false,
          properties: {
            token: { type: 'string', minLength: 1, description: 'The ACS access token (a JWT).' },
            expiresOn: { type: 'string', format: 'date-time', description: 'When the token expires.' },
            user: {
              type: 'object',
              required: ['communicationUserId'],
              additionalProperties: false,
              properties: { communicationUserId: { type: 'string', minLength: 1, description: 'The ACS identity the token is for.' } },
            },
          },
        },
        TeamsAccessToken: {
          type: 'object',
          required: ['token', 'expiresOn'],
          additionalProperties: false,
          properties: {
            token: { type: 'string', minLength: 1, description: "An ACS access token for the Teams user's identity." },
            expiresOn: { type: 'string', format: 'date-time' },
          },
        },
        TeamsTokenRequest: {
          type: 'object',
          properties: {
            teamsUserAadToken: { type: 'string', description: "The Teams user's Entra ID access token for Communication Services." },
          },
        },
        Health: {
          type: 'object',
          required: ['status'],
          additionalProperties: false,
          properties: { status: { const: 'ok' } },
        },
        ErrorCode: {
          type: 'string',
          enum: [...ERROR_CODES],
          description: 'Stable machine-readable error code.',
        },
        Error: {
          type: 'object',
          required: ['code', 'message', 'requestId'],
          additionalProperties: false,
          properties: {
            code: ref('ErrorCode'),
            message: { type: 'string', description: 'Human-readable; for 5xx a generic text (details go to the log).' },
            requestId: { type: 'string', description: 'The request id, also in the `x-request-id` header; quote it to support.' },
            stack: { type: 'string', description: 'Stack trace; only when NODE_ENV=development.' },
          },
        },
      },
      headers: {
        RequestId: {
          description: 'The request id: the client\'s `x-ms-client-request-id` or `x-request-id` when well-formed, else a new UUID.',
          required: true,
          schema: { type: 'string' },
        },
        ClientRequestId: { description: 'The same request id, under the header Azure SDKs send.', required: true, schema: { type: 'string' } },
        WwwAuthenticate: { description: 'RFC 6750 bearer challenge (a bare `Bearer` when no token was sent).', required: true, schema: { type: 'string' } },
        WwwAuthenticateInsufficientScope: {
          description: 'RFC 6750 `insufficient_scope` challenge naming the required scope; present with `insufficient_scope` only.',
          required: false,
          schema: { type: 'string' },
        },
        RetryAfter: { description: 'Seconds to wait before retrying; present with `upstream_throttled`.', required: false, schema: { type: 'string', pattern: '^[0-9]+$' } },
        RetryAfterRequired: { description: 'Seconds to wait before retrying.', required: true, schema: { type: 'string', pattern: '^[0-9]+$' } },
        RateLimit: { description: 'IETF draft-8 RateLimit header: the quota left (`r`) and seconds to its reset (`t`).', required: true, schema: { type: 'string' } },
        RateLimitPolicy: { description: 'IETF draft-8 RateLimit-Policy header: the quota (`q`) per window (`w`, seconds).', required: true, schema: { type: 'string' } },
      },
      securitySchemes: {
        [SECURITY_SCHEME]: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: `A delegated (user) Microsoft Entra ID access token issued to this API (audience: its client id or App ID URI, v1 or v2), carrying the scope '${requiredScope}' in \`scp\`. App-only tokens are refused. Admin erasure also needs the app role '${adminRole}' in \`roles\`.`,
        },
      },
    },
  };
}

function teamsResponses(requiredScope: string, upstream: Record<string, OpenApiResponse>, hasBody: boolean): Record<string, OpenApiResponse> {
  return {
    '201': success('An ACS token for the Teams user was issued.', 'TeamsAccessToken'),
    '400': failure(
      hasBody
        ? 'No Teams token given, `teamsUserAadToken` is not a string, or the body is not valid JSON (`bad_request`); or ACS refused the Teams token: expired, invalid, another user\'s or another app\'s (`invalid_teams_token`).'
        : 'No Teams token given (`bad_request`), or ACS refused it: expired, invalid, another user\'s or another app\'s (`invalid_teams_token`).',
      ['bad_request', 'invalid_teams_token'],
    ),
    '401': unauthorized(false),
    '403': forbidden(requiredScope),
    ...(hasBody ? bodyRefusals() : {}),
    ...upstream,
  };
}
