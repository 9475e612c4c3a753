// The service's pino logger: JSON lines on stdout, never a token. The
// Authorization header is redacted wherever it could appear; URLs are logged
// through safeUrl() (app.ts), which scrubs ?token=.
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'authorization',
  'token',
  'headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  '*.token',
  '*.headers.authorization',
];

export function createLogger(level = process.env.KNIV_LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  const options = { level, base: { service: 'kniv' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
