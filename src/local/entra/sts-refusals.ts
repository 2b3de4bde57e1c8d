/**
 * Refusals that several STS endpoints send, written once so that the endpoints, grant types and client
 * authentication methods answer a given mistake with the same AADSTS code and text, as the one real STS does.
 *
 * @packageDocumentation
 */
import { AadError } from './aad-error';

/** A required form parameter is absent (or empty where Entra treats empty as absent). */
export function missingParameter(name: string): AadError {
  return new AadError(400, 'invalid_request', 900144, `The request body must contain the following parameter: '${name}'.`);
}

/** The `scope` parameter, quoted whole, names something the emulated tenant does not publish. */
export function invalidScope(scope: string): AadError {
  return new AadError(
    400,
    'invalid_scope',
    70011,
    `The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid.`,
  );
}

/** A token was asked for a resource other than Microsoft Graph, the only downstream resource the tenant has. */
export function resourceNotFound(resource: string, tenantId: string): AadError {
  return new AadError(
    400,
    'invalid_resource',
    500011,
    `The resource principal named ${resource} was not found in the tenant named ${tenantId}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
  );
}

/** The client id names no app registration of the tenant. */
export function unknownApplication(clientId: string, tenantId: string): AadError {
  return new AadError(
    400,
    'unauthorized_client',
    700016,
    `Application with identifier '${clientId}' was not found in the directory '${tenantId}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
  );
}
