/**
 * Entra's error answers, reproduced exactly: msal-node turns the envelope's `error`, `error_codes`,
 * `suberror` and `claims` into the error objects services branch on, so an emulator refusal must parse
 * into the same error a real one would. Route handlers throw AadError; the middleware here renders it.
 *
 * @packageDocumentation
 */
import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import type { ErrorEnvelopeInput } from '../kit/faults';

/**
 * Entra ID's (AAD STS) error envelope, as the token, metadata and keys endpoints send it:
 * `{ error, error_description: "AADSTSnnnn: text\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …",
 * error_codes: [nnnn], timestamp, trace_id, correlation_id, error_uri, suberror?, claims? }`.
 */
export interface AadErrorBody {
  readonly error: string;
  readonly error_description: string;
  readonly error_codes: readonly number[];
  readonly timestamp: string;
  readonly trace_id: string;
  readonly correlation_id: string;
  readonly error_uri?: string;
  readonly suberror?: string;
  /** A JSON document serialised as a string (conditional-access claims challenge), as Entra sends it. */
  readonly claims?: string;
}

/** An error a route handler throws; the emulator's error middleware renders it in the AAD envelope. */
export class AadError extends Error {
  override readonly name = 'AadError';

  constructor(
    readonly status: number,
    readonly error: string,
    /** The AADSTS number, or undefined for errors that carry none. */
    readonly aadsts: number | undefined,
    readonly text: string,
    readonly extras: { readonly suberror?: string; readonly claims?: string } = {},
  ) {
    super(aadsts === undefined ? text : `AADSTS${aadsts}: ${text}`);
  }
}

const traceIds = new WeakMap<Request, string>();

/** Entra's timestamp format in error bodies: `2019-03-13 10:08:10Z`. */
export function aadTimestamp(date: Date = new Date()): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** Trace id of this request (also sent as `x-ms-request-id`). */
export function traceIdOf(req: Request): string {
  let id = traceIds.get(req);
  if (id === undefined) {
    id = randomUUID();
    traceIds.set(req, id);
  }
  return id;
}

/** The caller's `client-request-id` (msal sends it as a query parameter and a header), else a fresh id. */
function correlationIdOf(req: Request): string {
  const fromQuery = req.query['client-request-id'];
  if (typeof fromQuery === 'string' && fromQuery !== '') return fromQuery;
  const fromHeader = req.get('client-request-id');
  if (fromHeader !== undefined && fromHeader !== '') return fromHeader;
  return randomUUID();
}

/** Headers Entra puts on every STS answer, errors included. */
export const stsHeaders: RequestHandler = (req, res, next) => {
  res.setHeader('Cache-Control', 'no-store, no-cache');
  res.setHeader('Pragma', 'no-cache');
  res.setHeader('x-ms-request-id', traceIdOf(req));
  res.setHeader('x-ms-ests-server', '2.1.0 - local emulator');
  next();
};

/** The envelope for one error, with this request's trace id and the caller's correlation id. */
export function aadErrorBody(req: Request, baseUrl: string, error: AadError): AadErrorBody {
  const timestamp = aadTimestamp();
  const traceId = traceIdOf(req);
  const correlationId = correlationIdOf(req);
  return {
    error: error.error,
    error_description: `${error.message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: error.aadsts === undefined ? [] : [error.aadsts],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    ...(error.aadsts === undefined ? {} : { error_uri: `${baseUrl}/error?code=${error.aadsts}` }),
    ...(error.extras.suberror === undefined ? {} : { suberror: error.extras.suberror }),
    ...(error.extras.claims === undefined ? {} : { claims: error.extras.claims }),
  };
}

/** Writes an AadError in the envelope (no-op when the response has started). */
export function sendAadError(req: Request, res: Response, baseUrl: string, error: AadError): void {
  if (res.headersSent) return;
  res.status(error.status).json(aadErrorBody(req, baseUrl, error));
}

/**
 * Default `error` and AADSTS code for an injected fault or an unmatched route with only a status.
 * 429 → AADSTS90055 (tenant throttling); 5xx → AADSTS90033 (transient) or 50000 for 500.
 * Which codes the real STS uses for these is unconfirmed: they are plausible picks.
 */
function defaultsFor(status: number): { error: string; aadsts: number | undefined; text: string } {
  if (status === 429)
    return { error: 'temporarily_unavailable', aadsts: 90055, text: 'There are too many incoming requests. Try again later.' };
  if (status === 500)
    return { error: 'server_error', aadsts: 50000, text: 'There was an error issuing a token or an issue with our sign-in service.' };
  if (status >= 500) return { error: 'temporarily_unavailable', aadsts: 90033, text: 'A transient error has occurred. Please try again.' };
  if (status === 401) return { error: 'invalid_client', aadsts: undefined, text: 'Client authentication failed.' };
  if (status === 404) return { error: 'not_found', aadsts: undefined, text: 'The requested resource was not found.' };
  return { error: 'invalid_request', aadsts: 9002313, text: 'Invalid request. Request is malformed or invalid.' };
}

const AADSTS_PREFIX = /^AADSTS(\d+):\s*/;

/**
 * The envelope for the emulator kit (injected faults and unmatched routes). A fault `message` that
 * starts with `AADSTSnnnn:` supplies the code; `code` supplies `error`.
 */
export function aadEnvelope(baseUrl: () => string): (input: ErrorEnvelopeInput) => AadErrorBody {
  return ({ status, code, message, req }) => {
    const defaults = defaultsFor(status);
    let aadsts = defaults.aadsts;
    let text = defaults.text;
    if (message !== undefined) {
      const match = AADSTS_PREFIX.exec(message);
      if (match) {
        aadsts = Number(match[1]);
        text = message.slice(match[0].length);
      } else {
        text = message;
      }
    }
    return aadErrorBody(req, baseUrl(), new AadError(status, code ?? defaults.error, aadsts, text));
  };
}

/** Last middleware: AadErrors in the envelope; body-parser errors as malformed requests; anything else as a 500. */
export function aadErrorHandler(baseUrl: () => string): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (err instanceof AadError) {
      sendAadError(req, res, baseUrl(), err);
      return;
    }
    const status = typeof err === 'object' && err !== null && 'status' in err ? Number(err.status) : NaN;
    if (status >= 400 && status < 500) {
      sendAadError(req, res, baseUrl(), new AadError(400, 'invalid_request', 9002313, 'Invalid request. Request is malformed or invalid.'));
      return;
    }
    sendAadError(
      req,
      res,
      baseUrl(),
      new AadError(500, 'server_error', 50000, 'There was an error issuing a token or an issue with our sign-in service.'),
    );
  };
}
