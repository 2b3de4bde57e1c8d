/**
 * What the service tells the page at `/page-settings.json` (src/web/page-settings.ts builds it). Checked on
 * arrival, so a service and page of different versions fail with a message instead of a sign-in to nowhere.
 */
export interface PageSettings {
  readonly mode: 'local' | 'azure';
  readonly clientId: string;
  readonly authority: string;
  readonly knownAuthorities: readonly string[];
  readonly authorityMetadataUrl?: string;
  readonly apiScope: string;
  readonly teams: { readonly scopes: readonly string[]; readonly exchange: boolean };
}

export async function fetchPageSettings(): Promise<PageSettings> {
  const response = await fetch('/page-settings.json');
  if (!response.ok) throw new Error(`/page-settings.json answered ${response.status}.`);
  const value: unknown = await response.json();
  if (!isPageSettings(value)) throw new Error('/page-settings.json is not what this page expects (a page of another version?).');
  return value;
}

function isPageSettings(value: unknown): value is PageSettings {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const teams = record['teams'] as Record<string, unknown> | undefined;
  return (
    (record['mode'] === 'local' || record['mode'] === 'azure') &&
    typeof record['clientId'] === 'string' &&
    typeof record['authority'] === 'string' &&
    isStrings(record['knownAuthorities']) &&
    (record['authorityMetadataUrl'] === undefined || typeof record['authorityMetadataUrl'] === 'string') &&
    typeof record['apiScope'] === 'string' &&
    typeof teams === 'object' &&
    teams !== null &&
    isStrings(teams['scopes']) &&
    typeof teams['exchange'] === 'boolean'
  );
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
