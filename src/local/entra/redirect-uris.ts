/**
 * Redirect URIs as Entra registers and matches them (reply-url.md, "Redirect URI (reply URL) restrictions"):
 * https, or http on a loopback host only; at most 256 characters; no fragment, no wildcard, none of the
 * characters `! $ ' ( ) , ;`; IPv6 loopback not supported. A request matches a registration exactly (the path
 * case-sensitively, the string as sent rather than a parser's rewrite of it), except that the port of a loopback
 * redirect URI is ignored. Each registration belongs to a platform (`spa` or `web`), which decides how its codes
 * may be redeemed.
 *
 * @packageDocumentation
 */
import { isLoopbackHost } from '../../validation/formats';

/** The platform a redirect URI is registered under. */
export type RedirectUriType = 'spa' | 'web';

export interface RegisteredRedirectUri {
  /** As registered. */
  readonly uri: string;
  readonly type: RedirectUriType;
  /** `scheme://host[:port]`: a browser's `Origin` when the page at this URI redeems a code. */
  readonly origin: string;
}

/** A request's redirect URI that matched a registration. */
export interface MatchedRedirectUri {
  /** The URI of the request, where the answer goes (WHATWG-serialised: a bare origin gains its `/`). */
  readonly uri: string;
  readonly registered: RegisteredRedirectUri;
}

const MAX_LENGTH = 256;
const FORBIDDEN_CHARACTERS = /[!$'(),;*]/;

/** Checks one registered redirect URI as the portal does; a TypeError names the first mistake. */
export function registeredRedirectUri(uri: string, type: RedirectUriType, clientId: string): RegisteredRedirectUri {
  const refuse = (why: string): TypeError => new TypeError(`application ${clientId}: ${type} redirect URI '${String(uri)}' ${why}`);
  if (typeof uri !== 'string' || uri.length > MAX_LENGTH) throw refuse(`must be a string of at most ${MAX_LENGTH} characters`);
  const parsed = parseAbsolute(uri);
  if (parsed === undefined) throw refuse('is not an absolute URI');
  if (parsed.hash !== '' || uri.includes('#')) throw refuse('must not have a fragment');
  if (FORBIDDEN_CHARACTERS.test(uri)) throw refuse("must not contain ! $ ' ( ) , ; or a wildcard");
  if (parsed.username !== '' || parsed.password !== '') throw refuse('must not carry credentials');
  if (parsed.hostname === '[::1]') throw refuse('uses the IPv6 loopback address, which Entra does not support');
  const loopback = isLoopbackHost(parsed.hostname);
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && loopback)) throw refuse('must use https (http only on localhost)');
  return { uri, type, origin: parsed.origin };
}

/** The registration a request's redirect URI (or `post_logout_redirect_uri`) matches, or undefined. */
export function matchRedirectUri(registered: readonly RegisteredRedirectUri[], requested: string): MatchedRedirectUri | undefined {
  if (requested.length > MAX_LENGTH * 8) return undefined;
  const parsed = parseAbsolute(requested);
  if (parsed === undefined || !isAsSerialised(requested, parsed)) return undefined;
  const key = matchKey(parsed);
  const match = registered.find((candidate) => {
    const candidateUrl = parseAbsolute(candidate.uri);
    return candidateUrl !== undefined && matchKey(candidateUrl) === key;
  });
  return match === undefined ? undefined : { uri: parsed.href, registered: match };
}

/**
 * True when a browser `Origin` is that of one of these SPA redirect URIs (the port of a loopback origin aside,
 * as in matching): the pages allowed to redeem codes and refresh tokens cross-origin.
 */
export function isSpaOrigin(registered: readonly RegisteredRedirectUri[], origin: string): boolean {
  const parsed = origin.length > MAX_LENGTH ? undefined : parseAbsolute(origin);
  if (parsed?.origin !== origin) return false;
  const key = originKey(parsed);
  return registered.some((candidate) => {
    const candidateUrl = candidate.type === 'spa' ? parseAbsolute(candidate.uri) : undefined;
    return candidateUrl !== undefined && originKey(candidateUrl) === key;
  });
}

/**
 * Entra matches the string it is sent, not what a URL parser makes of it, so a requested URI must be written the
 * way it parses back: anything a parser would rewrite (a missing `//`, surrounding whitespace, `%2e%2e` or `..`
 * segments, a numeric or percent-encoded host, a default port) is refused rather than normalised into a match.
 * Scheme and host may differ in case, which URIs never distinguish (RFC 3986 §6.2.2.1); the path and query must be
 * exact ("Redirect URIs are case-sensitive", https://learn.microsoft.com/en-us/entra/identity-platform/reply-url).
 * A URI with no path may leave out its `/`: the same page says Entra answers such a URI with the `/` added. User
 * info (`user@host`) is refused: it makes a host look like another, and a registered redirect URI cannot have it.
 */
function isAsSerialised(requested: string, parsed: URL): boolean {
  if (parsed.username !== '' || parsed.password !== '' || requested.includes('#')) return false;
  const authority = `${parsed.protocol}//${parsed.host}`;
  if (requested.slice(0, authority.length).toLowerCase() !== authority) return false;
  const rest = requested.slice(authority.length);
  const serialisedRest = parsed.href.slice(authority.length);
  return rest === serialisedRest || (rest === '' && serialisedRest === '/');
}

function originKey(url: URL): string {
  return `${url.protocol}//${url.hostname}:${isLoopbackHost(url.hostname) ? '' : url.port}`;
}

/** What must be equal: everything but the port of a loopback URI (RFC 8252 §7.3, §8.3). */
function matchKey(url: URL): string {
  return `${originKey(url)}${url.pathname}${url.search}`;
}

function parseAbsolute(uri: string): URL | undefined {
  try {
    return new URL(uri);
  } catch {
    return undefined;
  }
}
