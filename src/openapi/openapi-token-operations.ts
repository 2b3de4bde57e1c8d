import {
  BAD_QUERY,
  JSON_MEDIA_TYPE,
  NO_IDENTITY,
  UNTRUSTED_OR_NOT_OWNED,
  UNTRUSTED_TEXT,
  UPSTREAM_FAILURES,
  bodyRefusals,
  failure,
  forbidden,
  ref,
  success,
  unauthorized,
} from './openapi-responses';
import type { OpenApiOperation, OpenApiParameter, OpenApiPathItem, OpenApiResponse } from './openapi-types';

/**
 * The token operations: ACS tokens for the caller's identity (`/api/token`) and the Teams token
 * exchange (`/api/token/teams`), one builder each, as routes/token-router.ts answers them. The
 * query parameters are built from the deployment's ACS token scopes, the only ones a caller may ask for.
 */
/** `graph`: the service runs on the Graph store (On-Behalf-Of, Graph's extension limit); false for the table store. */
export function tokenPath(requiredScope: string, tokenScopes: readonly string[], graph: boolean): OpenApiPathItem {
  return {
    get: issueToken(requiredScope, tokenScopes, graph),
    post: issueTokenCreatingIdentity(requiredScope, tokenScopes, graph),
    delete: revokeTokens(requiredScope, graph),
  };
}

export function teamsTokenPath(requiredScope: string): OpenApiPathItem {
  return {
    get: {
      operationId: 'exchangeTeamsToken',
      tags: ['token'],
      summary: "Exchange a Teams user's Entra ID token for an ACS token (header)",
      description:
        "The Teams token must belong to the caller (same `oid`) and be issued to this service's Teams client id (TEAMS_CLIENT_ID). Answers 201 like the other token routes.",
      parameters: [{ ...TEAMS_HEADER, required: true }],
      responses: teamsResponses(requiredScope, false),
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
      responses: teamsResponses(requiredScope, true),
    },
  };
}

function issueToken(requiredScope: string, tokenScopes: readonly string[], graph: boolean): OpenApiOperation {
  return {
    operationId: 'issueToken',
    tags: ['token'],
    summary: "Issue an ACS access token for the caller's existing identity",
    description: 'Answers 201 (not 200) for compatibility with the clients of the original sample.',
    parameters: tokenQueryParameters(tokenScopes),
    responses: {
      '201': success('A token was issued.', 'AccessToken'),
      '400': BAD_QUERY,
      '401': unauthorized(graph),
      '403': forbidden(requiredScope),
      '404': NO_IDENTITY,
      '409': UNTRUSTED_OR_NOT_OWNED,
      ...UPSTREAM_FAILURES,
    },
  };
}

function issueTokenCreatingIdentity(requiredScope: string, tokenScopes: readonly string[], graph: boolean): OpenApiOperation {
  return {
    operationId: 'issueTokenCreatingIdentity',
    tags: ['token'],
    summary: 'Issue an ACS access token, creating and mapping the identity first if the caller has none',
    description: 'Always 201, whether or not the identity was created. A mapping to an identity that no longer exists is replaced once.',
    parameters: tokenQueryParameters(tokenScopes),
    responses: {
      '201': success('A token was issued (for a new or existing identity).', 'AccessToken'),
      '400': failure(
        'A query parameter is unknown, repeated or out of range, or a body was sent and is not valid JSON (the operation reads no body).',
        ['bad_request'],
      ),
      ...bodyRefusals(),
      '401': unauthorized(graph),
      '403': forbidden(requiredScope),
      '404': failure('The mapped identity no longer exists and the stale mapping could not be removed; try again.', ['identity_not_found']),
      '409': failure(
        `The mapped identity belongs to another ACS resource (\`identity_not_owned\`)${graph ? ', or the user has the maximum number of open extensions (`mapping_limit_reached`)' : ''}, or other requests kept creating and deleting the mapping meanwhile (\`mapping_changed\`; try again). ${UNTRUSTED_TEXT} This route never replaces an untrusted mapping.`,
        graph
          ? ['identity_not_owned', 'mapping_limit_reached', 'mapping_untrusted', 'mapping_changed']
          : ['identity_not_owned', 'mapping_untrusted', 'mapping_changed'],
      ),
      ...UPSTREAM_FAILURES,
    },
  };
}

function revokeTokens(requiredScope: string, graph: boolean): OpenApiOperation {
  return {
    operationId: 'revokeTokens',
    tags: ['token'],
    summary: "Revoke every ACS access token of the caller's identity",
    responses: {
      '204': success('Revoked.', undefined),
      '401': unauthorized(graph),
      '403': forbidden(requiredScope),
      '404': NO_IDENTITY,
      '409': UNTRUSTED_OR_NOT_OWNED,
      ...UPSTREAM_FAILURES,
    },
  };
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
      description: "Token lifetime in minutes, 60 to 1440. Default: ACS_TOKEN_EXPIRES_IN_MINUTES, else ACS's own default (24 hours).",
      schema: { type: 'integer', minimum: 60, maximum: 1440 },
      example: 60,
    },
  ];
}

const TEAMS_HEADER: OpenApiParameter = {
  name: 'teams-user-aad-token',
  in: 'header',
  description:
    "The Teams user's Microsoft Entra ID access token for Communication Services (aud `https://auth.msft.communication.azure.com`).",
  schema: { type: 'string', minLength: 1 },
};

/** The two exchange routes answer alike, except that the one taking a body also refuses bodies it cannot read. */
function teamsResponses(requiredScope: string, hasBody: boolean): Record<string, OpenApiResponse> {
  return {
    '201': success('An ACS token for the Teams user was issued.', 'TeamsAccessToken'),
    '400': failure(
      hasBody
        ? "No Teams token given, `teamsUserAadToken` is not a string, or the body is not valid JSON (`bad_request`); or ACS refused the Teams token: expired, invalid, another user's or another app's (`invalid_teams_token`)."
        : "No Teams token given (`bad_request`), or ACS refused it: expired, invalid, another user's or another app's (`invalid_teams_token`).",
      ['bad_request', 'invalid_teams_token'],
    ),
    '401': unauthorized(false),
    '403': forbidden(requiredScope),
    ...(hasBody ? bodyRefusals() : {}),
    ...UPSTREAM_FAILURES,
  };
}
