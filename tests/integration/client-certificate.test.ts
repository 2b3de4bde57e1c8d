import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';

import forge from 'node-forge';

import { composeService } from '../../src/composition-root';
import { ConfigError, loadConfig } from '../../src/config/config';
import { DEMO_USERS } from '../../src/local/local-directory';
import { createClientCertificate } from '../../src/local/tls/local-certificate-authority';
import { createLogger } from '../../src/observability/logger';
import { userBody } from '../helpers/bodies';
import { mappedIdentityOf, orphanedIdentities } from '../helpers/invariants';
import { ACS_ID, startTestService, type TestService } from '../helpers/test-service';
import { useTempFolder } from '../helpers/temp-files';
import { graphStoreOf } from '../helpers/store-config';

/**
 * The service authenticating to Entra ID with a client certificate (ENTRA_CLIENT_CERTIFICATE_PATH) and
 * no secret at all: On-Behalf-Of (user routes) and client credentials (admin erasure) both sign a
 * client assertion with the certificate's key, which the Entra emulator verifies against the
 * certificate uploaded to the API's app registration.
 */
const registered = createClientCertificate({ commonName: 'acs-auth-server api' });
const stranger = createClientCertificate({ commonName: 'not uploaded' });

const temp = useTempFolder('acs-auth-cert-');
const pemFile = (name: string, content: string): string => temp.file(name, content);

describe('with a client certificate as the only Entra credential', () => {
  let service: TestService;
  let path: string;

  beforeAll(async () => {
    path = pemFile('api.pem', registered.combinedPem);
    service = await startTestService({
      env: { ENTRA_CLIENT_CERTIFICATE_PATH: path },
      localAzure: { apiCertificates: [registered.certPem] },
    });
  });

  afterAll(async () => {
    // Also fails if a line of the private key reached a log line or a response.
    await service.close();
  });

  it('is composed with the certificate and without the secret', () => {
    expect(graphStoreOf(service.config).credential).toEqual({ kind: 'certificate', path });
  });

  describe('POST /api/user', () => {
    it('answers 201 and maps the new identity (On-Behalf-Of signed with the certificate)', async () => {
      const created = await service.http
        .post('/api/user')
        .set({ Authorization: `Bearer ${await service.tokenFor('alice')}` })
        .expect(201);
      const { acsUserIdentity } = userBody(created);
      expect(acsUserIdentity).toMatch(ACS_ID);
      expect(mappedIdentityOf(service.local, DEMO_USERS.alice.oid)).toBe(acsUserIdentity);
      expect(service.local.acs.isAlive(acsUserIdentity)).toBe(true);
    });
  });

  describe('DELETE /api/user/{userObjectId} (admin erasure)', () => {
    it("answers 204 and erases the user with the app's own Graph token (client credentials signed with the certificate)", async () => {
      const bob = await service.http
        .post('/api/user')
        .set({ Authorization: `Bearer ${await service.tokenFor('bob')}` })
        .expect(201);
      const admin = { Authorization: `Bearer ${await service.tokenFor('alice', { roles: ['AcsAuth.Admin'] })}` };

      await service.http.delete(`/api/user/${DEMO_USERS.bob.oid}`).set(admin).expect(204);

      expect(service.local.acs.isAlive(userBody(bob).acsUserIdentity)).toBe(false);
      expect(mappedIdentityOf(service.local, DEMO_USERS.bob.oid)).toBeUndefined();
      expect(orphanedIdentities(service.local)).toEqual([]);
    });
  });
});

describe('with the certificate as App Service loads it on Linux (/var/ssl/private/<thumbprint>.p12, no password)', () => {
  let service: TestService;

  beforeAll(async () => {
    const pfx = forge.pkcs12.toPkcs12Asn1(
      forge.pki.privateKeyFromPem(registered.keyPem),
      forge.pki.certificateFromPem(registered.certPem),
      null,
    );
    const path = temp.path(`${registered.thumbprintSha1.toUpperCase()}.p12`);
    writeFileSync(path, Buffer.from(forge.asn1.toDer(pfx).getBytes(), 'binary'), { mode: 0o600 });
    service = await startTestService({
      env: { ENTRA_CLIENT_CERTIFICATE_PATH: path },
      localAzure: { apiCertificates: [registered.certPem] },
    });
  });

  afterAll(async () => {
    await service.close();
  });

  describe('POST /api/user', () => {
    it('answers 201 and maps the new identity (On-Behalf-Of signed with the key from the .p12)', async () => {
      const created = await service.http
        .post('/api/user')
        .set({ Authorization: `Bearer ${await service.tokenFor('alice')}` })
        .expect(201);
      const { acsUserIdentity } = userBody(created);
      expect(acsUserIdentity).toMatch(ACS_ID);
      expect(mappedIdentityOf(service.local, DEMO_USERS.alice.oid)).toBe(acsUserIdentity);
    });
  });
});

describe('with a certificate the app registration does not have', () => {
  let service: TestService;

  beforeAll(async () => {
    service = await startTestService({
      env: { ENTRA_CLIENT_CERTIFICATE_PATH: pemFile('stranger.pem', stranger.combinedPem) },
      localAzure: { apiCertificates: [registered.certPem] },
    });
  });

  afterAll(async () => {
    await service.close();
  });

  describe('POST /api/user', () => {
    it('answers 502 upstream_error, creates nothing, and logs the refusal (invalid_client)', async () => {
      const response = await service.http
        .post('/api/user')
        .set({ Authorization: `Bearer ${await service.tokenFor('carol')}` })
        .expect(502);
      expect(response.body).toMatchObject({ code: 'upstream_error' });
      expect(service.local.acs.aliveIdentityIds()).toEqual([]);
      expect(service.rawLogs.some((line) => line.includes('invalid_client') && line.includes('ENTRA_CLIENT_CERTIFICATE_PATH'))).toBe(true);
    });
  });
});

describe('at start-up, with a certificate file that cannot be used', () => {
  const env = {
    ENTRA_TENANT_ID: '11111111-2222-4333-8444-555555555555',
    ENTRA_CLIENT_ID: '66666666-7777-4888-9999-aaaaaaaaaaaa',
    ACS_CONNECTION_STRING: 'endpoint=https://contoso.communication.azure.com/;accesskey=a2V5',
    MAPPING_SEAL_KEYS: `k1:${Buffer.alloc(32, 5).toString('base64')}`,
  };
  const silent = createLogger({ level: 'silent', destination: new Writable({ write: (_chunk, _encoding, callback) => callback() }) });

  /**
   * Composing the service with this certificate file. It must throw a ConfigError, whose message is
   * what an operator reads first (server.ts prints it, then a pointer to the docs).
   */
  function startWith(path: string): () => unknown {
    const config = loadConfig({ ...env, ENTRA_CLIENT_CERTIFICATE_PATH: path });
    return () => composeService(config, { logger: silent });
  }

  it('stops with a message naming ENTRA_CLIENT_CERTIFICATE_PATH when the file is missing', () => {
    const start = startWith(temp.path('nowhere.pem'));
    expect(start).toThrow(ConfigError);
    expect(start).toThrow(/^Invalid configuration:\n {2}- ENTRA_CLIENT_CERTIFICATE_PATH names a file that does not exist/);
  });

  it('stops when the file holds the certificate but not its key', () => {
    const start = startWith(pemFile('public-only.pem', registered.certPem));
    expect(start).toThrow(ConfigError);
    expect(start).toThrow(/ENTRA_CLIENT_CERTIFICATE_PATH holds no private key/);
  });
});
