import type { NatsConnection } from '@nats-io/transport-node';
import type { InvalidRecord, LifecycleRecord } from '../contract/records.js';

/** Where callgate's records go. */
export interface RecordPublisher {
  /** On `<prefix>.lifecycle.<callId>`. */
  lifecycle(record: LifecycleRecord): void;
  /** On `<prefix>.invalid`. */
  invalid(record: InvalidRecord): void;
}

/**
 * Records published on core NATS at once, so they leave on the connection
 * before whatever is sent after them: a record published in a write's
 * callback goes out before the acknowledgement of the message and before
 * the call's next write (the client writes its buffer to the socket once per
 * microtask checkpoint, so this costs no extra socket write). A publish the
 * closed connection refuses is reported to `onError`, never thrown.
 */
export function createRecordPublisher(
  nc: NatsConnection,
  prefix: string,
  onError: (error: unknown) => void,
): RecordPublisher {
  const publish = (subject: string, body: unknown) => {
    try {
      // Buffer.from takes small strings from a shared pool: about a third of TextEncoder's time.
      nc.publish(subject, Buffer.from(JSON.stringify(body), 'utf8'));
    } catch (error) {
      onError(error);
    }
  };
  return {
    lifecycle: (record) => publish(`${prefix}.lifecycle.${record.callId}`, record),
    invalid: (record) => publish(`${prefix}.invalid`, record),
  };
}
