/**
 * The tenant's signing keys as Entra publishes them: `/{tenant}/discovery/v2.0/keys` and the v1
 * `/{tenant}/discovery/keys`, also under the tenant-independent aliases `common` and `organizations`
 * (the v1 metadata points at `common`). Services verify the emulator's tokens with these documents.
 *
 * @packageDocumentation
 */
import type { RequestHandler } from 'express';
import type { JWK } from 'jose';
import type { EntraTenant } from '../entra-tenant';
import type { SigningKeySet } from '../signing-keys';

const TENANT_INDEPENDENT = ['common', 'organizations'] as const;

/** GET of the v2 key document. */
export function discoveryKeysV2Action(tenant: EntraTenant): RequestHandler {
  return (req, res) => {
    tenant.requireTenant(req, TENANT_INDEPENDENT);
    // Tenant-independent key sets carry the issuer template; a tenant's own keys carry its issuer
    // (whether the cloud substitutes the tenant id here is unconfirmed).
    const pathTenant = String(req.params['tenant']).toLowerCase();
    res.json(keysDocument(tenant.keys, pathTenant === tenant.tenantId ? tenant.issuerV2() : `${tenant.baseUrl()}/{tenantid}/v2.0`));
  };
}

/** GET of the v1 key document. */
export function discoveryKeysV1Action(tenant: EntraTenant): RequestHandler {
  return (req, res) => {
    tenant.requireTenant(req, TENANT_INDEPENDENT);
    // Whether v1 key documents carry `issuer` is unconfirmed; the emulator leaves it out.
    res.json(keysDocument(tenant.keys, undefined));
  };
}

/** Keys in Entra's order of fields; no `alg` (Entra publishes none) and no `x5c` (the emulator's signing keys have no certificates). */
function keysDocument(keys: SigningKeySet, issuer: string | undefined): { keys: JWK[] } {
  return {
    keys: keys.publicJwks().keys.map((jwk) => ({
      kty: jwk.kty,
      use: 'sig',
      kid: jwk.kid,
      x5t: jwk.kid,
      n: jwk.n,
      e: jwk.e,
      cloud_instance_name: 'microsoftonline.com',
      ...(issuer === undefined ? {} : { issuer }),
    })),
  };
}
