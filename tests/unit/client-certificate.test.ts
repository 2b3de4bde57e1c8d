import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';

import forge from 'node-forge';

import { loadClientCertificate } from '../../src/adapters/entra/client-certificate';
import { ConfigError } from '../../src/config/config';
import { createClientCertificate, createLocalCertificates } from '../../src/local/tls/local-certificate-authority';
import { useTempFolder } from '../helpers/temp-files';

const certificate = createClientCertificate();
const other = createClientCertificate();

const temp = useTempFolder('acs-auth-client-cert-');
const pemFile = (name: string, content: string): string => temp.file(name, content);

interface Pkcs12Options {
  /** null: no password at all (what App Service writes); '' the empty password; anything else protects the file. */
  readonly password?: string | null;
  readonly algorithm?: 'aes128' | 'aes256' | '3des';
}

/** A PKCS#12 file made with node-forge, as App Service, Key Vault or openssl would hand it over. */
function pkcs12File(name: string, keyPem: string | null, certPems: readonly string[], options: Pkcs12Options = {}): string {
  const key = keyPem === null ? null : forge.pki.privateKeyFromPem(keyPem);
  const certs = certPems.map((pem) => forge.pki.certificateFromPem(pem));
  const asn1 = forge.pkcs12.toPkcs12Asn1(key, certs, options.password ?? null, { algorithm: options.algorithm ?? 'aes128' });
  const path = temp.path(name);
  writeFileSync(path, Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary'), { mode: 0o600 });
  return path;
}

/** App Service names a loaded certificate's file after its SHA-1 thumbprint. */
const appServiceName = (sha1: string): string => `${sha1.toUpperCase()}.p12`;

function problemOf(path: string): string {
  try {
    loadClientCertificate(path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    expect(error.problems).toHaveLength(1);
    return error.problems.join('\n');
  }
  throw new Error('loadClientCertificate accepted the file');
}

describe('loadClientCertificate', () => {
  describe('with the private key and its certificate in one PEM file', () => {
    it('returns the SHA-256 thumbprint, the key as PKCS#8 PEM and the certificate as x5c', () => {
      const loaded = loadClientCertificate(pemFile('combined.pem', certificate.combinedPem));
      expect(loaded.thumbprintSha256).toBe(certificate.thumbprintSha256);
      expect(loaded.thumbprintSha256).toBe(new X509Certificate(certificate.certPem).fingerprint256.replace(/:/g, '').toLowerCase());
      expect(loaded.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(new X509Certificate(loaded.x5c).checkPrivateKey(createPrivateKey(loaded.privateKey))).toBe(true);
    });

    it('finds the certificate that matches the key whatever the order, and puts it first in x5c', () => {
      const { caCertPem } = createLocalCertificates();
      const loaded = loadClientCertificate(pemFile('chain.pem', `${caCertPem}${certificate.certPem}${certificate.keyPem}`));
      expect(loaded.thumbprintSha256).toBe(certificate.thumbprintSha256);
      expect(loaded.x5c.startsWith(new X509Certificate(certificate.certPem).toString())).toBe(true);
      expect(loaded.x5c).toContain(new X509Certificate(caCertPem).toString());
    });

    it('accepts a PKCS#1 (RSA PRIVATE KEY) key and hands msal PKCS#8', () => {
      const pkcs1 = createPrivateKey(certificate.keyPem).export({ type: 'pkcs1', format: 'pem' }).toString();
      const loaded = loadClientCertificate(pemFile('pkcs1.pem', `${pkcs1}${certificate.certPem}`));
      expect(loaded.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(loaded.thumbprintSha256).toBe(certificate.thumbprintSha256);
    });

    it('accepts CRLF line endings (a file saved on Windows)', () => {
      const loaded = loadClientCertificate(pemFile('crlf.pem', certificate.combinedPem.replace(/\r?\n/g, '\r\n')));
      expect(loaded.thumbprintSha256).toBe(certificate.thumbprintSha256);
    });
  });

  describe('with the key and certificate in a PKCS#12 file without a password (App Service, /var/ssl/private/<thumbprint>.p12)', () => {
    it('returns the same thumbprint, key and x5c as the PEM form', () => {
      const fromPem = loadClientCertificate(pemFile('same.pem', certificate.combinedPem));
      const fromPkcs12 = loadClientCertificate(
        pkcs12File(appServiceName(certificate.thumbprintSha1), certificate.keyPem, [certificate.certPem]),
      );
      expect(fromPkcs12).toEqual(fromPem);
      expect(fromPkcs12.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    });

    it.each([
      ['no password at all, unencrypted bags', { password: null }],
      ['the empty password, AES-128 bags', { password: '', algorithm: 'aes128' }],
      ['the empty password, AES-256 bags', { password: '', algorithm: 'aes256' }],
      ['the empty password, 3DES bags (older Windows exports)', { password: '', algorithm: '3des' }],
    ] as const)('reads %s', (_label, options) => {
      const loaded = loadClientCertificate(
        pkcs12File(
          `variant-${String(options.password)}-${'algorithm' in options ? options.algorithm : 'none'}.p12`,
          certificate.keyPem,
          [certificate.certPem],
          options,
        ),
      );
      expect(loaded.thumbprintSha256).toBe(certificate.thumbprintSha256);
      expect(new X509Certificate(loaded.x5c).checkPrivateKey(createPrivateKey(loaded.privateKey))).toBe(true);
    });

    it('puts the certificate that matches the key first in x5c, followed by the chain', () => {
      const { caCertPem } = createLocalCertificates();
      const loaded = loadClientCertificate(pkcs12File('chain.p12', certificate.keyPem, [caCertPem, certificate.certPem]));
      expect(loaded.thumbprintSha256).toBe(certificate.thumbprintSha256);
      expect(loaded.x5c.startsWith(new X509Certificate(certificate.certPem).toString())).toBe(true);
      expect(loaded.x5c).toContain(new X509Certificate(caCertPem).toString());
    });

    it('is recognised by its content, whatever the file is called', () => {
      const loaded = loadClientCertificate(pkcs12File('api-credential.bin', certificate.keyPem, [certificate.certPem]));
      expect(loaded.thumbprintSha256).toBe(certificate.thumbprintSha256);
    });
  });

  describe('refuses a PKCS#12 file, naming ENTRA_CLIENT_CERTIFICATE_PATH,', () => {
    it('protected by a password', () => {
      expect(problemOf(pkcs12File('protected.p12', certificate.keyPem, [certificate.certPem], { password: 'pw' }))).toMatch(
        /^ENTRA_CLIENT_CERTIFICATE_PATH holds a password-protected PKCS#12 file .*without a password/,
      );
    });

    it('without a private key (a public certificate export)', () => {
      expect(problemOf(pkcs12File('public.p12', null, [certificate.certPem]))).toMatch(
        /holds no private key .*the PKCS#12 file must contain/,
      );
    });

    it('whose key belongs to none of its certificates', () => {
      expect(problemOf(pkcs12File('mismatch.p12', certificate.keyPem, [other.certPem]))).toMatch(/matches none of its certificates/);
    });

    it('with an expired certificate', () => {
      const expired = createClientCertificate({ notBefore: new Date(Date.now() - 3 * 86_400_000), validityDays: 1 });
      expect(problemOf(pkcs12File('expired.p12', expired.keyPem, [expired.certPem]))).toMatch(/expired on .*renew it/);
    });

    it('that is binary but not PKCS#12', () => {
      const path = temp.path('not-pkcs12.p12');
      writeFileSync(path, Buffer.from([0x30, 0x82, 0xff, 0xff, 0x01, 0x02, 0x03]));
      expect(problemOf(path)).toMatch(
        /^ENTRA_CLIENT_CERTIFICATE_PATH holds (neither PEM text nor a PKCS#12 structure|a PKCS#12 file that cannot be read)/,
      );
    });

    it('without putting key material in the message', () => {
      const keyLines = certificate.keyPem.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
      const problem = problemOf(pkcs12File('leak-check.p12', certificate.keyPem, [other.certPem]));
      for (const line of keyLines) expect(problem).not.toContain(line);
    });
  });

  describe('refuses, naming ENTRA_CLIENT_CERTIFICATE_PATH,', () => {
    it('a file that does not exist', () => {
      expect(problemOf(temp.path('missing.pem'))).toMatch(/^ENTRA_CLIENT_CERTIFICATE_PATH names a file that does not exist/);
    });

    it('a folder', () => {
      expect(problemOf(temp.folder())).toMatch(/^ENTRA_CLIENT_CERTIFICATE_PATH names a folder/);
    });

    it('a file without a private key', () => {
      expect(problemOf(pemFile('cert-only.pem', certificate.certPem))).toMatch(/^ENTRA_CLIENT_CERTIFICATE_PATH holds no private key/);
    });

    it('a file without a certificate', () => {
      expect(problemOf(pemFile('key-only.pem', certificate.keyPem))).toMatch(/^ENTRA_CLIENT_CERTIFICATE_PATH holds no certificate/);
    });

    it('a key that belongs to none of the certificates', () => {
      expect(problemOf(pemFile('mismatch.pem', `${certificate.keyPem}${other.certPem}`))).toMatch(/matches none of its certificates/);
    });

    it('a password-protected key', () => {
      const encrypted = createPrivateKey(certificate.keyPem)
        .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' })
        .toString();
      expect(problemOf(pemFile('encrypted.pem', `${encrypted}${certificate.certPem}`))).toMatch(/password-protected/);
    });

    it('a key that is not RSA (msal signs with PS256)', () => {
      const { privateKey } = generateKeyPairSync('ec', {
        namedCurve: 'P-256',
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      });
      expect(problemOf(pemFile('ec.pem', `${privateKey}${certificate.certPem}`))).toMatch(/holds a ec key .*RSA/);
    });

    it('an expired certificate', () => {
      const expired = createClientCertificate({ notBefore: new Date(Date.now() - 3 * 86_400_000), validityDays: 1 });
      expect(problemOf(pemFile('expired.pem', expired.combinedPem))).toMatch(/expired on .*renew it/);
    });

    it('garbage, without echoing any of the file', () => {
      const problem = problemOf(pemFile('garbage.pem', 'not a pem file'));
      expect(problem).toMatch(/holds no private key/);
      expect(problem).not.toContain('not a pem file');
    });
  });

  it('never puts key material in its messages', () => {
    const keyLines = certificate.keyPem.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
    const problem = problemOf(pemFile('leak-check.pem', `${certificate.keyPem}${other.certPem}`));
    for (const line of keyLines) expect(problem).not.toContain(line);
  });
});
