import { Agent, request } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import {
  ClientAuthError,
  ClientAuthErrorCodes,
  type INetworkModule,
  type NetworkRequestOptions,
  type NetworkResponse,
} from '@azure/msal-node';

/**
 * msal-node's network module on `https.request`, so the service can trust a private CA (the local
 * Entra emulator's) for MSAL only, without touching process-wide TLS settings, and so every token
 * request shares one keep-alive agent.
 *
 * It behaves like msal-node 7's own HttpClient: any HTTP status resolves with the parsed JSON body
 * (MSAL reads errors from it); a body that is not JSON rejects with `token_parsing_error`; a transport
 * failure or a timeout rejects with `network_error`, which MSAL surfaces as a network error.
 */
export interface MsalNetworkClientOptions {
  /** PEM of extra CA certificates to trust (Node's default roots are replaced, as `https.Agent` does). */
  readonly ca?: string;
  /** Deadline for one whole request, response body included (default 10 000 ms). */
  readonly timeoutMs?: number;
}

/** An msal `INetworkModule` that can release its pooled sockets. */
export interface MsalNetworkClient extends INetworkModule {
  /** Close the keep-alive sockets (for shutdown). */
  destroy(): void;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** Token responses are a few kilobytes; anything far larger is not an STS answer. */
const MAX_BODY_BYTES = 1024 * 1024;

function headerDictionary(headers: IncomingHttpHeaders): Record<string, string> {
  const dictionary: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    // fetch's Headers (which msal's HttpClient uses) joins repeated headers with ", ".
    dictionary[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return dictionary;
}

/** Creates the network module; throws a TypeError for a bad `timeoutMs` or a `ca` that is not PEM. */
export function createMsalNetworkClient(options: MsalNetworkClientOptions = {}): MsalNetworkClient {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new TypeError('timeoutMs must be a positive integer of milliseconds');
  if (options.ca !== undefined && !options.ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new TypeError('ca must be PEM-encoded certificates');
  }
  const transport: Transport = {
    agent: new Agent({ keepAlive: true, ...(options.ca === undefined ? {} : { ca: options.ca }) }),
    timeoutMs,
  };
  return {
    sendGetRequestAsync: <T>(url: string, requestOptions?: NetworkRequestOptions) => send<T>(transport, 'GET', url, requestOptions),
    sendPostRequestAsync: <T>(url: string, requestOptions?: NetworkRequestOptions) => send<T>(transport, 'POST', url, requestOptions),
    destroy: () => transport.agent.destroy(),
  };
}

/** What every request of one client shares. */
interface Transport {
  readonly agent: Agent;
  readonly timeoutMs: number;
}

/**
 * One request. It settles once: the first of a complete answer, a transport failure, an oversized
 * body or the deadline wins, and a failure also destroys the request so nothing keeps running.
 */
function send<T>(
  transport: Transport,
  method: 'GET' | 'POST',
  url: string,
  requestOptions: NetworkRequestOptions | undefined,
): Promise<NetworkResponse<T>> {
  return new Promise<NetworkResponse<T>>((resolve, reject) => {
    const correlationId = requestOptions?.correlationId ?? '';
    const target = httpsTarget(url, correlationId);
    if (target instanceof ClientAuthError) {
      reject(target);
      return;
    }
    const headers: Record<string, string | number> = { ...requestOptions?.headers };
    const body = method === 'POST' ? (requestOptions?.body ?? '') : undefined;
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);

    let settled = false;
    const fail = (error: ClientAuthError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(error);
    };
    const onResponse = (res: IncomingMessage): void => {
      readBody(res, correlationId, fail, (text) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const parsed = parseJson<T>(text, correlationId);
        if (parsed instanceof ClientAuthError) reject(parsed);
        else resolve({ headers: headerDictionary(res.headers), body: parsed.value, status: res.statusCode ?? 0 });
      });
    };

    let req: ReturnType<typeof request>;
    try {
      req = request(target, { method, agent: transport.agent, headers }, onResponse);
    } catch (error) {
      reject(networkError(correlationId, `Network request failed: ${error instanceof Error ? error.message : 'unknown'}`));
      return;
    }
    const timer = setTimeout(() => fail(networkError(correlationId, 'Request timeout')), transport.timeoutMs);
    req.on('error', (error) => fail(networkError(correlationId, `Network request failed: ${error.message}`)));
    req.end(body);
  });
}

function networkError(correlationId: string, reason: string): ClientAuthError {
  return new ClientAuthError(ClientAuthErrorCodes.networkError, correlationId, reason);
}

/** The URL to request, or the error to reject with: tokens and client credentials travel over https only. */
function httpsTarget(url: string, correlationId: string): URL | ClientAuthError {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return networkError(correlationId, `Network request failed: invalid URL`);
  }
  if (target.protocol !== 'https:')
    return networkError(correlationId, `Network request failed: only https is allowed, got ${target.protocol}`);
  return target;
}

/** Collect the response body, up to MAX_BODY_BYTES, and hand it to `onBody` once complete. */
function readBody(
  res: IncomingMessage,
  correlationId: string,
  fail: (error: ClientAuthError) => void,
  onBody: (text: string) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      fail(new ClientAuthError(ClientAuthErrorCodes.tokenParsingError, correlationId, 'Failed to parse response: body too large'));
      return;
    }
    chunks.push(chunk);
  });
  res.on('error', (error) => fail(networkError(correlationId, `Network request failed: ${error.message}`)));
  res.on('end', () => onBody(Buffer.concat(chunks).toString('utf8')));
}

/** The parsed body (boxed, as any JSON value, `null` included, is a valid answer), or the error MSAL expects for one that is not JSON. */
function parseJson<T>(text: string, correlationId: string): { readonly value: T } | ClientAuthError {
  try {
    return { value: JSON.parse(text) as T };
  } catch (error) {
    return new ClientAuthError(
      ClientAuthErrorCodes.tokenParsingError,
      correlationId,
      `Failed to parse response: ${error instanceof Error ? error.message : 'unknown'}`,
    );
  }
}
