import { type DestinationStream, type Logger, pino } from 'pino';
import { createPiiSanitizer, PII_PATHS, piiHasher, REDACTED } from './pii.js';

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

/*
 * Identities are hashed at the top of a line only ({@link PII_PATHS}), on
 * purpose: pino 10 runs every `*.`-wildcard path over every top-level value of
 * every line, so `*.source` and friends made a line without any identity
 * about 60% slower (≈6 → ≈10 µs); literal top-level paths cost nothing on
 * lines that lack them. Log identities at the top of the log object
 * (`log.info({ callId, source }, …)`), not nested in another one.
 */

const SECRET_KEYS: ReadonlySet<string> = new Set(
  REDACT_PATHS.map((path) => path.slice(path.lastIndexOf('.') + 1)),
);

export type Log = Logger;

export interface LoggerOptions {
  readonly level: string;
  readonly destination?: DestinationStream;
  /**
   * Show callers' identities as they are (`LOG_PII=1`). Default false: they
   * are replaced by keyed hashes (`src/pii.ts`).
   */
  readonly logPii?: boolean;
}

/**
 * The service's one logger: JSON lines, `callId` on every call's lines through
 * `log.child({ callId })`, credentials `[redacted]`, and callers' identities
 * (under the {@link PII_PATHS}) hashed unless `logPii` is set. Both are pino
 * redactions: a line without such fields costs what it did without them.
 *
 * @example
 * const log = createLogger({ level: 'info' });
 * log.child({ callId }).info({ state: 'rejected' }, 'call state changed');
 * log.info({ callId, source }, 'incoming call'); // "displayName":"h:3f9a0c2b7d41"
 */
export function createLogger(options: LoggerOptions): Log {
  const { identity } = createPiiSanitizer(piiHasher());
  const censor = (value: unknown, path: readonly unknown[]): unknown => {
    const key = path[path.length - 1];
    return typeof key === 'string' && SECRET_KEYS.has(key) ? REDACTED : identity(value);
  };
  return pino(
    {
      name: 'callgate',
      level: options.level,
      redact: options.logPii
        ? { paths: REDACT_PATHS, censor: REDACTED }
        : { paths: [...REDACT_PATHS, ...PII_PATHS], censor },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
