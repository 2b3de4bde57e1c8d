import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';

import { loadClientCertificate } from '../../src/adapters/entra/client-certificate';
import { ConfigError } from '../../src/config/config';
import { createClientCertificate, createLocalCertificates } from '../../src/local/tls/local-certificate-authority';
import { useTempFolder } from '../helpers/temp-files';

const certificate = createClientCertificate();
const other = createClientCertificate();

const temp = useTempFolder('acs-auth-client-cert-');
const pemFile = (name: string, content: string): string => temp.file(name, content);

function problemOf(path: string): string {
  try {
    loadClientCertificate(path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    expect(error.problems).toHaveLength(1);
    return error.problems[0] as string;
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
      const encrypted = createPrivateKey(certificate.keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString();
      expect(problemOf(pemFile('encrypted.pem', `${encrypted}${certificate.certPem}`))).toMatch(/password-protected/);
    });

    it('a key that is not RSA (msal signs with PS256)', () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
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
