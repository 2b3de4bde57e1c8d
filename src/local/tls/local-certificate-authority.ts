import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/**
 * A throwaway certificate authority and one server certificate for the local emulators.
 *
 * msal-node refuses non-https authorities, and the Graph client only sends its bearer token over
 * https, so the Entra ID and Graph emulators must speak TLS. The CA is made in memory at start-up
 * (nothing is downloaded or written), and only the service's own emulator clients are told to trust
 * it: TLS verification is never switched off.
 */
export interface LocalCertificates {
  /** PEM of the CA certificate: hand it to the clients that talk to the emulators. */
  readonly caCertPem: string;
  /** PEM of the server certificate (signed by the CA), for the emulators' TLS servers. */
  readonly certPem: string;
  /** PEM (PKCS#8) of the server certificate's private key. */
  readonly keyPem: string;
}

export interface LocalCertificateOptions {
  /** Host names and IP addresses the server certificate is valid for. */
  readonly hosts?: readonly string[];
  /** How long both certificates stay valid. */
  readonly validityDays?: number;
}

const DEFAULT_HOSTS = ['127.0.0.1', '::1', 'localhost'] as const;
const IP_ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]+)$/i;

function newKeyPair(): { publicKeyPem: string; privateKeyPem: string } {
  // node's native RSA generation takes tens of milliseconds; forge's pure-JS one takes seconds.
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

function serialNumber(): string {
  // A positive 16-byte serial: a leading 0 nibble keeps the DER integer from reading as negative.
  return `0${randomBytes(16).toString('hex').slice(1)}`;
}

function validity(cert: forge.pki.Certificate, days: number): void {
  const notBefore = new Date(Date.now() - 60_000); // tolerate a little clock skew
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + days * 86_400_000);
}

export function createLocalCertificates(options: LocalCertificateOptions = {}): LocalCertificates {
  const hosts = options.hosts ?? DEFAULT_HOSTS;
  const days = options.validityDays ?? 30;
  if (hosts.length === 0) throw new TypeError('hosts must name at least one host');
  if (!Number.isInteger(days) || days < 1) throw new TypeError('validityDays must be a positive integer');

  const caKeys = newKeyPair();
  const caKey = forge.pki.privateKeyFromPem(caKeys.privateKeyPem);
  const caSubject = [
    { name: 'commonName', value: 'acs-auth-server local emulator CA (throwaway)' },
    { name: 'organizationName', value: 'acs-auth-server local mode' },
  ];
  const ca = forge.pki.createCertificate();
  ca.publicKey = forge.pki.publicKeyFromPem(caKeys.publicKeyPem);
  ca.serialNumber = serialNumber();
  validity(ca, days);
  ca.setSubject(caSubject);
  ca.setIssuer(caSubject);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKey, forge.md.sha256.create());

  const serverKeys = newKeyPair();
  const server = forge.pki.createCertificate();
  server.publicKey = forge.pki.publicKeyFromPem(serverKeys.publicKeyPem);
  server.serialNumber = serialNumber();
  validity(server, days);
  server.setSubject([{ name: 'commonName', value: hosts[0] as string }]);
  server.setIssuer(caSubject);
  server.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      // type 7 is an IP address, type 2 a DNS name (RFC 5280 GeneralName).
      altNames: hosts.map((host) => (IP_ADDRESS.test(host) ? { type: 7, ip: host } : { type: 2, value: host })),
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  server.sign(caKey, forge.md.sha256.create());

  return Object.freeze({
    caCertPem: forge.pki.certificateToPem(ca),
    certPem: forge.pki.certificateToPem(server),
    keyPem: serverKeys.privateKeyPem,
  });
}
