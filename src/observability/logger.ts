import { pino, type DestinationStream, type Logger } from 'pino';

import type { LogLevel } from '../config/config';

export type { Logger } from 'pino';

/**
 * Structured JSON logs (one line per event) for App Service's log stream and Application Insights.
 *
 * Tokens, secrets and connection strings are never passed to the logger in the first place; the
 * redaction list is a second line of defence for headers and fields that could carry them.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["teams-user-aad-token"]',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  'accessToken',
  'assertion',
  'teamsUserAadToken',
  'clientSecret',
  'privateKey',
  'connectionString',
  '*.token',
  '*.accessToken',
  '*.assertion',
  '*.clientSecret',
  '*.privateKey',
  '*.connectionString',
];

export function createLogger(options: { readonly level: LogLevel; readonly destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'acs-auth-server' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination,
  );
}
