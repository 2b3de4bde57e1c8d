import { findLeaks, type CapturedResponse } from '../helpers/secrecy';

// The check every integration suite runs at close: prove it catches what it is meant to catch.
const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJhYmMifQ.c2lnbmF0dXJlLXBhcnQ';
const other = 'eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ4eXoifQ.b3RoZXItc2lnbmF0dXJl';
const ok = (path: string, body: unknown, status = 201, method = 'GET'): CapturedResponse => ({
  method,
  path,
  status,
  body: JSON.stringify(body),
});

describe('findLeaks', () => {
  it('accepts the ACS token a token route returns, and nothing else', () => {
    expect(findLeaks({ logLines: ['{"msg":"request"}'], responses: [ok('/api/token', { token: jwt })], secrets: [] })).toEqual([]);
    expect(findLeaks({ logLines: [], responses: [ok('/api/token/teams', { token: jwt })], secrets: [] })).toEqual([]);
  });

  it('flags a JWT in any log line', () => {
    expect(findLeaks({ logLines: [`{"msg":"x","assertion":"${jwt}"}`], responses: [], secrets: [] })).toHaveLength(1);
  });

  it('flags a JWT in a body that is not the issued token', () => {
    expect(findLeaks({ logLines: [], responses: [ok('/api/token', { token: jwt, debug: other })], secrets: [] })).toHaveLength(1);
    expect(findLeaks({ logLines: [], responses: [ok('/api/user', { message: jwt }, 400)], secrets: [] })).toHaveLength(1);
    expect(findLeaks({ logLines: [], responses: [ok('/api/token', { token: jwt }, 400)], secrets: [] })).toHaveLength(1);
  });

  it('flags a secret anywhere', () => {
    const secret = 'client-secret-value-123';
    expect(findLeaks({ logLines: [`{"x":"${secret}"}`], responses: [ok('/health', { s: secret }, 200)], secrets: [secret] })).toHaveLength(
      2,
    );
  });
});
