import { randomUUID } from 'node:crypto';
import type { ErrorEnvelope } from '../kit/faults';

/**
 * An error the Graph emulator answers with: thrown by route steps and rendered by the error
 * middleware in Graph's OData envelope.
 */
export class GraphEmulatorError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'GraphEmulatorError';
    this.status = status;
    this.code = code;
  }
}

/** The ids Graph puts in every response header and in `innerError`. */
export interface GraphRequestIds {
  readonly requestId: string;
  readonly clientRequestId: string;
}

const DEFAULT_CODES: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'InvalidAuthenticationToken',
  403: 'Authorization_RequestDenied',
  404: 'ResourceNotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  413: 'RequestEntityTooLarge',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
  504: 'GatewayTimeout',
};

const DEFAULT_MESSAGES: Readonly<Record<number, string>> = {
  401: 'Access token validation failure.',
  403: 'Insufficient privileges to complete the operation.',
  429: 'Please retry again later.',
  503: 'The service is currently unavailable. Please retry again later.',
  504: 'The operation timed out.',
};

/** Graph's `innerError.date`: UTC, second precision, no zone designator (as live responses show it). */
function graphDate(now: Date): string {
  return now.toISOString().slice(0, 19);
}

/**
 * Build the envelope renderer. `idsOf` returns the ids the request was given by the emulator's
 * header step, so the body and the `request-id` header agree.
 */
export function createGraphErrorEnvelope(idsOf: (req: Parameters<ErrorEnvelope>[0]['req']) => GraphRequestIds | undefined): ErrorEnvelope {
  return ({ status, code, message, req }) => {
    const ids = idsOf(req) ?? { requestId: randomUUID(), clientRequestId: randomUUID() };
    const innerError: Record<string, string> = {};
    // Graph's throttling responses repeat the status inside innerError (concepts/throttling.md sample).
    if (status === 429) {
      innerError['code'] = '429';
      innerError['status'] = '429';
    }
    innerError['date'] = graphDate(new Date());
    innerError['request-id'] = ids.requestId;
    innerError['client-request-id'] = ids.clientRequestId;
    return {
      error: {
        code: code ?? DEFAULT_CODES[status] ?? (status >= 500 ? 'generalException' : 'BadRequest'),
        message: message ?? DEFAULT_MESSAGES[status] ?? `The request failed with status ${status}.`,
        innerError,
      },
    };
  };
}
