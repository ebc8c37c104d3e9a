import type { NatsConnection } from '@nats-io/transport-node';
import type { InvalidRecord, LifecycleRecord } from '../contract/records.js';
import type { Outbox } from './outbox.js';

/** Where callgate's records go. */
export interface RecordPublisher {
  /** On `<prefix>.lifecycle.<callId>`. */
  lifecycle(record: LifecycleRecord): void;
  /** On `<prefix>.invalid`. */
  invalid(record: InvalidRecord): void;
}

/**
 * Records published on core NATS in this turn's batch of sends (so they
 * follow the order they were made in and leave in one socket write).
 */
export function createRecordPublisher(
  nc: NatsConnection,
  outbox: Outbox,
  prefix: string,
): RecordPublisher {
  const encoder = new TextEncoder();
  const publish = (subject: string, body: unknown) =>
    outbox.defer(() => nc.publish(subject, encoder.encode(JSON.stringify(body))));
  return {
    lifecycle: (record) => publish(`${prefix}.lifecycle.${record.callId}`, record),
    invalid: (record) => publish(`${prefix}.invalid`, record),
  };
}
