/**
 * The HTML the emulator shows a browser: the account picker that stands in for Entra's sign-in page, error
 * pages for requests that cannot be answered at the redirect URI, the `form_post` answer and the signed-out
 * page. Server-rendered, every value escaped, and each page with a Content-Security-Policy of its own that
 * allows nothing but its own hashed style (and, for `form_post`, its hashed submit script), no framing, and
 * form posts only where the page's form goes.
 *
 * @packageDocumentation
 */
import { createHash } from 'node:crypto';
import type { Response } from 'express';
import type { DemoUser } from '../local-directory';
import type { AadError } from './aad-error';
import type { AuthorizationRequest } from './authorization-request';
import type { ScopeResource } from './requested-scopes';

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}' +
  'button{display:block;width:100%;margin:.5rem 0;padding:.75rem;text-align:left;font:inherit;cursor:pointer;' +
  'background:#fff;border:1px solid #8a8886;border-radius:4px}button:hover,button:focus{border-color:#0067b8}' +
  '.upn{display:block;color:#605e5c;font-size:.9em}.hint{border-color:#0067b8}.note{color:#605e5c;font-size:.85em}';
const FORM_POST_SCRIPT = 'document.forms[0].submit();';

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function sendPage(res: Response, status: number, title: string, body: string, policy: { formAction?: string; script?: string }): void {
  const directives = [
    "default-src 'none'",
    `style-src ${sha256(STYLE)}`,
    policy.script === undefined ? undefined : `script-src ${sha256(policy.script)}`,
    `form-action ${policy.formAction ?? "'none'"}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].filter((directive) => directive !== undefined);
  res.setHeader('Content-Security-Policy', directives.join('; '));
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  // Not no-referrer: under it Chromium sends `Origin: null` with the picker's own form post, which the sign-in
  // step then refuses as cross-origin. same-origin still tells other sites nothing.
  res.setHeader('Referrer-Policy', 'same-origin');
  const script = policy.script === undefined ? '' : `<script>${policy.script}</script>`;
  res
    .status(status)
    .type('html')
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>` +
        `<body><main>${body}</main>${script}</body></html>`,
    );
}

/** The account picker: one button per user of the tenant, posting the pending sign-in's flow token and the choice. */
export function sendSignInPage(
  res: Response,
  request: AuthorizationRequest,
  users: readonly DemoUser[],
  flowToken: string,
  tenantId: string,
): void {
  const hint = request.loginHint?.toLowerCase();
  const buttons = users
    .map((user) => {
      const hinted = hint !== undefined && user.userPrincipalName.toLowerCase() === hint ? ' class="hint"' : '';
      return `<button type="submit" name="user" value="${escapeHtml(user.name)}"${hinted}>${escapeHtml(user.displayName)}<span class="upn">${escapeHtml(user.userPrincipalName)}</span></button>`;
    })
    .join('');
  const permissions = request.granted
    .flatMap((grant) => grant.permissions.map((name) => `${resourceName(grant.resource)}: ${name}`))
    .map((line) => `<li>${escapeHtml(line)}</li>`)
    .join('');
  const body =
    `<h1>Pick an account</h1><p>to sign in to <strong>${escapeHtml(request.app.displayName)}</strong></p>` +
    `<form method="post" action="/${escapeHtml(tenantId)}/login"><input type="hidden" name="flowToken" value="${escapeHtml(flowToken)}">${buttons}</form>` +
    (permissions === '' ? '' : `<p>Signing in consents to:</p><ul>${permissions}</ul>`) +
    '<p class="note">Local Entra ID emulator: demo users, no passwords. Nothing here is Microsoft\'s.</p>';
  // The form's answer redirects to the app, and browsers apply form-action to that redirect too.
  sendPage(res, 200, 'Sign in to your account (local emulator)', body, { formAction: `'self' ${new URL(request.redirect.uri).origin}` });
}

/** How the page names a resource, as Entra's consent prompt names it: by its display name. */
function resourceName(resource: ScopeResource): string {
  if (resource.kind === 'graph') return 'Microsoft Graph';
  if (resource.kind === 'acs') return 'Azure Communication Services';
  return resource.app.displayName;
}

/** A refusal that may not go to the redirect URI (unknown client, unregistered redirect URI, expired page). */
export function sendErrorPage(res: Response, error: AadError, traceId: string): void {
  const body =
    `<h1>Sign in</h1><p>Sorry, but we're having trouble signing you in.</p>` +
    `<p><code>${escapeHtml(error.message)}</code></p><p class="note">Trace ID: ${escapeHtml(traceId)}</p>`;
  sendPage(res, error.status, 'Sign in to your account (local emulator)', body, {});
}

/** `response_mode=form_post`: the answer posted to the redirect URI by a self-submitting form. */
export function sendFormPost(res: Response, uri: string, fields: ReadonlyMap<string, string>): void {
  const inputs = [...fields]
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('');
  const body = `<form method="post" action="${escapeHtml(uri)}">${inputs}<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit"></noscript></form>`;
  sendPage(res, 200, 'Working...', body, { formAction: new URL(uri).origin, script: FORM_POST_SCRIPT });
}

/** After logout without a registered `post_logout_redirect_uri`. */
export function sendSignedOutPage(res: Response): void {
  sendPage(
    res,
    200,
    'Signed out (local emulator)',
    "<h1>You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>",
    {},
  );
}
