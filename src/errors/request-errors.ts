import { AppError } from './app-errors';

/**
 * Refusals of a request's form, before any route runs: a method the route does not allow, a URL too
 * long to be real. Each has a code of its own, so a client can tell them from a bad query.
 */

/** 405 with the `Allow` header RFC 9110 requires. */
export class MethodNotAllowedError extends AppError {
  constructor(method: string, allow: readonly string[]) {
    super('method_not_allowed', 405, `${method} is not allowed here. Allowed: ${allow.join(', ')}.`, {
      headers: { Allow: allow.join(', ') },
    });
  }
}

/** 414: the request line's URL is longer than the service ever needs. */
export class UriTooLongError extends AppError {
  constructor(maxLength: number) {
    super('uri_too_long', 414, `The request URL is longer than ${maxLength} characters.`);
  }
}
