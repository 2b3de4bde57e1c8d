import { Agent, request, type RequestOptions } from 'node:https';
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
  const agent = new Agent({ keepAlive: true, ...(options.ca === undefined ? {} : { ca: options.ca }) });

  const send = <T>(method: 'GET' | 'POST', url: string, requestOptions: NetworkRequestOptions | undefined): Promise<NetworkResponse<T>> =>
    new Promise<NetworkResponse<T>>((resolve, reject) => {
      const correlationId = requestOptions?.correlationId ?? '';
      const networkError = (reason: string): ClientAuthError =>
        new ClientAuthError(ClientAuthErrorCodes.networkError, correlationId, reason);
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        reject(networkError(`Network request failed: invalid URL`));
        return;
      }
      if (target.protocol !== 'https:') {
        reject(networkError(`Network request failed: only https is allowed, got ${target.protocol}`));
        return;
      }
      const headers: Record<string, string | number> = { ...requestOptions?.headers };
      const body = method === 'POST' ? (requestOptions?.body ?? '') : undefined;
      if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
      const httpOptions: RequestOptions = { method, agent, headers };

      let settled = false;
      const fail = (error: ClientAuthError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(error);
      };

      let req: ReturnType<typeof request>;
      try {
        req = request(target, httpOptions, onResponse);
      } catch (error) {
        reject(networkError(`Network request failed: ${error instanceof Error ? error.message : 'unknown'}`));
        return;
      }
      function onResponse(res: IncomingMessage): void {
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
        res.on('error', (error) => fail(networkError(`Network request failed: ${error.message}`)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          let parsed: T;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
          } catch (error) {
            reject(
              new ClientAuthError(
                ClientAuthErrorCodes.tokenParsingError,
                correlationId,
                `Failed to parse response: ${error instanceof Error ? error.message : 'unknown'}`,
              ),
            );
            return;
          }
          resolve({ headers: headerDictionary(res.headers), body: parsed, status: res.statusCode ?? 0 });
        });
      }
      const timer = setTimeout(() => fail(networkError('Request timeout')), timeoutMs);
      req.on('error', (error) => fail(networkError(`Network request failed: ${error.message}`)));
      req.end(body);
    });

  return {
    sendGetRequestAsync: <T>(url: string, requestOptions?: NetworkRequestOptions) => send<T>('GET', url, requestOptions),
    sendPostRequestAsync: <T>(url: string, requestOptions?: NetworkRequestOptions) => send<T>('POST', url, requestOptions),
    destroy: () => agent.destroy(),
  };
}
