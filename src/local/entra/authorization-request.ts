/**
 * Reading a request to `/{tenant}/oauth2/v2.0/authorize` in two stages, as Entra does. First the client and
 * the redirect URI: until both are known good, nothing may be sent to the redirect URI, so those refusals are
 * error pages (AADSTS700016, 900971, 500113, 50011). Then the rest, whose refusals go to the redirect URI as
 * `error`/`error_description` (v2-oauth2-auth-code-flow.md, "Error response"). Unknown parameters are ignored,
 * as Entra ignores msal's telemetry (`x-client-*`, `client-request-id`, `clidata`, `pocd`, …).
 *
 * @packageDocumentation
 */
import type { Request } from 'express';
import { AadError } from './aad-error';
import type { ResolvedApplication } from './application-registry';
import type { CodeChallenge } from './authorization-codes';
import type { EntraTenant } from './entra-tenant';
import { matchRedirectUri, type MatchedRedirectUri } from './redirect-uris';
import { grantsOf, parseRequestedScopes, permissionsNeedingAdminConsent, type ResourceGrant } from './requested-scopes';
import { missingParameter, unknownApplication } from './sts-refusals';
import { formParameters, uniqueParameters } from './token-request';

export type ResponseMode = 'query' | 'fragment' | 'form_post';
export type Prompt = 'login' | 'none' | 'consent' | 'select_account';

/** Where and how the answer goes: known good once the client and redirect URI are. */
export interface ResponseTarget {
  readonly app: ResolvedApplication;
  readonly redirect: MatchedRedirectUri;
  readonly responseMode: ResponseMode;
  readonly state: string | undefined;
}

/** A sign-in request that passed every check. */
export interface AuthorizationRequest extends ResponseTarget {
  readonly scope: string;
  readonly granted: readonly ResourceGrant[];
  /** Permissions asked for that only an admin may grant and no admin granted the app: the sign-in ends in a refusal. */
  readonly needingAdminConsent: readonly string[];
  readonly codeChallenge: CodeChallenge | undefined;
  readonly nonce: string | undefined;
  readonly prompt: Prompt | undefined;
  readonly loginHint: string | undefined;
  /** msal asks with `client_info=1` for the user's home account in the answer. */
  readonly clientInfo: boolean;
}

const RESPONSE_MODES: readonly string[] = ['query', 'fragment', 'form_post'];
const PROMPTS: readonly string[] = ['login', 'none', 'consent', 'select_account'];
/** RFC 7636 §4.1–4.2: 43 to 128 unreserved characters (an S256 challenge is 43). */
const PKCE_VALUE = /^[A-Za-z0-9._~-]{43,128}$/;

/** The parameters of a GET (query) or POST (form) request; a repeated one makes the request malformed. */
export function authorizeParameters(req: Request): Map<string, string> {
  if (req.method === 'POST') return formParameters(req);
  const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '';
  return uniqueParameters(query);
}

/** Stage one: the client and where the answer may go. A refusal here is shown on an error page. */
export function responseTarget(tenant: EntraTenant, params: Map<string, string>): ResponseTarget {
  const clientId = params.get('client_id');
  if (clientId === undefined || clientId === '') throw missingParameter('client_id');
  const app = tenant.applications.byClientId(clientId);
  if (app === undefined) throw unknownApplication(clientId, tenant.tenantId);
  if (app.redirectUris.length === 0)
    throw new AadError(400, 'invalid_request', 500113, 'No reply address is registered for the application.');
  const requested = params.get('redirect_uri');
  if (requested === undefined || requested === '') throw new AadError(400, 'invalid_request', 900971, 'No reply address provided.');
  const redirect = matchRedirectUri(app.redirectUris, requested);
  if (redirect === undefined) {
    throw new AadError(
      400,
      'invalid_request',
      50011,
      `The redirect URI '${requested}' specified in the request does not match the redirect URIs configured for the application '${app.clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.`,
    );
  }
  const mode = params.get('response_mode');
  // An unsupported mode is itself answered the default way, with the code flow's default (query).
  const responseMode = mode !== undefined && RESPONSE_MODES.includes(mode) ? (mode as ResponseMode) : 'query';
  return { app, redirect, responseMode, state: params.get('state') };
}

/** Stage two: everything else. A refusal here goes to the redirect URI. */
export function authorizationRequest(tenant: EntraTenant, target: ResponseTarget, params: Map<string, string>): AuthorizationRequest {
  checkResponseType(params.get('response_type'));
  const mode = params.get('response_mode');
  if (mode !== undefined && !RESPONSE_MODES.includes(mode)) {
    throw new AadError(400, 'invalid_request', 70007, `The response_mode '${mode}' is not supported. Use query, fragment or form_post.`);
  }
  const scope = params.get('scope');
  if (scope === undefined || scope.trim() === '') throw missingParameter('scope');
  const requested = parseRequestedScopes(tenant, scope);
  const prompt = params.get('prompt');
  if (prompt !== undefined && !PROMPTS.includes(prompt)) {
    throw new AadError(400, 'invalid_request', 9002313, `Invalid request. The value '${prompt}' of 'prompt' is not supported.`);
  }
  return {
    ...target,
    scope,
    granted: grantsOf(target.app, requested),
    needingAdminConsent: permissionsNeedingAdminConsent(target.app, requested),
    codeChallenge: codeChallengeOf(params),
    nonce: params.get('nonce'),
    prompt: prompt as Prompt | undefined,
    loginHint: params.get('login_hint'),
    clientInfo: params.get('client_info') === '1',
  };
}

/** Only the code flow: the implicit and hybrid flows need their grant enabled on the registration, which the emulator never does. */
function checkResponseType(responseType: string | undefined): void {
  if (responseType === undefined || responseType === '') throw missingParameter('response_type');
  const types = new Set(responseType.split(' ').filter((type) => type !== ''));
  if (types.size === 1 && types.has('code')) return;
  if (types.has('token')) {
    throw new AadError(400, 'unsupported_response_type', 700051, "response_type 'token' is not enabled for the application.");
  }
  if (types.has('id_token')) {
    throw new AadError(400, 'unsupported_response_type', 700054, "response_type 'id_token' is not enabled for the application.");
  }
  throw new AadError(400, 'unsupported_response_type', 70005, `The response_type '${responseType}' is not supported.`);
}

/** PKCE as the v2 endpoint takes it: S256 or plain (plain when no method is named), checked for shape. */
function codeChallengeOf(params: Map<string, string>): CodeChallenge | undefined {
  const value = params.get('code_challenge');
  const method = params.get('code_challenge_method');
  if (value === undefined || value === '') {
    if (method !== undefined) throw missingParameter('code_challenge');
    return undefined;
  }
  if (method !== undefined && method !== 'S256' && method !== 'plain') {
    throw new AadError(
      400,
      'invalid_request',
      9002313,
      `Invalid request. The code_challenge_method '${method}' is not supported; use S256 or plain.`,
    );
  }
  if (!PKCE_VALUE.test(value) || ((method ?? 'plain') === 'S256' && value.length !== 43)) {
    throw new AadError(400, 'invalid_request', 501491, 'Invalid size of Code_Challenge parameter.');
  }
  return { value, method: method === 'S256' ? 'S256' : 'plain' };
}
