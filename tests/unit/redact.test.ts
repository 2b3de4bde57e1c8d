import { redactTokens } from '../../src/observability/redact';

/** Compact JWS/JWE look-alikes: the masking goes by shape, never by verifying anything. */
const JWS = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
const JWE = 'eyJhbGciOiJSU0EtT0FFUCJ9.a2V5LWtleS1rZXk.aXYtaXYtaXY.Y2lwaGVydGV4dA.dGFnLXRhZw';

describe('redactTokens', () => {
  it('masks a JWS or a whole JWE wherever it sits in the text, and leaves other text alone', () => {
    expect(redactTokens(`/api/nope/${JWS}/rest`, 1000)).toBe('/api/nope/[redacted]/rest');
    expect(redactTokens(`/x/Bearer%20${JWS}`, 1000)).toBe('/x/Bearer%20[redacted]');
    expect(redactTokens(`token=${JWE}&next=1`, 1000)).toBe('token=[redacted]&next=1');
    expect(redactTokens('/api/user/eyJ-not-a-token/a.b.c/eyJab.c.d', 1000)).toBe('/api/user/eyJ-not-a-token/a.b.c/eyJab.c.d');
  });

  it('cuts the text first, and masks a token the cut goes through', () => {
    const path = `/nope/${'a'.repeat(40)}/${JWS}`;
    const cutInPayload = path.indexOf('.') + 5;

    expect(redactTokens(path, cutInPayload)).toBe(`/nope/${'a'.repeat(40)}/[redacted]…`);
    expect(redactTokens('a'.repeat(300), 256)).toBe(`${'a'.repeat(256)}…`);
  });
});
