import { randomUUID } from 'node:crypto';

import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Express } from 'express';
import type { Response } from 'supertest';

import { DEMO_USERS, LOCAL_API_CLIENT_ID } from '../../src/local/local-directory';
import type { HttpMethod, OpenApiDocument, OpenApiHeader, OpenApiOperation } from '../../src/openapi/openapi-document';
import { errorBody, objectBody, userBody } from '../helpers/bodies';
import { putSealedMapping } from '../helpers/mappings';
import { present } from '../helpers/present';
import { startTestService, type TestService } from '../helpers/test-service';

/**
 * The OpenAPI document against the running service: it is served publicly, it documents every
 * route the app has, Swagger UI loads from this process, and the real answers of the real service
 * (real SDKs, emulated upstreams) match it: status documented, body valid, required headers sent.
 */

const METHODS: readonly HttpMethod[] = ['get', 'post', 'delete'];
const DOCS_UI_ROUTE = /^\/api\/docs(\/|$)/;
const DOCUMENT_ID = 'urn:acs-auth-server:openapi';

/** Routes the Express app really serves, as `METHOD /openapi/{template}`, read from its router stack. */
function routesOf(app: Express): string[] {
  interface Layer {
    readonly rawPath?: unknown;
    readonly route?: { readonly path: unknown; readonly methods: Readonly<Record<string, boolean>> };
    readonly handle?: { readonly stack?: readonly Layer[] };
  }
  const found: string[] = [];
  const join = (base: string, path: string): string => {
    const joined = `${base}${path === '/' ? '' : path}`;
    return joined === '' ? '/' : joined;
  };
  const walk = (stack: readonly Layer[], base: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        const path = join(base, String(layer.route.path)).replace(/:(\w+)/g, '{$1}');
        for (const [method, enabled] of Object.entries(layer.route.methods)) if (enabled) found.push(`${method.toUpperCase()} ${path}`);
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack, join(base, typeof layer.rawPath === 'string' ? layer.rawPath : ''));
      }
    }
  };
  // Express 5 keeps its base router on `app.router`; it is not in @types/express.
  walk((app as unknown as { router: { stack: readonly Layer[] } }).router.stack, '');
  return found.sort();
}

function operationsOf(document: OpenApiDocument): { key: string; path: string; method: HttpMethod; operation: OpenApiOperation }[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    METHODS.flatMap((method) => {
      const operation = item[method];
      return operation ? [{ key: `${method.toUpperCase()} ${path}`, path, method, operation }] : [];
    }),
  );
}

function pointer(...segments: string[]): string {
  return segments.map((segment) => segment.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

function resolveRef(document: OpenApiDocument, ref: string): unknown {
  if (!ref.startsWith('#/')) throw new Error(`external $ref ${ref}`);
  let node: unknown = document;
  for (const raw of ref.slice(2).split('/')) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof node !== 'object' || node === null || !(segment in node)) throw new Error(`unresolved $ref ${ref}`);
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

function collectRefs(node: unknown, into: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) collectRefs(item, into);
  else if (typeof node === 'object' && node !== null) {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') into.push(value);
      else collectRefs(value, into);
    }
  }
  return into;
}

/** Ajv (JSON Schema 2020-12, OpenAPI 3.1's dialect) loaded with the whole document, so `#/components/...` refs resolve. */
function createValidator(document: OpenApiDocument): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  // The document's top-level OpenAPI fields are not schema keywords: declare them so strict mode
  // checks only the schemas inside, which are compiled when a response is validated.
  ajv.addVocabulary(['openapi', 'jsonSchemaDialect', 'info', 'servers', 'tags', 'security', 'paths', 'components']);
  ajv.addSchema(document, DOCUMENT_ID);
  return ajv;
}

describe('the OpenAPI document', () => {
  let service: TestService;
  let document: OpenApiDocument;

  beforeAll(async () => {
    service = await startTestService();
    document = (await service.http.get('/api/openapi.json').expect(200)).body as OpenApiDocument;
  });
  afterAll(async () => {
    await service.close();
  });

  describe('GET /api/openapi.json', () => {
    it('answers 200 with JSON, without a token', async () => {
      const res = await service.http.get('/api/openapi.json').expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(objectBody(res)['openapi']).toBe('3.1.0');
    });

    it('is a well-formed OpenAPI 3.1 document', () => {
      expect(document.openapi).toBe('3.1.0');
      expect(typeof document.info.title).toBe('string');
      expect(typeof document.info.version).toBe('string');
      const operations = operationsOf(document);
      expect(operations.length).toBeGreaterThan(0);
      const ids = operations.map(({ operation }) => operation.operationId);
      expect(new Set(ids).size).toBe(ids.length);
      for (const { key, path, operation } of operations) {
        expect(path.startsWith('/')).toBe(true);
        const statuses = Object.keys(operation.responses);
        expect(statuses.length).toBeGreaterThan(0);
        for (const status of statuses) {
          expect(`${key} ${status}`).toMatch(/ [1-5][0-9]{2}$/);
          expect(typeof operation.responses[status]?.description).toBe('string');
        }
        // Every path template parameter is declared, in: path, required.
        const templated = [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
        const declared = (operation.parameters ?? []).filter((parameter) => parameter.in === 'path');
        expect(declared.map((parameter) => parameter.name).sort()).toEqual(templated.sort());
        for (const parameter of declared) expect(parameter.required).toBe(true);
        for (const requirement of operation.security ?? document.security) {
          for (const scheme of Object.keys(requirement)) expect(document.components.securitySchemes).toHaveProperty(scheme);
        }
      }
      for (const ref of collectRefs(document)) expect(() => resolveRef(document, ref)).not.toThrow();
    });

    it('holds only schemas that compile under JSON Schema 2020-12 (strict)', () => {
      const ajv = createValidator(document);
      for (const name of Object.keys(document.components.schemas)) {
        expect(() => ajv.getSchema(`${DOCUMENT_ID}#/${pointer('components', 'schemas', name)}`)).not.toThrow();
      }
      for (const { path, method, operation } of operationsOf(document)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          if (!response.content) continue;
          const id = `${DOCUMENT_ID}#/${pointer('paths', path, method, 'responses', status, 'content', 'application/json', 'schema')}`;
          expect(ajv.getSchema(id)).toBeDefined();
        }
      }
    });

    it('documents every route the app serves, and only those', () => {
      // HEAD routes are refusals (405), described in the document's text, not operations of their own.
      const served = routesOf(service.app).filter((route) => !DOCS_UI_ROUTE.test(route.split(' ')[1] ?? '') && !route.startsWith('HEAD '));
      const documented = operationsOf(document)
        .map(({ key }) => key)
        .sort();
      expect(documented).toEqual(served);
      expect(documented).toEqual(
        expect.arrayContaining([
          'GET /api/user',
          'POST /api/user',
          'DELETE /api/user',
          'DELETE /api/user/{userObjectId}',
          'GET /api/token',
          'POST /api/token',
          'DELETE /api/token',
          'GET /api/token/teams',
          'POST /api/token/teams',
          'GET /health',
        ]),
      );
    });

    it('refuses HEAD on every GET operation that needs a token, and answers it like GET on the public ones', async () => {
      const refusingHead = routesOf(service.app)
        .filter((route) => route.startsWith('HEAD '))
        .map((route) => route.slice('HEAD '.length));
      const gets = operationsOf(document).filter(({ method }) => method === 'get');
      const isPublic = (operation: OpenApiOperation): boolean => (operation.security ?? document.security).length === 0;
      expect(refusingHead).toEqual(
        gets
          .filter(({ operation }) => !isPublic(operation))
          .map(({ path }) => path)
          .sort(),
      );
      for (const path of [...gets.filter(({ operation }) => isPublic(operation)).map(({ path }) => path), '/api/docs']) {
        const res = await service.http.head(path).expect(200);
        expect({ path, body: res.text ?? '' }).toEqual({ path, body: '' });
      }
    });

    it("describes this deployment's scope, ACS token scopes and admin role", () => {
      const { requiredScope, adminRole } = service.config.entra;
      expect(document.security).toEqual([{ entraId: [requiredScope] }]);
      expect(document.paths['/health']?.get?.security).toEqual([]);
      expect(document.paths['/api/user/{userObjectId}']?.delete?.['x-required-app-role']).toBe(adminRole);
      const scopes = document.paths['/api/token']?.get?.parameters?.find((parameter) => parameter.name === 'scopes');
      expect(scopes?.schema.default).toBe(service.config.acs.tokenScopes.join(','));
    });
  });

  describe('GET /api/docs', () => {
    async function assetsOf(pagePath: string): Promise<{ page: Response; assets: URL[] }> {
      const page = await service.http.get(pagePath).expect(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      const html = page.text;
      // helmet's CSP forbids inline scripts: every script must come from a file.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
      expect(html).not.toMatch(/\son[a-z]+\s*=/i);
      const origin = 'http://service.test';
      const references = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map(
        (match) => new URL(present(match[1], 'a URL'), `${origin}${pagePath}`),
      );
      for (const url of references) expect(url.origin).toBe(origin);
      return { page, assets: references };
    }

    it('serves Swagger UI under the default CSP, every asset from this origin', async () => {
      const { page, assets } = await assetsOf('/api/docs');
      expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
      expect(assets.map((url) => url.pathname)).toEqual(
        expect.arrayContaining(['/api/docs/swagger-ui.css', '/api/docs/swagger-ui-bundle.js', '/api/docs/swagger-initializer.js']),
      );
      for (const url of assets) {
        const res = await service.http.get(url.pathname).expect(200);
        expect(res.headers['content-type']).toMatch(
          url.pathname.endsWith('.js') ? /javascript/ : url.pathname.endsWith('.css') ? /text\/css/ : /image\//,
        );
      }
    });

    it('resolves the same assets when opened as /api/docs/', async () => {
      const { assets } = await assetsOf('/api/docs/');
      expect(assets.map((url) => url.pathname)).toContain('/api/docs/swagger-initializer.js');
      for (const url of assets) await service.http.get(url.pathname).expect(200);
    });

    it('points Swagger UI at /api/openapi.json, not the package demo', async () => {
      const res = await service.http.get('/api/docs/swagger-initializer.js').expect(200);
      const relative = /new URL\('([^']+)'/.exec(res.text)?.[1];
      expect(new URL(relative ?? '', 'http://service.test/api/docs/swagger-initializer.js').pathname).toBe('/api/openapi.json');
      expect(res.text).not.toMatch(/petstore/);
    });
  });
});

describe('the OpenAPI contract against real answers', () => {
  let service: TestService;
  let document: OpenApiDocument;
  let ajv: Ajv2020;
  const observed = new Set<string>();

  /** Match a real answer to its documented operation and check status, body and required headers. */
  function checkContract(method: HttpMethod, requestPath: string, res: Response): void {
    const path = present(requestPath.split('?')[0], 'a path');
    const [template, item] = present(
      Object.entries(document.paths).find(([documented]) => new RegExp(`^${documented.replace(/\{\w+\}/g, '[^/]+')}$`).test(path)),
      `a documented path matching ${path}`,
    );
    const operation = present(item[method], `a documented ${method.toUpperCase()} ${template}`);
    const status = String(res.status);
    const where = `${method.toUpperCase()} ${template} → ${status} ${JSON.stringify(res.body)}`;
    const response = operation.responses[status];
    if (response === undefined) throw new Error(`undocumented status: ${where}`);
    observed.add(`${method.toUpperCase()} ${template} ${status}`);

    for (const [name, declared] of Object.entries(response.headers ?? {})) {
      const header = ('$ref' in declared ? resolveRef(document, declared.$ref) : declared) as OpenApiHeader;
      const value = res.headers[name.toLowerCase()];
      if (header.required)
        expect({ where, name, present: typeof value === 'string' && value !== '' }).toEqual({ where, name, present: true });
      if (typeof value === 'string' && header.schema.pattern !== undefined) expect(value).toMatch(new RegExp(header.schema.pattern));
    }

    if (response.content === undefined) {
      expect({ where, body: res.text ?? '' }).toEqual({ where, body: '' });
      return;
    }
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const validate = ajv.getSchema(
      `${DOCUMENT_ID}#/${pointer('paths', template, method, 'responses', status, 'content', 'application/json', 'schema')}`,
    );
    if (!validate) throw new Error(`no schema for ${where}`);
    const valid = validate(res.body);
    expect({ where, errors: valid ? null : validate.errors }).toEqual({ where, errors: null });
  }

  async function call(
    method: HttpMethod,
    path: string,
    options: { token?: string; headers?: Record<string, string>; body?: unknown; rawBody?: string } = {},
  ): Promise<Response> {
    let request = service.http[method](path);
    if (options.token !== undefined) request = request.set('Authorization', `Bearer ${options.token}`);
    for (const [name, value] of Object.entries(options.headers ?? {})) request = request.set(name, value);
    const res = await (options.rawBody !== undefined
      ? request.send(options.rawBody)
      : options.body !== undefined
        ? request.send(options.body as object)
        : request);
    checkContract(method, path, res);
    return res;
  }

  beforeAll(async () => {
    service = await startTestService();
    document = (await service.http.get('/api/openapi.json').expect(200)).body as OpenApiDocument;
    ajv = createValidator(document);
  });
  afterEach(() => {
    service.local.acs.faults.clear();
    service.local.graph.faults.clear();
  });
  afterAll(async () => {
    await service.close();
  });

  describe('public routes', () => {
    it('GET /health and GET /api/openapi.json answer as documented', async () => {
      expect((await call('get', '/health')).status).toBe(200);
      expect((await call('get', '/api/openapi.json')).status).toBe(200);
    });
  });

  describe('the identity and token flow', () => {
    it('answers every success as documented', async () => {
      const alice = await service.tokenFor('alice');
      expect(errorBody(await call('get', '/api/user', { token: alice })).code).toBe('identity_not_found');
      expect((await call('post', '/api/user', { token: alice })).status).toBe(201);
      expect((await call('post', '/api/user', { token: alice })).status).toBe(200);
      expect((await call('get', '/api/user', { token: alice })).status).toBe(200);
      expect((await call('get', '/api/token', { token: alice })).status).toBe(201);
      expect((await call('get', '/api/token?scopes=voip&expiresInMinutes=60', { token: alice })).status).toBe(201);
      expect((await call('post', '/api/token', { token: alice })).status).toBe(201);
      expect((await call('delete', '/api/token', { token: alice })).status).toBe(204);
      expect((await call('delete', '/api/user', { token: alice })).status).toBe(204);
      // Idempotent: nothing left to delete is still 204.
      expect((await call('delete', '/api/user', { token: alice })).status).toBe(204);
      expect(errorBody(await call('delete', '/api/token', { token: alice })).code).toBe('identity_not_found');
      expect(errorBody(await call('get', '/api/token', { token: alice })).code).toBe('identity_not_found');

      const bob = await service.tokenFor('bob');
      expect((await call('post', '/api/token?scopes=chat', { token: bob })).status).toBe(201);
    });

    it('answers 400 for a bad token query', async () => {
      const alice = await service.tokenFor('alice');
      expect(errorBody(await call('get', '/api/token?expiresInMinutes=5', { token: alice })).code).toBe('bad_request');
      expect(errorBody(await call('get', '/api/token?lifetime=60', { token: alice })).code).toBe('bad_request');
      expect(errorBody(await call('post', '/api/token?scopes=chat,nope', { token: alice })).code).toBe('bad_request');
    });
  });

  describe('authentication', () => {
    it('answers 401 without a token and with a bad one, with a challenge', async () => {
      const missing = await call('get', '/api/user');
      expect(errorBody(missing).code).toBe('invalid_token');
      expect(missing.headers['www-authenticate']).toBe('Bearer');
      const bad = await call('post', '/api/token', { token: 'not.a.token' });
      expect(errorBody(bad).code).toBe('invalid_token');
      expect(await call('delete', '/api/user/' + DEMO_USERS.bob.oid)).toHaveProperty('status', 401);
      expect(await call('get', '/api/token/teams')).toHaveProperty('status', 401);
    });

    it('answers 403 insufficient_scope for a token without the required scope', async () => {
      const token = await service.tokenFor('alice', { scp: 'something_else' });
      const res = await call('post', '/api/user', { token });
      expect(errorBody(res).code).toBe('insufficient_scope');
      expect(res.headers['www-authenticate']).toMatch(/error="insufficient_scope"/);
    });

    it('answers 401 interaction_required when Entra ID needs the user to sign in again', async () => {
      const carol = DEMO_USERS.carol.oid;
      service.local.entra.requireInteraction(carol, 'mfa');
      try {
        const res = await call('get', '/api/user', { token: await service.tokenFor('carol') });
        expect(errorBody(res).code).toBe('interaction_required');
        expect(res.headers['www-authenticate']).toMatch(/insufficient_claims/);
      } finally {
        service.local.entra.clearInteraction(carol);
      }
    });
  });

  describe('DELETE /api/user/{userObjectId}', () => {
    it('answers 403 without the admin role, 400 for a non-GUID, 204 on erasure', async () => {
      const { adminRole } = service.config.entra;
      const bob = DEMO_USERS.bob.oid;
      expect(errorBody(await call('delete', `/api/user/${bob}`, { token: await service.tokenFor('carol') })).code).toBe('forbidden');
      const admin = await service.tokenFor('carol', { roles: [adminRole] });
      expect(errorBody(await call('delete', '/api/user/not-a-guid', { token: admin })).code).toBe('bad_request');
      await service.http
        .post('/api/user')
        .set('Authorization', `Bearer ${await service.tokenFor('bob')}`)
        .expect((res) => expect([200, 201]).toContain(res.status));
      expect((await call('delete', `/api/user/${bob.toUpperCase()}`, { token: admin })).status).toBe(204);
      expect(service.local.graph.extensionsOf(bob)).toEqual([]);
    });
  });

  // Only the three demo users can sign in to the Entra emulator: carol has no mapping yet here, and
  // the admin test above erased bob's.
  describe('when the mapping points to another ACS resource', () => {
    it('answers 409 identity_not_owned on every route that uses the identity', async () => {
      const carol = DEMO_USERS.carol.oid;
      const foreignId = `8:acs:${randomUUID()}_${randomUUID()}`;
      putSealedMapping(service, carol, foreignId);
      const token = await service.tokenFor('carol');
      expect(userBody(await call('get', '/api/user', { token })).acsUserIdentity).toBe(foreignId);
      expect((await call('post', '/api/user', { token })).status).toBe(200);
      for (const [method, path] of [
        ['get', '/api/token'],
        ['post', '/api/token'],
        ['delete', '/api/token'],
        ['delete', '/api/user'],
      ] as const) {
        expect(errorBody(await call(method, path, { token })).code).toBe('identity_not_owned');
      }
      const admin = await service.tokenFor('alice', { roles: [service.config.entra.adminRole] });
      expect(errorBody(await call('delete', `/api/user/${carol}`, { token: admin })).code).toBe('identity_not_owned');
    });
  });

  describe('when the user has no room for another open extension', () => {
    it('answers 409 mapping_limit_reached', async () => {
      const bob = DEMO_USERS.bob.oid;
      expect(service.local.graph.extensionsOf(bob)).toEqual([]);
      service.local.graph.putExtension(bob, LOCAL_API_CLIENT_ID, { extensionName: 'com.contoso.one', value: '1' });
      service.local.graph.putExtension(bob, LOCAL_API_CLIENT_ID, { extensionName: 'com.contoso.two', value: '2' });
      const token = await service.tokenFor('bob');
      const alive = service.local.acs.aliveIdentityIds();
      expect(errorBody(await call('post', '/api/user', { token })).code).toBe('mapping_limit_reached');
      expect(errorBody(await call('post', '/api/token', { token })).code).toBe('mapping_limit_reached');
      // The identities made for the refused mappings were deleted again.
      expect(service.local.acs.aliveIdentityIds().sort()).toEqual(alive.sort());
    });
  });

  describe('/api/token/teams', () => {
    it('exchanges a Teams token from the header or the body, and answers 400/413/415 as documented', async () => {
      const alice = await service.tokenFor('alice');
      const appId = service.config.entra.teamsClientId;
      const teams = await service.local.entra.mintTeamsToken({ user: 'alice', appId });
      expect((await call('get', '/api/token/teams', { token: alice, headers: { 'teams-user-aad-token': teams } })).status).toBe(201);
      expect((await call('post', '/api/token/teams', { token: alice, body: { teamsUserAadToken: teams } })).status).toBe(201);
      expect((await call('post', '/api/token/teams', { token: alice, headers: { 'teams-user-aad-token': teams } })).status).toBe(201);

      expect(errorBody(await call('get', '/api/token/teams', { token: alice })).code).toBe('bad_request');
      expect(errorBody(await call('post', '/api/token/teams', { token: alice, body: { teamsUserAadToken: 42 } })).code).toBe('bad_request');
      const bobsTeams = await service.local.entra.mintTeamsToken({ user: 'bob', appId });
      expect(errorBody(await call('post', '/api/token/teams', { token: alice, body: { teamsUserAadToken: bobsTeams } })).code).toBe(
        'invalid_teams_token',
      );

      const huge = { teamsUserAadToken: 'x'.repeat(service.config.server.jsonBodyLimitBytes + 1) };
      expect(errorBody(await call('post', '/api/token/teams', { token: alice, body: huge })).code).toBe('payload_too_large');
      const latin1 = await call('post', '/api/token/teams', {
        token: alice,
        headers: { 'Content-Type': 'application/json; charset=latin1' },
        rawBody: JSON.stringify({ teamsUserAadToken: teams }),
      });
      expect(errorBody(latin1).code).toBe('unsupported_media_type');
    });
  });

  describe('when a POST body cannot be taken', () => {
    it.each(['/api/user', '/api/token'])('POST %s answers 400, 413 and 415 as documented, without reaching an upstream', async (path) => {
      const token = await service.tokenFor('carol');
      const before = service.upstreamCalls();
      const json = { 'Content-Type': 'application/json' };
      expect(errorBody(await call('post', path, { token, headers: json, rawBody: '{"oops": ' })).code).toBe('bad_request');
      const huge = JSON.stringify({ padding: 'x'.repeat(service.config.server.jsonBodyLimitBytes) });
      expect(errorBody(await call('post', path, { token, headers: json, rawBody: huge })).code).toBe('payload_too_large');
      const utf16 = await call('post', path, { token, headers: { 'Content-Type': 'application/json; charset=utf-16' }, rawBody: '{}' });
      expect(errorBody(utf16).code).toBe('unsupported_media_type');
      expect(service.upstreamCalls()).toEqual(before);
    });
  });

  describe('when an upstream fails', () => {
    it('answers 503 upstream_throttled with Retry-After when ACS throttles', async () => {
      const alice = await service.tokenFor('alice');
      await call('post', '/api/user', { token: alice });
      service.local.acs.faults.inject({ route: 'identities.issueToken', status: 429, retryAfterSeconds: 7 });
      const res = await call('get', '/api/token', { token: alice });
      expect(errorBody(res).code).toBe('upstream_throttled');
      expect(res.headers['retry-after']).toBe('7');
    });

    it('answers 503 upstream_unavailable and 502 upstream_error when ACS fails', async () => {
      const alice = await service.tokenFor('alice');
      await call('post', '/api/user', { token: alice });
      service.local.acs.faults.inject({ route: 'identities.revokeTokens', status: 503 });
      expect(errorBody(await call('delete', '/api/token', { token: alice })).code).toBe('upstream_unavailable');
      service.local.acs.faults.inject({ route: 'identities.create', status: 500 });
      const bob = await service.tokenFor('bob');
      await service.http.delete('/api/user').set('Authorization', `Bearer ${bob}`).expect(204);
      expect(errorBody(await call('post', '/api/user', { token: bob })).code).toBe('upstream_error');
    });

    it('answers 503 and 502 as documented when Graph fails', async () => {
      const alice = await service.tokenFor('alice');
      service.local.graph.faults.inject({ route: 'user.get', status: 429, retryAfterSeconds: 3 });
      expect(errorBody(await call('get', '/api/user', { token: alice })).code).toBe('upstream_throttled');
      service.local.graph.faults.inject({ route: 'user.get', status: 500 });
      expect(errorBody(await call('get', '/api/user', { token: alice })).code).toBe('upstream_error');
    });
  });

  describe('when an upstream is too slow (UPSTREAM_TIMEOUT_MS)', () => {
    let shortTimeoutService: TestService;
    beforeAll(async () => {
      shortTimeoutService = await startTestService({ env: { UPSTREAM_TIMEOUT_MS: '1500' } });
    });
    afterAll(async () => {
      await shortTimeoutService.close();
    });

    it('answers 504 upstream_timeout', async () => {
      const token = await shortTimeoutService.tokenFor('alice');
      await shortTimeoutService.http.post('/api/user').set('Authorization', `Bearer ${token}`).expect(201);
      shortTimeoutService.local.acs.faults.inject({ route: 'identities.issueToken', delayMs: 4000, status: 500 });
      const res = await shortTimeoutService.http.get('/api/token').set('Authorization', `Bearer ${token}`);
      checkContract('get', '/api/token', res);
      expect(errorBody(res).code).toBe('upstream_timeout');
    });
  });

  describe('when a rate limit is reached', () => {
    let limited: TestService;
    beforeAll(async () => {
      limited = await startTestService({ env: { RATE_LIMIT_PER_USER_PER_MINUTE: '1', RATE_LIMIT_PER_ADDRESS_PER_MINUTE: '4' } });
    });
    afterAll(async () => {
      await limited.close();
    });

    it('per user: answers 429 too_many_requests with Retry-After and RateLimit headers', async () => {
      const token = await limited.tokenFor('alice');
      await limited.http.get('/api/user').set('Authorization', `Bearer ${token}`).expect(404);
      const res = await limited.http.get('/api/user').set('Authorization', `Bearer ${token}`);
      checkContract('get', '/api/user', res);
      expect(errorBody(res).code).toBe('too_many_requests');
    });

    it('per client address: answers 429 on the public OpenAPI document too, as documented', async () => {
      let res = await limited.http.get('/api/openapi.json');
      for (let request = 0; request < 4 && res.status === 200; request += 1) res = await limited.http.get('/api/openapi.json');
      checkContract('get', '/api/openapi.json', res);
      expect(errorBody(res).code).toBe('too_many_requests');
    });
  });

  describe('coverage of the document', () => {
    it('has seen every documented success status of every operation', () => {
      const documentedSuccesses = operationsOf(document).flatMap(({ key, operation }) =>
        Object.keys(operation.responses)
          .filter((status) => status.startsWith('2'))
          .map((status) => `${key} ${status}`),
      );
      expect(documentedSuccesses.filter((entry) => !observed.has(entry))).toEqual([]);
    });

    it('has seen each error status the document lists, except the unforced 500', () => {
      const seenStatuses = new Set([...observed].map((entry) => entry.split(' ')[2]));
      const documentedStatuses = new Set(
        operationsOf(document).flatMap(({ operation }) => Object.keys(operation.responses).filter((status) => !status.startsWith('2'))),
      );
      expect([...documentedStatuses].filter((status) => !seenStatuses.has(status) && status !== '500').sort()).toEqual([]);
    });
  });
});
