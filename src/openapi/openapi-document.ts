import { MAX_URL_LENGTH } from '../http/url-limit';
import { SECURITY_SCHEME, documentComponents } from './openapi-components';
import { adminErasurePath, userIdentityPath } from './openapi-identity-operations';
import { REQUEST_ID_HEADERS, JSON_MEDIA_TYPE, success, tooManyRequests } from './openapi-responses';
import { teamsTokenPath, tokenPath } from './openapi-token-operations';
import type { OpenApiDocument, OpenApiDocumentOptions, OpenApiInfo, OpenApiPathItem } from './openapi-types';

export { ERROR_CODES } from './openapi-components';
export type * from './openapi-types';

/**
 * The OpenAPI 3.1 description of this service's HTTP API, built from the same settings the app
 * runs with (required scope, ACS token scopes, admin role), so the document never drifts from the
 * deployment it is served by. Every status listed for an operation is one the code can really
 * answer; `tests/integration/openapi.test.ts` checks real responses against it.
 *
 * Build the document. Pure: the same options always give the same document.
 */
export function createOpenApiDocument(options: OpenApiDocumentOptions): OpenApiDocument {
  const { requiredScope, tokenScopes, adminRole } = options;
  const graph = options.mappingStore === 'graph';
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: documentInfo(requiredScope, graph),
    ...(options.serverUrl === undefined ? {} : { servers: [{ url: options.serverUrl }] }),
    tags: [
      { name: 'identity', description: "The caller's ACS identity mapping." },
      { name: 'token', description: 'ACS access tokens.' },
      { name: 'admin', description: `Operations that need the app role '${adminRole}'.` },
      { name: 'service', description: 'Health and this description.' },
    ],
    security: [{ [SECURITY_SCHEME]: [requiredScope] }],
    paths: {
      '/api/user': userIdentityPath(requiredScope, graph),
      '/api/user/{userObjectId}': adminErasurePath(requiredScope, adminRole, graph),
      '/api/token': tokenPath(requiredScope, tokenScopes, graph),
      '/api/token/teams': teamsTokenPath(requiredScope),
      '/api/openapi.json': OPENAPI_DOCUMENT_PATH,
      '/health': HEALTH_PATH,
    },
    components: documentComponents(requiredScope, adminRole),
  };
}

/** How the mappings are kept, as the document's description says it. */
function storeDescription(graph: boolean): string[] {
  return graph
    ? [
        'Each Entra ID user gets one ACS identity, stored in a Microsoft Graph open extension on the user',
        '(named by GRAPH_EXTENSION_NAME, `com.contoso.identityMapping` by default, property `acsUserIdentity`).',
        'Every mapping carries a seal (property `acsUserIdentitySeal`, an HMAC under a key only this service holds); a mapping',
        'whose seal does not verify for the caller is never used and answers 409 `mapping_untrusted`.',
      ]
    : [
        'Each Entra ID user gets one ACS identity, stored in an Azure Table Storage table that only this service can write,',
        "keyed by the token's tenant and object ids. A mapping made for another Communication Services resource is never used",
        'and answers 409 `mapping_untrusted`.',
      ];
}

function documentInfo(requiredScope: string, graph: boolean): OpenApiInfo {
  return {
    title: 'ACS authentication server',
    version: '1.0.0',
    summary: 'Maps Microsoft Entra ID users to Azure Communication Services identities and issues ACS access tokens.',
    description: [
      ...storeDescription(graph),
      '',
      `Every \`/api\` operation needs a delegated Entra ID access token for this API carrying the scope \`${requiredScope}\`;`,
      'this document (`/api/openapi.json`) and the interactive docs (`/api/docs`) are public.',
      '',
      'Errors are JSON `{ code, message, requestId }`; match on `code`. A JSON request body that is malformed (400),',
      'larger than JSON_BODY_LIMIT_BYTES (413) or not UTF-8 or in an unsupported encoding (415) is refused on any route',
      'before authentication. An unknown path answers 404 `not_found` (after authentication under `/api`).',
      `A URL (path and query) longer than ${MAX_URL_LENGTH} characters is refused on any path with 414 \`uri_too_long\`, before anything else.`,
      '',
      'HEAD is answered like GET, without a body, only where it has no effect: `/health` (for liveness probes),',
      '`/api/openapi.json` and `/api/docs`. The other routes answer HEAD with 405 and an `Allow` header, after',
      `authentication, and do nothing (a GET there ${graph ? 'calls Graph' : 'reads the table'} or issues a token).`,
    ].join('\n'),
    license: { name: 'MIT', identifier: 'MIT' },
  };
}

/** Public: clients and tools read the description before they have a token. */
const OPENAPI_DOCUMENT_PATH: OpenApiPathItem = {
  get: {
    operationId: 'getOpenApiDocument',
    tags: ['service'],
    summary: 'This OpenAPI document',
    description: 'Public. The interactive documentation is at `/api/docs`. HEAD is answered too.',
    security: [],
    responses: {
      '200': {
        description: 'The OpenAPI 3.1 document.',
        headers: REQUEST_ID_HEADERS,
        content: { [JSON_MEDIA_TYPE]: { schema: { type: 'object' } } },
      },
      '429': tooManyRequests(
        'Too many requests from this client address (RATE_LIMIT_PER_ADDRESS_PER_MINUTE, which counts every `/api` request); retry after `Retry-After` seconds.',
      ),
    },
  },
};

const HEALTH_PATH: OpenApiPathItem = {
  get: {
    operationId: 'getHealth',
    tags: ['service'],
    summary: 'Liveness',
    description:
      'Public. Calls no upstream, so a slow dependency never fails it. HEAD is answered too (liveness probes use it). Not rate limited.',
    security: [],
    responses: { '200': success('The process is up.', 'Health') },
  },
};
