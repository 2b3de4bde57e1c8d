/** A complete Azure-mode environment (Graph store, secret, connection string) for tests of the config and what derives from it. */
export const TEST_TENANT_ID = '11111111-2222-4333-8444-555555555555';
export const TEST_API_CLIENT_ID = '66666666-7777-4888-9999-aaaaaaaaaaaa';

export const VALID_AZURE_SETTINGS = Object.freeze({
  ENTRA_TENANT_ID: TEST_TENANT_ID,
  ENTRA_CLIENT_ID: TEST_API_CLIENT_ID,
  ENTRA_CLIENT_SECRET: 's3cr3t-value',
  ACS_CONNECTION_STRING: 'endpoint=https://contoso.communication.azure.com/;accesskey=a2V5',
  MAPPING_SEAL_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
});
