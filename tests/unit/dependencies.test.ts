import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Production dependencies must be maintained. The registry these machines reach refuses `npm audit`,
 * so this list of packages known to be deprecated or archived is checked against the lockfile.
 */
interface LockEntry {
  readonly version?: string;
  readonly dev?: boolean;
  readonly optional?: boolean;
}

const lock = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package-lock.json'), 'utf8')) as {
  readonly lockfileVersion: number;
  readonly packages: Readonly<Record<string, LockEntry>>;
};

const productionPackages = Object.entries(lock.packages)
  .filter(([path, entry]) => path.startsWith('node_modules/') && entry.dev !== true)
  .map(([path, entry]) => ({ name: path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length), version: entry.version ?? '' }));

function major(version: string): number {
  return Number(version.split('.')[0]);
}

/** name → why it is refused; a version test narrows the refusal where only old majors are bad. */
const REFUSED: readonly { readonly name: string; readonly why: string; readonly applies?: (version: string) => boolean }[] = [
  { name: 'passport-azure-ad', why: 'archived by Microsoft (2023); validate tokens with jose' },
  { name: 'request', why: 'deprecated since 2020' },
  { name: 'request-promise', why: 'deprecated with request' },
  { name: 'express-jwt', why: 'versions before 8 are unmaintained', applies: (version) => major(version) < 8 },
  { name: 'jwks-rsa', why: 'versions before 2 are unmaintained', applies: (version) => major(version) < 2 },
  { name: 'node-fetch', why: 'v2 is in maintenance only; Node has fetch', applies: (version) => major(version) < 3 },
  { name: 'adal-node', why: 'ADAL is retired; use MSAL' },
  { name: 'uuid', why: 'versions before 7 are deprecated', applies: (version) => major(version) < 7 },
];

describe('production dependencies', () => {
  it('are read from a v3 lockfile', () => {
    expect(lock.lockfileVersion).toBeGreaterThanOrEqual(3);
    expect(productionPackages.length).toBeGreaterThan(10);
  });

  it('include no package known to be deprecated or archived', () => {
    const offenders = productionPackages.flatMap(({ name, version }) =>
      REFUSED.filter((rule) => rule.name === name && (rule.applies?.(version) ?? true)).map((rule) => `${name}@${version}: ${rule.why}`),
    );
    expect(offenders).toEqual([]);
  });

  it('are all pinned by the lockfile', () => {
    expect(productionPackages.filter(({ version }) => version === '')).toEqual([]);
  });
});
