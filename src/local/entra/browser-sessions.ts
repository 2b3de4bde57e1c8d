/**
 * The two kinds of state a browser holds with the sign-in pages: a pending sign-in (the authorization request
 * the user is picking an account for, named by an unguessable flow token in the page's form, used once) and a
 * signed-in session (a cookie, so that `prompt=none` and later sign-ins can skip the page, until logout).
 * The flow token is also what makes the page's form safe to post: another site cannot know it.
 *
 * @packageDocumentation
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';

/** How long the sign-in page may stay open before its form is refused (AADSTS50089, flow token expired). */
const SIGN_IN_FLOW_MS = 15 * 60 * 1000;
const SESSION_COOKIE = 'ESTSAUTH';

/** A signed-in browser. */
export interface BrowserSession {
  /** Sent in ID tokens as `sid` and to the app as `session_state`. */
  readonly sid: string;
  readonly oid: string;
}

export class PendingSignIns<T> {
  readonly #flows = new Map<string, { readonly value: T; readonly expiresAt: number }>();

  constructor(private readonly now: () => number) {}

  /** Remember a request while the user picks an account; returns the flow token for the page's form. */
  start(value: T): string {
    const now = this.now();
    for (const [token, flow] of this.#flows) if (now >= flow.expiresAt) this.#flows.delete(token);
    const token = randomBytes(32).toString('base64url');
    this.#flows.set(token, { value, expiresAt: now + SIGN_IN_FLOW_MS });
    return token;
  }

  /** The pending request, once: undefined when unknown, used or expired. */
  take(token: string): T | undefined {
    const flow = this.#flows.get(token);
    this.#flows.delete(token);
    if (flow === undefined || this.now() >= flow.expiresAt) return undefined;
    return flow.value;
  }
}

export class BrowserSessions {
  readonly #sessions = new Map<string, BrowserSession>();

  /** The session the request's cookie names, if this emulator issued it and it is not signed out. */
  of(req: Request): BrowserSession | undefined {
    const id = cookieValue(req, SESSION_COOKIE);
    return id === undefined ? undefined : this.#sessions.get(id);
  }

  /** Sign the browser in as this user: a new session and its cookie (HttpOnly; SameSite=None needs https). */
  signIn(req: Request, res: Response, oid: string): BrowserSession {
    const id = randomBytes(32).toString('base64url');
    const session = { sid: randomUUID(), oid };
    this.#sessions.set(id, session);
    res.append('Set-Cookie', `${SESSION_COOKIE}=${id}; ${cookieAttributes(req)}`);
    return session;
  }

  /** End the request's session and clear its cookie. */
  signOut(req: Request, res: Response): void {
    const id = cookieValue(req, SESSION_COOKIE);
    if (id !== undefined) this.#sessions.delete(id);
    res.append('Set-Cookie', `${SESSION_COOKIE}=; Max-Age=0; ${cookieAttributes(req)}`);
  }
}

/** Over https the cookie also goes to silent sign-ins in iframes (SameSite=None, which browsers allow only with Secure). */
function cookieAttributes(req: Request): string {
  return req.secure ? 'Path=/; HttpOnly; Secure; SameSite=None' : 'Path=/; HttpOnly; SameSite=Lax';
}

function cookieValue(req: Request, name: string): string | undefined {
  const header = req.get('cookie');
  if (header === undefined || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const equals = part.indexOf('=');
    if (equals > 0 && part.slice(0, equals).trim() === name) return part.slice(equals + 1).trim();
  }
  return undefined;
}
