import { createHmac, randomBytes } from 'node:crypto';
import { type DestinationStream, type Logger, pino } from 'pino';

/** What a credential is replaced with in a log line. */
export const REDACTED = '[redacted]';

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

/**
 * Top-level log fields that hold a caller's identity: Graph's
 * `participantInfo` as `source` and `targets`, an `identitySet`, one
 * identity, or a bare name, id or number. Unless `logPii` is on, every
 * string and number under them is replaced by a keyed hash (see
 * {@link KEPT_IN_IDENTITIES} for what is kept). Log them at the top of the
 * log object (`log.info({ callId, source }, …)`), not nested in another one.
 *
 * Top level only, on purpose: pino 10 runs every `*.`-wildcard path over every
 * top-level value of every line, so `*.source` and friends made a line without
 * any identity about 60% slower (≈6 → ≈10 µs); literal top-level paths cost
 * nothing on lines that lack them.
 */
export const PII_PATHS = [
  'source',
  'targets',
  'identity',
  'user',
  'phone',
  'displayName',
  'userId',
] as const;

/**
 * Keys kept as they are inside a caller's identity: they say which tenant,
 * which kind of endpoint, which region, not who.
 */
export const KEPT_IN_IDENTITIES: ReadonlySet<string> = new Set([
  'tenantId',
  '@odata.type',
  'identityProvider',
  'endpointType',
  'region',
  'languageId',
  'countryCode',
]);

const SECRET_KEYS: ReadonlySet<string> = new Set(
  REDACT_PATHS.map((path) => path.slice(path.lastIndexOf('.') + 1)),
);

/** Identities nested deeper than this are not walked (a cycle, or not an identity). */
const MAX_DEPTH = 8;

export type Log = Logger;

export interface LoggerOptions {
  readonly level: string;
  readonly destination?: DestinationStream;
  /**
   * Show callers' identities as they are (`LOG_PII=1`). Default false: they
   * are replaced by {@link piiHasher} hashes.
   */
  readonly logPii?: boolean;
}

/**
 * A keyed hash for personal data in logs: `h:` and the first 12 hex digits of
 * HMAC-SHA256 under `key` (by default 32 fresh random bytes: `createLogger`
 * draws one key per logger, so one per `callgate serve` process).
 * The same value gives the same hash under one key, so the lines about one
 * caller can be followed through a run; without the key, a hash cannot be
 * turned back into the value, nor checked against a guess.
 *
 * @example
 * const hash = piiHasher();
 * hash('Ada Lovelace'); // 'h:3f9a0c2b7d41'
 */
export function piiHasher(key: Uint8Array = randomBytes(32)): (value: string) => string {
  return (value) => `h:${createHmac('sha256', key).update(value).digest('hex').slice(0, 12)}`;
}

/**
 * A copy of `value` with every string and number hashed, except under the
 * keys of {@link KEPT_IN_IDENTITIES}; booleans and `null` stay.
 */
export function hashIdentities(
  value: unknown,
  hash: (value: string) => string,
  depth = 0,
): unknown {
  if (typeof value === 'string') return hash(value);
  if (typeof value === 'number' || typeof value === 'bigint') return hash(String(value));
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_DEPTH) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => hashIdentities(item, hash, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    copy[key] = KEPT_IN_IDENTITIES.has(key) ? item : hashIdentities(item, hash, depth + 1);
  }
  return copy;
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
  const hash = piiHasher();
  const censor = (value: unknown, path: readonly unknown[]): unknown => {
    const key = path[path.length - 1];
    return typeof key === 'string' && SECRET_KEYS.has(key) ? REDACTED : hashIdentities(value, hash);
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
