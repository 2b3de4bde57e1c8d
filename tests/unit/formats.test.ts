import { parseConnectionString } from '@azure/communication-common';
import fc from 'fast-check';

import {
  GUID_PATTERN_SOURCE,
  isBareOrigin,
  isBase64,
  isGuid,
  isHttpsOrLoopback,
  isLoopbackHost,
  parseAcsConnectionString,
} from '../../src/validation/formats';

describe('isGuid', () => {
  it.each(['00000000-0000-0000-0000-000000000000', 'A1B2C3D4-e5f6-7890-abcd-EF1234567890'])('accepts %s', (value) => {
    expect(isGuid(value)).toBe(true);
  });

  it.each([
    '',
    '00000000-0000-0000-0000-00000000000',
    '00000000-0000-0000-0000-0000000000000',
    '{00000000-0000-0000-0000-000000000000}',
    '00000000000000000000000000000000',
    ' 00000000-0000-0000-0000-000000000000',
    '00000000-0000-0000-0000-000000000000\n',
    'g0000000-0000-0000-0000-000000000000',
  ])('refuses %j', (value) => {
    expect(isGuid(value)).toBe(false);
  });

  it('refuses what is not a string', () => {
    expect(isGuid(undefined)).toBe(false);
    expect(isGuid(42)).toBe(false);
  });

  it('composes into larger patterns (unanchored source)', () => {
    const acsUser = new RegExp(`^8:acs:${GUID_PATTERN_SOURCE}_${GUID_PATTERN_SOURCE}$`);
    expect(acsUser.test(`8:acs:${'1'.repeat(8)}-1111-1111-1111-${'1'.repeat(12)}_${'2'.repeat(8)}-2222-2222-2222-${'2'.repeat(12)}`)).toBe(
      true,
    );
  });
});

describe('isLoopbackHost and isHttpsOrLoopback', () => {
  it.each(['localhost', 'LOCALHOST', '127.0.0.1', '127.255.0.9', '::1', '[::1]'])('%s is loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each(['localhost.contoso.com', '128.0.0.1', '10.0.0.1', '127.0.0.1.nip.io', '[::2]', '0.0.0.0', ''])('%s is not loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });

  it.each([
    ['https://contoso.communication.azure.com/', true],
    ['http://127.0.0.1:5000/', true],
    ['http://[::1]:5000/', true],
    ['http://localhost/', true],
    ['http://contoso.communication.azure.com/', false],
    ['ftp://127.0.0.1/', false],
    ['ws://localhost/', false],
  ])('%s: https or loopback http is %s', (url, expected) => {
    expect(isHttpsOrLoopback(new URL(url))).toBe(expected);
  });
});

describe('isBareOrigin', () => {
  it.each([
    ['https://contoso.communication.azure.com', true],
    ['https://contoso.communication.azure.com/', true],
    ['https://contoso.communication.azure.com/path', false],
    ['https://contoso.communication.azure.com/?q=1', false],
    ['https://contoso.communication.azure.com/#f', false],
    ['https://user:pw@contoso.communication.azure.com/', false],
  ])('%s is a bare origin: %s', (url, expected) => {
    expect(isBareOrigin(new URL(url))).toBe(expected);
  });
});

describe('isBase64', () => {
  it.each(['AAAA', 'YWJjZA==', 'YWJjZGU=', 'a+/Z'])('accepts %s', (value) => expect(isBase64(value)).toBe(true));
  it.each(['', 'AAA', 'YWJjZA=', 'YW Jj', 'YWJj\n', 'YWJj-_==', '===='])('refuses %j', (value) => expect(isBase64(value)).toBe(false));
});

describe('parseAcsConnectionString reads a connection string as the ACS SDK does', () => {
  const sdkReading = (value: string): { endpoint: string; accessKey: string } | undefined => {
    try {
      const parsed = parseConnectionString(value);
      return { endpoint: parsed.endpoint, accessKey: parsed.credential.key };
    } catch {
      return undefined;
    }
  };

  it('splits a well-formed string', () => {
    expect(parseAcsConnectionString('endpoint=https://contoso.communication.azure.com/;accesskey=QUJD')).toEqual({
      endpoint: 'https://contoso.communication.azure.com/',
      accessKey: 'QUJD',
    });
  });

  it.each(['endpoint=https://a/;accesskey=', 'endpoint=;accesskey=QUJD', 'accesskey=QUJD;endpoint=https://a/', 'https://a/;QUJD', ''])(
    'refuses %j, as the SDK does',
    (value) => {
      expect(parseAcsConnectionString(value)).toBeUndefined();
      expect(sdkReading(value)).toBeUndefined();
    },
  );

  it('agrees with the SDK on arbitrary strings built from the separators', () => {
    const piece = fc.constantFrom('endpoint=', 'ENDPOINT=', 'accesskey=', 'AccessKey=', ';', 'https://a.b/', 'QUJD', '=', '', ' ');
    const candidate = fc.array(piece, { maxLength: 8 }).map((pieces) => pieces.join(''));
    fc.assert(
      fc.property(candidate, (value) => {
        expect(parseAcsConnectionString(value)).toEqual(sdkReading(value));
      }),
      { numRuns: 2000 },
    );
  });
});
