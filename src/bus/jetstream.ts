import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';

/** Names of everything callgate keeps in JetStream, derived from the subject prefix. */
export interface BusNames {
  readonly prefix: string;
  readonly stream: string;
  readonly consumer: string;
  readonly bucket: string;
  readonly eventsSubject: string;
  readonly notificationsSubject: string;
}

export function busNames(prefix: string, notificationsSubject = 'graph.notifications'): BusNames {
  return {
    prefix,
    stream: `callgate-${prefix}`,
    consumer: `callgate-${prefix}`,
    bucket: `callgate-${prefix}-calls`,
    eventsSubject: `${prefix}.events.>`,
    notificationsSubject,
  };
}

const NANOS_PER_MS = 1_000_000;

/**
 * Create the input stream and the durable consumer if they do not exist,
 * and bring their settings up to date if they do. Uses nothing newer than
 * NATS 2.9 (one filter subject at most, no subject transforms).
 */
export async function ensureStreamAndConsumer(
  jsm: JetStreamManager,
  names: BusNames,
  options: { ackWaitMs: number; maxAckPending?: number },
): Promise<void> {
  const stream = {
    name: names.stream,
    subjects: [names.eventsSubject, names.notificationsSubject],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    duplicate_window: 2 * 60_000 * NANOS_PER_MS,
    max_age: 24 * 3_600_000 * NANOS_PER_MS,
    max_bytes: 1024 ** 3,
    max_msg_size: 1024 ** 2,
  };
  try {
    await jsm.streams.info(names.stream);
    await jsm.streams.update(names.stream, stream);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.streams.add(stream);
  }
  const consumer = {
    durable_name: names.consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: options.ackWaitMs * NANOS_PER_MS,
    max_ack_pending: options.maxAckPending ?? 1_024,
    max_deliver: -1,
  };
  try {
    await jsm.consumers.info(names.stream, names.consumer);
    await jsm.consumers.update(names.stream, names.consumer, {
      ack_wait: consumer.ack_wait,
      max_ack_pending: consumer.max_ack_pending,
    });
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.consumers.add(names.stream, consumer);
  }
}

function isNotFound(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === 10059 || error.code === 10014 || error.status === 404)
  );
}
