/**
 * The tenant's OpenID Connect metadata, v1 (`/{tenant}/.well-known/openid-configuration`) and v2
 * (`/{tenant}/v2.0/.well-known/openid-configuration`), with the fields and order of the public cloud's,
 * but pointing at the emulator. msal reads the v2 document; services that validate tokens read either.
 * Endpoints point at the listener asked (https, or the browsers' plain-http one); the issuers never change.
 *
 * @packageDocumentation
 */
import type { RequestHandler } from 'express';
import type { EntraTenant } from '../entra-tenant';
import { listenerUrlOf } from '../listener-url';

/** The public cloud's fields, the same in the v1 and v2 OpenID metadata. */
const CLOUD_METADATA = {
  tenant_region_scope: 'NA',
  cloud_instance_name: 'microsoftonline.com',
  cloud_graph_host_name: 'graph.windows.net',
  msgraph_host: 'graph.microsoft.com',
  rbac_url: 'https://pas.windows.net',
} as const;

/** GET of the v2 document. */
export function openIdConfigurationV2Action(tenant: EntraTenant): RequestHandler {
  return (req, res) => {
    tenant.requireTenant(req);
    res.json(v2Metadata(tenant, listenerUrlOf(res)));
  };
}

/** GET of the v1 document. */
export function openIdConfigurationV1Action(tenant: EntraTenant): RequestHandler {
  return (req, res) => {
    tenant.requireTenant(req);
    res.json(v1Metadata(tenant, listenerUrlOf(res)));
  };
}

function v2Metadata(tenant: EntraTenant, base: string): Record<string, unknown> {
  const authority = `${base}/${tenant.tenantId}`;
  return {
    token_endpoint: `${authority}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${authority}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: tenant.issuerV2(),
    request_uri_parameter_supported: false,
    userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
    authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${authority}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
    claims_supported: [
      'sub',
      'iss',
      'cloud_instance_name',
      'cloud_instance_host_name',
      'cloud_graph_host_name',
      'msgraph_host',
      'aud',
      'exp',
      'iat',
      'auth_time',
      'acr',
      'nonce',
      'preferred_username',
      'name',
      'tid',
      'ver',
      'at_hash',
      'c_hash',
      'email',
    ],
    kerberos_endpoint: `${authority}/kerberos`,
    ...CLOUD_METADATA,
  };
}

function v1Metadata(tenant: EntraTenant, base: string): Record<string, unknown> {
  const authority = `${base}/${tenant.tenantId}`;
  return {
    token_endpoint: `${authority}/oauth2/token`,
    authorization_endpoint: `${authority}/oauth2/authorize`,
    device_authorization_endpoint: `${authority}/oauth2/devicecode`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    // The cloud's v1 metadata points at the common keys, which are the same keys the tenant signs with.
    jwks_uri: `${base}/common/discovery/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${authority}/oauth2/logout`,
    response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
    scopes_supported: ['openid'],
    issuer: tenant.issuerV1,
    claims_supported: [
      'sub',
      'iss',
      'cloud_instance_name',
      'cloud_instance_host_name',
      'cloud_graph_host_name',
      'msgraph_host',
      'aud',
      'exp',
      'iat',
      'auth_time',
      'acr',
      'amr',
      'nonce',
      'email',
      'given_name',
      'family_name',
      'nickname',
    ],
    microsoft_multi_refresh_token: true,
    check_session_iframe: `${authority}/oauth2/checksession`,
    userinfo_endpoint: `${authority}/openid/userinfo`,
    kerberos_endpoint: `${authority}/kerberos`,
    ...CLOUD_METADATA,
  };
}
