import type { RecordPublisher } from '../bus/publishers.js';
import type { InvalidRecord } from '../contract/records.js';
import type { Log } from '../log.js';
import type { Clock } from '../runtime/clock.js';
import type { Metrics } from './metrics.js';

const DECODER = new TextDecoder('utf-8', { fatal: true });

/** The invalid record of a message that could not be used: its text, or base64 when it is not UTF-8. */
export function invalidRecord(
  subject: string,
  data: Uint8Array,
  error: string,
  at: number,
): InvalidRecord {
  let payload: string;
  try {
    payload = DECODER.decode(data);
  } catch {
    payload = Buffer.from(data).toString('base64');
  }
  return { subject, error, payload, at: new Date(at).toISOString() };
}

/** Report a message (or a stored value) that could not be used, with the field and the rule. */
export type InvalidReporter = (subject: string, data: Uint8Array, error: string) => void;

/** Invalid records on `<prefix>.invalid`, counted and logged. */
export function createInvalidReporter(parts: {
  readonly publisher: RecordPublisher;
  readonly metrics: Metrics;
  readonly log: Log;
  readonly clock: Clock;
}): InvalidReporter {
  const { publisher, metrics, log, clock } = parts;
  return (subject, data, error) => {
    metrics.invalid.inc();
    publisher.invalid(invalidRecord(subject, data, error, clock.now()));
    log.warn({ subject, error }, 'invalid message');
  };
}
