import type { ErrorCode } from '../errors/app-errors';
import { ref } from './openapi-responses';
import type { JsonSchema, OpenApiComponents, OpenApiHeader } from './openapi-types';

/**
 * The reusable parts of the OpenAPI document (`components`): the body schemas, the response headers
 * and the security scheme. The schemas and headers do not depend on the deployment, so they are
 * constants; the security scheme names the deployment's scope and admin role.
 *
 * Every code the error handler can answer with (the `ErrorCode` union of app-errors.ts).
 */
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

/** The name the document's `security` requirements refer to the bearer scheme by. */
export const SECURITY_SCHEME = 'entraId';

const SCHEMAS: Readonly<Record<string, JsonSchema>> = {
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
};

const HEADERS: Readonly<Record<string, OpenApiHeader>> = {
  RequestId: {
    description: "The request id: the client's `x-ms-client-request-id` or `x-request-id` when well-formed, else a new UUID.",
    required: true,
    schema: { type: 'string' },
  },
  ClientRequestId: { description: 'The same request id, under the header Azure SDKs send.', required: true, schema: { type: 'string' } },
  WwwAuthenticate: {
    description: 'RFC 6750 bearer challenge (a bare `Bearer` when no token was sent).',
    required: true,
    schema: { type: 'string' },
  },
  WwwAuthenticateInsufficientScope: {
    description: 'RFC 6750 `insufficient_scope` challenge naming the required scope; present with `insufficient_scope` only.',
    required: false,
    schema: { type: 'string' },
  },
  RetryAfter: {
    description: 'Seconds to wait before retrying; present with `upstream_throttled`.',
    required: false,
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
  RetryAfterRequired: { description: 'Seconds to wait before retrying.', required: true, schema: { type: 'string', pattern: '^[0-9]+$' } },
  RateLimit: {
    description: 'IETF draft-8 RateLimit header: the quota left (`r`) and seconds to its reset (`t`).',
    required: true,
    schema: { type: 'string' },
  },
  RateLimitPolicy: {
    description: 'IETF draft-8 RateLimit-Policy header: the quota (`q`) per window (`w`, seconds).',
    required: true,
    schema: { type: 'string' },
  },
};

export function documentComponents(requiredScope: string, adminRole: string): OpenApiComponents {
  return {
    schemas: SCHEMAS,
    headers: HEADERS,
    securitySchemes: {
      [SECURITY_SCHEME]: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: `A delegated (user) Microsoft Entra ID access token issued to this API (audience: its client id or App ID URI, v1 or v2), carrying the scope '${requiredScope}' in \`scp\`. App-only tokens are refused. Admin erasure also needs the app role '${adminRole}' in \`roles\`.`,
      },
    },
  };
}
