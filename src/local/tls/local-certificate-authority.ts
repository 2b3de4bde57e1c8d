import { createHash, generateKeyPair, generateKeyPairSync, randomBytes, type RSAKeyPairOptions } from 'node:crypto';
import { promisify } from 'node:util';
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

interface KeyPairPem {
  readonly publicKeyPem: string;
  readonly privateKeyPem: string;
}

const RSA_2048_PEM: RSAKeyPairOptions<'pem', 'pem'> = {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
};

// node's native RSA generation takes a few hundred milliseconds at most; forge's pure-JS one takes seconds.
function newKeyPair(): KeyPairPem {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', RSA_2048_PEM);
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}

const generateRsaPem = promisify(generateKeyPair);

/** The same, off the main thread (libuv's pool), so several keys are made at once on several cores. */
async function newKeyPairInBackground(): Promise<KeyPairPem> {
  const { publicKey, privateKey } = await generateRsaPem('rsa', RSA_2048_PEM);
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

/** The CA and the server certificate, made synchronously (tests that need them before anything starts). */
export function createLocalCertificates(options: LocalCertificateOptions = {}): LocalCertificates {
  const checked = checkedOptions(options);
  return issueCertificates(checked, newKeyPair(), newKeyPair());
}

/**
 * The same, with both keys made at once off the main thread: local mode's start waits on key
 * generation more than on anything else.
 */
export async function generateLocalCertificates(options: LocalCertificateOptions = {}): Promise<LocalCertificates> {
  const checked = checkedOptions(options);
  const [caKeys, serverKeys] = await Promise.all([newKeyPairInBackground(), newKeyPairInBackground()]);
  return issueCertificates(checked, caKeys, serverKeys);
}

interface CheckedCertificateOptions {
  readonly hosts: readonly string[];
  /** The first host, also the subject's common name. */
  readonly commonName: string;
  readonly days: number;
}

function checkedOptions(options: LocalCertificateOptions): CheckedCertificateOptions {
  const hosts = options.hosts ?? DEFAULT_HOSTS;
  const days = options.validityDays ?? 30;
  const [commonName] = hosts;
  if (commonName === undefined) throw new TypeError('hosts must name at least one host');
  if (!Number.isInteger(days) || days < 1) throw new TypeError('validityDays must be a positive integer');
  return { hosts, commonName, days };
}

function issueCertificates(
  { hosts, commonName, days }: CheckedCertificateOptions,
  caKeys: KeyPairPem,
  serverKeys: KeyPairPem,
): LocalCertificates {
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

  const server = forge.pki.createCertificate();
  server.publicKey = forge.pki.publicKeyFromPem(serverKeys.publicKeyPem);
  server.serialNumber = serialNumber();
  validity(server, days);
  server.setSubject([{ name: 'commonName', value: commonName }]);
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

/** A self-signed certificate and its key, as uploaded to (public part) and held by (both) a confidential client. */
export interface ClientCertificateMaterial {
  /** PEM of the self-signed certificate: what an app registration's "Certificates" section holds. */
  readonly certPem: string;
  /** PEM (PKCS#8) of the private key. */
  readonly keyPem: string;
  /** Key then certificate in one PEM file, the form App Service and Key Vault export. */
  readonly combinedPem: string;
  /** Hex SHA-256 thumbprint of the certificate's DER, lower case. */
  readonly thumbprintSha256: string;
  /** Hex SHA-1 thumbprint (the legacy `x5t`), lower case. */
  readonly thumbprintSha1: string;
}

export interface ClientCertificateOptions {
  readonly commonName?: string;
  /** Start of validity (default one minute ago); put it in the past with a short validity for an expired certificate. */
  readonly notBefore?: Date;
  /** Days of validity from `notBefore` (default 30). */
  readonly validityDays?: number;
}

/**
 * A throwaway self-signed client certificate (RSA 2048, SHA-256), the kind `New-SelfSignedCertificate`
 * or Key Vault makes for an app registration's certificate credential. Local mode and the tests
 * register its public part on the API's app registration in the Entra emulator.
 */
export function createClientCertificate(options: ClientCertificateOptions = {}): ClientCertificateMaterial {
  const days = options.validityDays ?? 30;
  if (!(days > 0)) throw new TypeError('validityDays must be positive');
  const keys = newKeyPair();
  const subject = [{ name: 'commonName', value: options.commonName ?? 'acs-auth-server client certificate (throwaway)' }];
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  cert.serialNumber = serialNumber();
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + days * 86_400_000);
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keys.privateKeyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return Object.freeze({
    certPem,
    keyPem: keys.privateKeyPem,
    combinedPem: `${keys.privateKeyPem.trimEnd()}\n${certPem}`,
    thumbprintSha256: createHash('sha256').update(der).digest('hex'),
    thumbprintSha1: createHash('sha1').update(der).digest('hex'),
  });
}
