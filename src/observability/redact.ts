/**
 * Masks anything shaped like a JWT (a JWS or JWE in compact form: base64url parts joined by dots, the
 * first a JSON object, so starting `eyJ`) in text the client or an upstream controls, such as a request
 * path or an error message, before it reaches a log line or an error body. A client that puts its
 * token in the URL must not find it in our logs.
 *
 * This runs on every request's path before any authentication, so its cost must be linear in a
 * bounded input: the text is cut to `maxLength` first, and the one regular expression below matches
 * whole runs of base64url characters and dots (each repeated part starts with a dot, which the part
 * before it cannot match, so it never backtracks, and a match takes the whole run, so no attempt starts
 * inside one). Which part of a run is a token is then decided by plain string code. The previous
 * pattern (`eyJ[…]{2,}\.…`) restarted at every `eyJ` of a run and rescanned to its end: quadratic
 * (200 requests of 15.6 KB stalled the service for 16 s, issue 11).
 */

/** Longest request path written into a log line or an error message; a longer one is cut (and marked `…`). */
export const PATH_TEXT_LENGTH = 256;

const DOTTED_RUN = /[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)*/g;
const TOKEN_START = 'eyJ';
const REDACTED = '[redacted]';

/**
 * The run with everything from its first token on replaced: a segment holding `eyJ` followed by at
 * least two characters, then a dot, a segment of at least two characters and another dot, like the
 * header, payload and signature of a JWS. The rest of the run goes too (a JWE has five parts).
 */
function redactRun(run: string): string {
  if (!run.includes(TOKEN_START)) return run;
  const segments = run.split('.');
  for (let index = 0; index + 2 < segments.length; index += 1) {
    const segment = segments[index]!;
    const at = segment.indexOf(TOKEN_START);
    if (at >= 0 && segment.length - at >= TOKEN_START.length + 2 && segments[index + 1]!.length >= 2) {
      return [...segments.slice(0, index), `${segment.slice(0, at)}${REDACTED}`].join('.');
    }
  }
  return run;
}

/**
 * A token the cut went through has lost its last dots, so `redactRun` would not recognise it: mask the
 * last run of the cut text from its first `eyJ` on.
 */
function withoutCutToken(head: string): string {
  let start = head.length;
  while (start > 0 && isRunCharacter(head.charCodeAt(start - 1))) start -= 1;
  const at = head.indexOf(TOKEN_START, start);
  return at < 0 ? head : `${head.slice(0, at)}${REDACTED}`;
}

function isRunCharacter(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    code === 0x2d ||
    code === 0x5f ||
    code === 0x2e
  );
}

/**
 * `text` cut to `maxLength` characters (then marked with `…`), with every JWT-looking token in it
 * replaced by `[redacted]`. Linear in `maxLength`, whatever `text` holds.
 */
export function redactTokens(text: string, maxLength: number): string {
  if (text.length <= maxLength) return text.replace(DOTTED_RUN, redactRun);
  return `${withoutCutToken(text.slice(0, maxLength)).replace(DOTTED_RUN, redactRun)}…`;
}

export interface ErrorSummary {
  readonly type: string;
  readonly message: string;
  readonly code?: string | number;
  readonly status?: number;
  readonly stack?: string;
  readonly cause?: ErrorSummary;
}

/** Longest error message and stack kept in a log line: enough for any SDK error, bounded for hostile ones. */
const MAX_MESSAGE_LENGTH = 1000;
const MAX_STACK_LENGTH = 4000;

/**
 * What of an error may be logged. SDK errors carry whole requests and responses as enumerable fields
 * (RestError.request holds the signed headers, GraphError.headers the response's), which a generic
 * serializer would write out; this keeps only the name, message, code, status, stack and causes.
 */
export function summarizeError(error: unknown, depth = 0): ErrorSummary {
  if (!(error instanceof Error)) return { type: typeof error, message: redactTokens(String(error), MAX_MESSAGE_LENGTH / 2) };
  const fields = error as Error & { code?: unknown; errorCode?: unknown; statusCode?: unknown; status?: unknown };
  const code = [fields.code, fields.errorCode].find(
    (value): value is string | number => typeof value === 'string' || typeof value === 'number',
  );
  const status = [fields.statusCode, fields.status].find((value): value is number => typeof value === 'number');
  return {
    type: error.name,
    message: redactTokens(error.message, MAX_MESSAGE_LENGTH),
    ...(code === undefined ? {} : { code }),
    ...(status === undefined ? {} : { status }),
    ...(error.stack ? { stack: redactTokens(error.stack, MAX_STACK_LENGTH) } : {}),
    ...(error.cause !== undefined && depth < 3 ? { cause: summarizeError(error.cause, depth + 1) } : {}),
  };
}
