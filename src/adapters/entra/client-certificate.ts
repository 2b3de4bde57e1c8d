import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { ConfigError } from '../../config/config';

/**
 * Reads the API's client certificate for Microsoft Entra ID from a PEM file holding the private key
 * and the certificate (optionally with its chain): the form App Service and Key Vault export. It
 * runs once at start-up in the composition root, so `loadConfig` stays a pure function of the
 * environment, and a bad file stops the service with a message naming the setting.
 */
export interface ClientCertificate {
  /** Hex SHA-256 thumbprint of the certificate that matches the key, lower case (msal's `thumbprintSha256`). */
  readonly thumbprintSha256: string;
  /** The private key as unencrypted PKCS#8 PEM, the form msal signs client assertions with. */
  readonly privateKey: string;
  /** PEM of that certificate followed by the rest of the file's certificates (msal's `x5c`, for subject name/issuer authentication). */
  readonly x5c: string;
}

const SETTING = 'ENTRA_CLIENT_CERTIFICATE_PATH';
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const KEY_LABELS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);

function fail(problem: string): never {
  throw new ConfigError([`${SETTING} ${problem}`]);
}

function readPem(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail(`names a file that does not exist: '${path}'`);
    if (code === 'EACCES' || code === 'EPERM') fail(`names a file this process may not read: '${path}'`);
    if (code === 'EISDIR') fail(`names a folder, not a PEM file: '${path}'`);
    return fail(`names a file that cannot be read (${code ?? 'unknown error'}): '${path}'`);
  }
}

function privateKeyOf(blocks: readonly { label: string; text: string }[], path: string): KeyObject {
  if (blocks.some((block) => block.label === 'ENCRYPTED PRIVATE KEY')) {
    fail(`holds a password-protected private key ('${path}'); export the PEM without a password (Key Vault's PEM export has none)`);
  }
  const keys = blocks.filter((block) => KEY_LABELS.has(block.label));
  if (keys.length === 0) fail(`holds no private key ('${path}'); the PEM file must contain the private key and the certificate`);
  if (keys.length > 1) fail(`holds ${keys.length} private keys ('${path}'); keep only the certificate's own key`);
  let key: KeyObject;
  try {
    key = createPrivateKey((keys[0] as { text: string }).text);
  } catch {
    return fail(`holds a private key that cannot be read ('${path}')`);
  }
  // msal-node signs client assertions with PS256 (RS256 for SHA-1 thumbprints): both need RSA.
  if (key.asymmetricKeyType !== 'rsa') fail(`holds a ${key.asymmetricKeyType ?? 'non-RSA'} key ('${path}'); Entra client certificates for msal must use RSA`);
  return key;
}

function certificatesOf(blocks: readonly { label: string; text: string }[], path: string): X509Certificate[] {
  const texts = blocks.filter((block) => block.label === 'CERTIFICATE');
  if (texts.length === 0) fail(`holds no certificate ('${path}'); the PEM file must contain the private key and the certificate`);
  return texts.map((block) => {
    try {
      return new X509Certificate(block.text);
    } catch {
      return fail(`holds a certificate that cannot be parsed ('${path}')`);
    }
  });
}

/**
 * Reads and checks the PEM file at `path`. Throws a ConfigError naming ENTRA_CLIENT_CERTIFICATE_PATH when
 * the file is missing or unreadable, holds no key, an encrypted or non-RSA key, no certificate, no
 * certificate matching the key, or a certificate outside its validity period. Never puts key material
 * in a message.
 */
export function loadClientCertificate(path: string, now: Date = new Date()): ClientCertificate {
  const pem = readPem(path);
  const blocks = [...pem.matchAll(PEM_BLOCK)].map((match) => ({ label: match[1] as string, text: match[0] }));
  const key = privateKeyOf(blocks, path);
  const certificates = certificatesOf(blocks, path);
  const leaf = certificates.find((certificate) => certificate.checkPrivateKey(key));
  if (leaf === undefined) fail(`holds a private key that matches none of its certificates ('${path}'); export the key and certificate together`);
  if (now < new Date(leaf.validFrom)) fail(`holds a certificate that is not valid before ${new Date(leaf.validFrom).toISOString()} ('${path}')`);
  if (now > new Date(leaf.validTo)) {
    fail(`holds a certificate that expired on ${new Date(leaf.validTo).toISOString()} ('${path}'); renew it and upload the new one to the app registration`);
  }
  const chain = [leaf, ...certificates.filter((certificate) => certificate !== leaf)];
  return {
    thumbprintSha256: leaf.fingerprint256.replace(/:/g, '').toLowerCase(),
    privateKey: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    x5c: chain.map((certificate) => certificate.toString()).join(''),
  };
}
