import { BadRequestError } from '../../src/errors/app-errors';
import { parseTokenOptions } from '../../src/routes/token-options';

const allowed = { scopes: ['chat', 'voip'] as const, expiresInMinutes: undefined };

describe('parseTokenOptions', () => {
  it('defaults to every configured scope and the ACS default lifetime', () => {
    expect(parseTokenOptions({}, allowed)).toEqual({ scopes: ['chat', 'voip'], expiresInMinutes: undefined });
  });

  it('takes a subset of the configured scopes and a lifetime from 60 to 1440 minutes', () => {
    expect(parseTokenOptions({ scopes: 'voip', expiresInMinutes: '60' }, allowed)).toEqual({ scopes: ['voip'], expiresInMinutes: 60 });
    expect(parseTokenOptions({ scopes: 'chat, voip,chat', expiresInMinutes: '1440' }, allowed)).toEqual({
      scopes: ['chat', 'voip'],
      expiresInMinutes: 1440,
    });
  });

  it.each([
    [{ scopes: 'chat.join' }, /'scopes' may only name chat, voip; refused: chat.join/],
    [{ scopes: '' }, /'scopes' must be a comma-separated list/],
    [{ scopes: ['chat', 'voip'] }, /'scopes' must be given once/],
    [{ expiresInMinutes: '59' }, /'expiresInMinutes' must be a whole number from 60 to 1440/],
    [{ expiresInMinutes: '1441' }, /'expiresInMinutes'/],
    [{ expiresInMinutes: '60.5' }, /'expiresInMinutes'/],
    [{ expiresInMinutes: '1e3' }, /'expiresInMinutes'/],
    [{ lifetime: '60' }, /Unknown query parameter 'lifetime'/],
  ])('refuses %j with a message naming the parameter', (query, message) => {
    expect(() => parseTokenOptions(query, allowed)).toThrow(BadRequestError);
    expect(() => parseTokenOptions(query, allowed)).toThrow(message);
  });
});
