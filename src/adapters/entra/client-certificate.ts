import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

import type NodeForge from 'node-forge';

import { ConfigError } from '../../config/config';

/**
 * Reads the API's client certificate for Microsoft Entra ID from a file holding the private key and
 * the certificate (optionally with its chain), in either of two forms:
 * - PEM, as Key Vault exports a certificate whose content type is PEM;
 * - PKCS#12 (.p12/.pfx) without a password, as App Service writes a loaded certificate on Linux
 *   (`/var/ssl/private/<thumbprint>.p12` when WEBSITE_LOAD_CERTIFICATES names it).
 * It runs once at start-up in the composition root, so `loadConfig` stays a pure function of the
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
/** Every DER structure, PKCS#12 included, starts with a SEQUENCE tag; PEM is text. */
const DER_SEQUENCE = 0x30;

type FileForm = 'PEM' | 'PKCS#12';

interface PemBlock {
  readonly label: string;
  readonly text: string;
}

function fail(problem: string): never {
  throw new ConfigError([`${SETTING} ${problem}`]);
}

function readCertificateFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail(`names a file that does not exist: '${path}'`);
    if (code === 'EACCES' || code === 'EPERM') fail(`names a file this process may not read: '${path}'`);
    if (code === 'EISDIR') fail(`names a folder, not a certificate file: '${path}'`);
    return fail(`names a file that cannot be read (${code ?? 'unknown error'}): '${path}'`);
  }
}

function pemBlocksOf(pem: string): PemBlock[] {
  return [...pem.matchAll(PEM_BLOCK)].map((match) => ({ label: match[1]!, text: match[0] }));
}

/**
 * node-forge, loaded the first time a PKCS#12 file is read: a deployment with a client secret or a PEM
 * certificate never needs it, and it is a large module to load at every start.
 */
function loadForge(): typeof NodeForge {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a synchronous on-demand load; start-up composes synchronously
  return require('node-forge') as typeof NodeForge;
}

/**
 * The key and certificates of a PKCS#12 file as PEM blocks, so both forms go through the same checks.
 * App Service writes these files without a password. PKCS#12 derives its keys from the password's
 * bytes, and writers that mean "no password" use either the empty string (its terminating zero only)
 * or no bytes at all, so both are tried.
 */
function pemBlocksOfPkcs12(bytes: Buffer, path: string): PemBlock[] {
  const forge = loadForge();
  let der: NodeForge.asn1.Asn1;
  try {
    der = forge.asn1.fromDer(forge.util.createBuffer(bytes.toString('binary')));
  } catch {
    return fail(`holds neither PEM text nor a PKCS#12 structure ('${path}')`);
  }
  let pfx: NodeForge.pkcs12.Pkcs12Pfx | undefined;
  const problems: string[] = [];
  for (const password of ['', undefined]) {
    try {
      pfx = forge.pkcs12.pkcs12FromAsn1(der, password);
      break;
    } catch (error) {
      // forge's messages are fixed texts, never file content.
      problems.push(error instanceof Error ? error.message : String(error));
    }
  }
  if (pfx === undefined) {
    const other = problems.find((problem) => !problem.includes('MAC could not be verified'));
    if (other === undefined) {
      fail(
        `holds a password-protected PKCS#12 file ('${path}'); the service reads .p12/.pfx files without a password, as App Service writes them`,
      );
    }
    return fail(`holds a PKCS#12 file that cannot be read ('${path}': ${other}); it must hold an RSA key and its certificate`);
  }
  const bagsOf = (type: string): NodeForge.pkcs12.Bag[] => pfx.getBags({ bagType: type })[type] ?? [];
  const blocks: PemBlock[] = [];
  for (const bag of [...bagsOf(forge.pki.oids['pkcs8ShroudedKeyBag']!), ...bagsOf(forge.pki.oids['keyBag']!)]) {
    if (bag.key === undefined) continue;
    blocks.push({ label: 'RSA PRIVATE KEY', text: forge.pki.privateKeyToPem(bag.key) });
  }
  for (const bag of bagsOf(forge.pki.oids['certBag']!)) {
    // forge parses RSA certificates only and keeps the raw ASN.1 of others; node:crypto reads either.
    const asn1 = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1;
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary'));
    } catch {
      return fail(`holds a certificate that cannot be parsed ('${path}')`);
    }
    blocks.push({ label: 'CERTIFICATE', text: certificate.toString() });
  }
  return blocks;
}

function privateKeyOf(blocks: readonly PemBlock[], path: string, form: FileForm): KeyObject {
  if (blocks.some((block) => block.label === 'ENCRYPTED PRIVATE KEY')) {
    fail(`holds a password-protected private key ('${path}'); export the PEM without a password (Key Vault's PEM export has none)`);
  }
  const keys = blocks.filter((block) => KEY_LABELS.has(block.label));
  if (keys.length === 0) fail(`holds no private key ('${path}'); the ${form} file must contain the private key and the certificate`);
  if (keys.length > 1) fail(`holds ${keys.length} private keys ('${path}'); keep only the certificate's own key`);
  let key: KeyObject;
  try {
    key = createPrivateKey((keys[0] as { text: string }).text);
  } catch {
    return fail(`holds a private key that cannot be read ('${path}')`);
  }
  // msal-node signs client assertions with PS256 (RS256 for SHA-1 thumbprints): both need RSA.
  if (key.asymmetricKeyType !== 'rsa')
    fail(`holds a ${key.asymmetricKeyType ?? 'non-RSA'} key ('${path}'); Entra client certificates for msal must use RSA`);
  return key;
}

function certificatesOf(blocks: readonly PemBlock[], path: string, form: FileForm): X509Certificate[] {
  const texts = blocks.filter((block) => block.label === 'CERTIFICATE');
  if (texts.length === 0) fail(`holds no certificate ('${path}'); the ${form} file must contain the private key and the certificate`);
  return texts.map((block) => {
    try {
      return new X509Certificate(block.text);
    } catch {
      return fail(`holds a certificate that cannot be parsed ('${path}')`);
    }
  });
}

/**
 * Reads and checks the PEM or PKCS#12 file at `path`. Throws a ConfigError naming
 * ENTRA_CLIENT_CERTIFICATE_PATH when the file is missing or unreadable, is password-protected, holds no
 * key, a non-RSA key, no certificate, no certificate matching the key, or a certificate outside its
 * validity period. Never puts key material in a message.
 */
export function loadClientCertificate(path: string, now: Date = new Date()): ClientCertificate {
  const bytes = readCertificateFile(path);
  // A file that starts like DER and has no PEM armour is PKCS#12; anything else is read as PEM text.
  const form: FileForm = bytes[0] === DER_SEQUENCE && !bytes.includes('-----BEGIN ') ? 'PKCS#12' : 'PEM';
  const blocks = form === 'PKCS#12' ? pemBlocksOfPkcs12(bytes, path) : pemBlocksOf(bytes.toString('utf8'));
  const key = privateKeyOf(blocks, path, form);
  const certificates = certificatesOf(blocks, path, form);
  const leaf = certificates.find((certificate) => certificate.checkPrivateKey(key));
  if (leaf === undefined)
    fail(`holds a private key that matches none of its certificates ('${path}'); export the key and certificate together`);
  if (now < new Date(leaf.validFrom))
    fail(`holds a certificate that is not valid before ${new Date(leaf.validFrom).toISOString()} ('${path}')`);
  if (now > new Date(leaf.validTo)) {
    fail(
      `holds a certificate that expired on ${new Date(leaf.validTo).toISOString()} ('${path}'); renew it and upload the new one to the app registration`,
    );
  }
  const chain = [leaf, ...certificates.filter((certificate) => certificate !== leaf)];
  return {
    thumbprintSha256: leaf.fingerprint256.replace(/:/g, '').toLowerCase(),
    privateKey: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    x5c: chain.map((certificate) => certificate.toString()).join(''),
  };
}
