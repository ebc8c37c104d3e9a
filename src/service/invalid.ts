import type { RecordPublisher } from '../bus/publishers.js';
import { LIMITS, truncated, withoutQuotes } from '../contract/limits.js';
import type { InvalidRecord } from '../contract/records.js';
import type { Log } from '../log.js';
import type { Clock } from '../runtime/clock.js';
import type { Metrics } from './metrics.js';

const DECODER = new TextDecoder('utf-8', { fatal: true });
/** An error is the rule, the field and at most a short quote of the input: this is ample. */
const MAX_ERROR_CHARS = 2_000;

/**
 * The invalid record of what could not be used: the message's text (base64
 * when it is not UTF-8), or the part the error is about (one notification of
 * a batch) as JSON; cut to 64 KiB with `truncated` set.
 */
export function invalidRecord(
  subject: string,
  what: Uint8Array | { readonly part: unknown },
  error: string,
  at: number,
): InvalidRecord {
  const text = what instanceof Uint8Array ? textOf(what) : (JSON.stringify(what.part) ?? 'null');
  const cut = text.length > LIMITS.invalidPayloadChars;
  return {
    subject,
    error: truncated(error, MAX_ERROR_CHARS),
    payload: cut ? text.slice(0, LIMITS.invalidPayloadChars) : text,
    at: new Date(at).toISOString(),
    ...(cut && { truncated: true }),
  };
}

function textOf(data: Uint8Array): string {
  try {
    return DECODER.decode(data);
  } catch {
    return Buffer.from(data).toString('base64');
  }
}

/**
 * Report what could not be used, with the field and the rule: a message (or
 * a stored value) as bytes, or one part of a message.
 */
export type InvalidReporter = (
  subject: string,
  what: Uint8Array | { readonly part: unknown },
  error: string,
) => void;

/** Invalid records on `<prefix>.invalid`, counted and logged. */
export function createInvalidReporter(parts: {
  readonly publisher: RecordPublisher;
  readonly metrics: Metrics;
  readonly log: Log;
  readonly clock: Clock;
}): InvalidReporter {
  const { publisher, metrics, log, clock } = parts;
  return (subject, what, error) => {
    metrics.invalid.inc();
    publisher.invalid(invalidRecord(subject, what, error, clock.now()));
    // The log line names the rule, never the input it quotes.
    log.warn({ subject, error: withoutQuotes(error) }, 'invalid message');
  };
}
