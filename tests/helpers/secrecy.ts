import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

/**
 * The log-and-response secrecy check every integration suite runs when its test service closes:
 * no bearer token, OBO token, ACS token, client secret, access key or connection string may appear
 * in a log line or a response body, except the ACS token a token route is there to return.
 */
export interface CapturedResponse {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly body: string;
}

const JWT = /eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+/g;
const TOKEN_ROUTE = /^\/api\/token(\/teams)?\/?$/;

/** Wrap a request listener so every response body it writes is recorded. */
export function tapResponses(listener: RequestListener, sink: CapturedResponse[]): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    const keep = (chunk: unknown): void => {
      if (typeof chunk === 'string') chunks.push(Buffer.from(chunk));
      else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    };
    res.write = ((...args: unknown[]) => {
      keep(args[0]);
      return write(...args);
    }) as ServerResponse['write'];
    res.end = ((...args: unknown[]) => {
      if (typeof args[0] !== 'function') keep(args[0]);
      // Express rewrites req.url inside mounted routers; originalUrl is what the client asked for.
      const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '';
      sink.push({
        method: req.method ?? '',
        path: url.split('?')[0] ?? '',
        status: res.statusCode,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      return end(...args);
    }) as ServerResponse['end'];
    listener(req, res);
  };
}

/** The ACS token a successful token route returned, which is the one JWT allowed in a body. */
function issuedToken(response: CapturedResponse): string | undefined {
  if (response.status !== 201 || response.method === 'DELETE' || !TOKEN_ROUTE.test(response.path)) return undefined;
  try {
    const { token } = JSON.parse(response.body) as { token?: unknown };
    return typeof token === 'string' ? token : undefined;
  } catch {
    return undefined;
  }
}

export function findLeaks(input: {
  readonly logLines: readonly string[];
  readonly responses: readonly CapturedResponse[];
  readonly secrets: readonly string[];
}): string[] {
  const leaks: string[] = [];
  const secrets = input.secrets.filter((secret) => secret.length >= 8);
  input.logLines.forEach((line, index) => {
    if (JWT.test(line)) leaks.push(`log line ${index} holds a JWT: ${line.slice(0, 160)}`);
    JWT.lastIndex = 0;
    for (const secret of secrets) if (line.includes(secret)) leaks.push(`log line ${index} holds a secret`);
  });
  for (const response of input.responses) {
    const allowed = issuedToken(response);
    for (const match of response.body.match(JWT) ?? []) {
      if (match !== allowed)
        leaks.push(`${response.method} ${response.path} ${response.status} returned a JWT that is not its issued token`);
    }
    for (const secret of secrets) if (response.body.includes(secret)) leaks.push(`${response.method} ${response.path} returned a secret`);
  }
  return leaks;
}
