import type { Response } from 'express';
import type { GraphUser } from './graph-user-directory';

/**
 * How the Graph emulator writes successful answers: Graph's OData content type and version header,
 * and the `@odata.context` URLs of the resources it returns. Clients and the Graph SDK read these,
 * so they are spelt as live Graph spells them.
 *
 * @packageDocumentation
 */

/** What Graph answers successful JSON with; the Graph client only needs the `application/json` part. */
export const ODATA_JSON = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';

/** Write `body` as a Graph OData answer. */
export function sendODataJson(res: Response, status: number, body: unknown): void {
  res.status(status).set('Content-Type', ODATA_JSON).set('OData-Version', '4.0').json(body);
}

/** `@odata.context` of a user's extension collection. */
export function extensionsContext(baseUrl: string, user: GraphUser): string {
  return `${baseUrl}/v1.0/$metadata#users('${user.id}')/extensions`;
}

/** `@odata.context` of one extension of a user. */
export function extensionEntityContext(baseUrl: string, user: GraphUser): string {
  return `${extensionsContext(baseUrl, user)}/$entity`;
}
