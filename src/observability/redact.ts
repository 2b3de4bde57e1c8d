/**
 * Masks anything shaped like a JWT (three base64url segments, the first two JSON objects) in text the
 * client controls, such as a request path, before it reaches a log line or an error message. A
 * client that puts its token in the URL must not find it in our logs.
 */
const JWT_LIKE = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;

export function redactTokens(text: string): string {
  return text.replace(JWT_LIKE, '[redacted]');
}

export interface ErrorSummary {
  readonly type: string;
  readonly message: string;
  readonly code?: string | number;
  readonly status?: number;
  readonly stack?: string;
  readonly cause?: ErrorSummary;
}

/**
 * What of an error may be logged. SDK errors carry whole requests and responses as enumerable fields
 * (RestError.request holds the signed headers, GraphError.headers the response's), which a generic
 * serializer would write out; this keeps only the name, message, code, status, stack and causes.
 */
export function summarizeError(error: unknown, depth = 0): ErrorSummary {
  if (!(error instanceof Error)) return { type: typeof error, message: redactTokens(String(error)).slice(0, 500) };
  const fields = error as Error & { code?: unknown; errorCode?: unknown; statusCode?: unknown; status?: unknown };
  const code = [fields.code, fields.errorCode].find((value) => typeof value === 'string' || typeof value === 'number') as string | number | undefined;
  const status = [fields.statusCode, fields.status].find((value) => typeof value === 'number') as number | undefined;
  return {
    type: error.name,
    message: redactTokens(error.message).slice(0, 1000),
    ...(code === undefined ? {} : { code }),
    ...(status === undefined ? {} : { status }),
    ...(error.stack ? { stack: redactTokens(error.stack) } : {}),
    ...(error.cause !== undefined && depth < 3 ? { cause: summarizeError(error.cause, depth + 1) } : {}),
  };
}
