/**
 * Instance discovery, `/common/discovery/instance`: msal asks it which cloud an authority belongs to
 * before anything else, and gives up on the authority when the answer is missing or malformed. The
 * emulator answers that its own host (the listener asked) is the only alias of its cloud.
 *
 * @packageDocumentation
 */
import type { RequestHandler } from 'express';
import { AadError } from '../aad-error';
import { listenerUrlOf } from '../listener-url';
import { missingParameter } from '../sts-refusals';

/** GET: the discovery document for the authority named in `authorization_endpoint`. */
export function instanceDiscoveryAction(): RequestHandler {
  return (req, res) => {
    const endpoint = req.query['authorization_endpoint'];
    if (typeof endpoint !== 'string' || endpoint === '') throw missingParameter('authorization_endpoint');
    const authorityTenant = tenantOfAuthorizationEndpoint(endpoint);
    const base = listenerUrlOf(res);
    const host = new URL(base).host;
    res.json({
      tenant_discovery_endpoint: `${base}/${authorityTenant}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    });
  };
}

/** The first path segment of the endpoint (the tenant, or an alias such as `common`). */
function tenantOfAuthorizationEndpoint(endpoint: string): string {
  try {
    return new URL(endpoint).pathname.split('/').find((segment) => segment !== '') ?? 'common';
  } catch {
    throw new AadError(400, 'invalid_instance', 50049, 'Unknown or invalid instance.');
  }
}
