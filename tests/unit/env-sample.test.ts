import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { SETTING_NAMES } from '../../src/config/config';

const sample = readFileSync(join(__dirname, '..', '..', '.env.sample'), 'utf8');
const documented = [...sample.matchAll(/^#?\s?([A-Z][A-Z0-9_]+)=/gm)].flatMap((match) => match[1] ?? []);

describe('.env.sample', () => {
  it('documents every setting the service reads', () => {
    expect(SETTING_NAMES.filter((name) => !documented.includes(name))).toEqual([]);
  });

  it('documents no setting the service does not read', () => {
    expect(documented.filter((name) => !(SETTING_NAMES as readonly string[]).includes(name))).toEqual([]);
  });

  it('sets nothing, so copying it keeps local mode', () => {
    expect(sample.split('\n').filter((line) => /^[A-Z]/.test(line))).toEqual([]);
  });
});
