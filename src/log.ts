import { type DestinationStream, type Logger, pino } from 'pino';

/** Paths pino replaces with "[redacted]": credentials never reach a log line. */
export const REDACT_PATHS = [
  'authorization',
  'token',
  'accessToken',
  'clientSecret',
  'password',
  'secret',
  '*.authorization',
  '*.Authorization',
  '*.token',
  '*.accessToken',
  '*.clientSecret',
  '*.password',
  '*.secret',
  'headers.authorization',
  'req.headers.authorization',
];

export type Log = Logger;

/**
 * The service's one logger: JSON lines, `callId` on every call's lines through
 * `log.child({ callId })`, secrets redacted.
 *
 * @example
 * const log = createLogger({ level: 'info' });
 * log.child({ callId }).info({ state: 'rejected' }, 'call state changed');
 */
export function createLogger(options: { level: string; destination?: DestinationStream }): Log {
  return pino(
    {
      name: 'callgate',
      level: options.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
