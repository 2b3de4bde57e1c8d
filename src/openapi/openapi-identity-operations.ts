import { GUID_PATTERN_SOURCE } from '../validation/formats';
import { UNTRUSTED, UPSTREAM_FAILURES, bodyRefusals, failure, forbidden, success, unauthorized } from './openapi-responses';
import type { OpenApiOperation, OpenApiPathItem } from './openapi-types';

/**
 * The operations on the caller's ACS identity mapping (`/api/user`) and the admin erasure of another
 * user's (`/api/user/{userObjectId}`), one builder each, as routes/user-router.ts answers them.
 */
/** `graph`: the service runs on the Graph store (On-Behalf-Of, Graph's extension limit); false for the table store. */
export function userIdentityPath(requiredScope: string, graph: boolean): OpenApiPathItem {
  return {
    get: getUserIdentity(requiredScope, graph),
    post: ensureUserIdentity(requiredScope, graph),
    delete: deleteUserIdentity(requiredScope, graph),
  };
}

export function adminErasurePath(requiredScope: string, adminRole: string, graph: boolean): OpenApiPathItem {
  return { delete: eraseUserIdentity(requiredScope, adminRole, graph) };
}

function getUserIdentity(requiredScope: string, graph: boolean): OpenApiOperation {
  return {
    operationId: 'getUserIdentity',
    tags: ['identity'],
    summary: "Get the caller's ACS identity",
    responses: {
      '200': success("The caller's mapped ACS identity.", 'UserIdentity'),
      '401': unauthorized(graph),
      '403': forbidden(requiredScope),
      '404': failure('The caller has no ACS identity mapped.', ['identity_not_found']),
      '409': UNTRUSTED,
      ...UPSTREAM_FAILURES,
    },
  };
}

function ensureUserIdentity(requiredScope: string, graph: boolean): OpenApiOperation {
  return {
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
      '401': unauthorized(graph),
      '403': forbidden(requiredScope),
      '409': failure(
        `${graph ? 'The user already has the maximum number of open extensions this app may create (2) (`mapping_limit_reached`), or a' : 'A'}nother client wrote an untrusted mapping while this one was being created (\`mapping_untrusted\`), or other requests kept creating and deleting the mapping meanwhile (\`mapping_changed\`; try again).`,
        graph ? ['mapping_limit_reached', 'mapping_untrusted', 'mapping_changed'] : ['mapping_untrusted', 'mapping_changed'],
      ),
      ...UPSTREAM_FAILURES,
    },
  };
}

function deleteUserIdentity(requiredScope: string, graph: boolean): OpenApiOperation {
  return {
    operationId: 'deleteUserIdentity',
    tags: ['identity'],
    summary: "Delete the caller's ACS identity and its mapping",
    description:
      "Idempotent: 204 also when the caller has no identity. Deletes the identity (and its tokens and data) first, then the mapping. A mapping that is not trusted (no valid seal) is removed on its own: the identity it names is never deleted, as it may be another user's.",
    responses: {
      '204': success('Deleted, or there was nothing to delete.', undefined),
      '401': unauthorized(graph),
      '403': forbidden(requiredScope),
      '409': failure(
        '`identity_not_owned`: the mapped identity belongs to another Communication Services resource. `mapping_changed`: another mapping was written while this one was being deleted (the identity it named is deleted); call again.',
        ['identity_not_owned', 'mapping_changed'],
      ),
      ...UPSTREAM_FAILURES,
    },
  };
}

function eraseUserIdentity(requiredScope: string, adminRole: string, graph: boolean): OpenApiOperation {
  return {
    operationId: 'eraseUserIdentity',
    tags: ['admin'],
    summary: "Erase another user's ACS identity and mapping (admin)",
    description: `Needs the app role '${adminRole}' in the token's \`roles\`. ${graph ? "Uses the app's own Graph permission (User.ReadWrite.All). " : ''}Idempotent: 204 also when the user has no identity or does not exist. A mapping that is not trusted (no valid seal) is refused with 409 \`mapping_untrusted\`: nothing is deleted, and the message names the identity the mapping points to, which may be another user's.`,
    'x-required-app-role': adminRole,
    parameters: [
      {
        name: 'userObjectId',
        in: 'path',
        required: true,
        description: "The user's Entra ID object id (oid), a GUID (any letter case).",
        // The same pattern the route checks the id with (isGuid).
        schema: { type: 'string', pattern: `^${GUID_PATTERN_SOURCE}$` },
      },
    ],
    responses: {
      '204': success('Erased, or there was nothing to erase.', undefined),
      '400': failure('`userObjectId` is not a GUID.', ['bad_request']),
      '401': unauthorized(false),
      '403': forbidden(requiredScope, adminRole),
      '409': failure(
        "`identity_not_owned`: the mapped identity belongs to another Communication Services resource. `mapping_untrusted`: the mapping has no valid seal, so the service cannot tell whether the identity it names is this user's; nothing was deleted. `mapping_changed`: another mapping was written during the erasure (the identity it named is deleted); call again.",
        ['identity_not_owned', 'mapping_untrusted', 'mapping_changed'],
      ),
      ...UPSTREAM_FAILURES,
    },
  };
}
