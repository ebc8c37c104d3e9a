import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';

/** `PARTITIONS` and `PARTITION`: how many partitions, and which one this instance consumes. */
export interface Partitioning {
  readonly count: number;
  readonly index: number;
}

/** What a partitioned instance consumes, and where its calls are kept. */
export interface PartitionNames extends Partitioning {
  /** This partition's events: `<prefix>.events.<index>.<callId>`. */
  readonly eventsFilter: string;
  /**
   * Partition 0's instance routes: events published on `<prefix>.events.<callId>`
   * (filter `<prefix>.events.*`) and Graph's notification batches are
   * republished to their call's partition, in the order they were stored.
   */
  readonly router?: {
    readonly eventsConsumer: string;
    readonly eventsFilter: string;
    readonly notificationsConsumer: string;
  };
  /** This partition's keys in the bucket: `p<index>.<callId>`. */
  readonly keyPrefix: string;
}

/** Names of everything callgate keeps in JetStream, derived from the subject prefix. */
export interface BusNames {
  readonly prefix: string;
  readonly stream: string;
  /** The durable consumer of this instance's events (all of them, or its partition's). */
  readonly consumer: string;
  readonly bucket: string;
  readonly eventsSubject: string;
  readonly notificationsSubject: string;
  /** Set when the calls are partitioned over several instances (`PARTITIONS` > 1). */
  readonly partition?: PartitionNames;
}

export function busNames(
  prefix: string,
  notificationsSubject = 'graph.notifications',
  partitions: Partitioning = { count: 1, index: 0 },
): BusNames {
  const names = {
    prefix,
    stream: `callgate-${prefix}`,
    consumer: `callgate-${prefix}`,
    bucket: `callgate-${prefix}-calls`,
    eventsSubject: `${prefix}.events.>`,
    notificationsSubject,
  };
  if (partitions.count <= 1) return names;
  return {
    ...names,
    consumer: `callgate-${prefix}-p${partitions.index}`,
    partition: {
      ...partitions,
      eventsFilter: `${prefix}.events.${partitions.index}.*`,
      ...(partitions.index === 0 && {
        router: {
          eventsConsumer: `callgate-${prefix}-router`,
          eventsFilter: `${prefix}.events.*`,
          notificationsConsumer: `callgate-${prefix}-notifications`,
        },
      }),
      keyPrefix: `p${partitions.index}.`,
    },
  };
}

/** Where an event for `callId` goes in partition `partition`. */
export function partitionSubject(prefix: string, partition: number, callId: string): string {
  return `${prefix}.events.${partition}.${callId}`;
}

/**
 * An optional server subject mapping (`mappings = { … }` in the server's
 * configuration) that partitions events as they are published, sparing them
 * the router's hop. It hashes the subject's token as published, so use it
 * only when publishers put canonical call ids in subjects.
 */
export function partitionMapping(prefix: string, count: number): Record<string, string> {
  return {
    [`${prefix}.events.*`]: `${prefix}.events.{{partition(${count},1)}}.{{wildcard(1)}}`,
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
  const { partition } = names;
  if (!partition) {
    await ensureConsumer(jsm, names.stream, names.consumer, undefined, options);
    return;
  }
  await ensureConsumer(jsm, names.stream, names.consumer, partition.eventsFilter, options);
  const { router } = partition;
  if (!router) return;
  await ensureConsumer(jsm, names.stream, router.eventsConsumer, router.eventsFilter, options);
  await ensureConsumer(
    jsm,
    names.stream,
    router.notificationsConsumer,
    names.notificationsSubject,
    options,
  );
}

/** One durable consumer with explicit acks, on one filter subject at most (NATS 2.9). */
async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  name: string,
  filterSubject: string | undefined,
  options: { ackWaitMs: number; maxAckPending?: number },
): Promise<void> {
  const consumer = {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: options.ackWaitMs * NANOS_PER_MS,
    max_ack_pending: options.maxAckPending ?? 1_024,
    max_deliver: -1,
    ...(filterSubject !== undefined && { filter_subject: filterSubject }),
  };
  try {
    await jsm.consumers.info(stream, name);
    await jsm.consumers.update(stream, name, {
      ack_wait: consumer.ack_wait,
      max_ack_pending: consumer.max_ack_pending,
    });
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.consumers.add(stream, consumer);
  }
}

/** JetStream says the stream or the consumer does not exist. */
export function isNotFound(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamNotFound ||
      error.code === JetStreamApiCodes.ConsumerNotFound ||
      error.status === 404)
  );
}
