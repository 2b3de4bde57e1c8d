import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { GraphRequestIds } from '../graph-emulator-error';

/**
 * Graph's `request-id` and `client-request-id`, given to every request as it arrives. They go in
 * the response headers and in the `innerError` of an error body; keeping them per request lets both
 * carry the same ids, which is how a client's log line is matched to Graph's.
 */
export interface RequestIdAssignment {
  /** The first route step: picks the ids and sets the response headers. */
  readonly assign: RequestHandler;
  /** The ids `assign` gave a request; undefined for a request it has not seen. */
  idsOf(req: Request): GraphRequestIds | undefined;
}

export function createRequestIdAssignment(): RequestIdAssignment {
  const requestIds = new WeakMap<Request, GraphRequestIds>();
  const assign: RequestHandler = (req, res, next) => {
    const requestId = randomUUID();
    const sent = req.get('client-request-id');
    // Graph echoes the caller's client-request-id, and reuses its request-id when there is none.
    const clientRequestId = sent !== undefined && sent.trim() !== '' ? sent : requestId;
    requestIds.set(req, { requestId, clientRequestId });
    res.set('request-id', requestId).set('client-request-id', clientRequestId);
    next();
  };
  return { assign, idsOf: (req) => requestIds.get(req) };
}
