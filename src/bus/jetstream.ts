import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { whileTransient } from './transient.js';

/** `PARTITIONS` and `PARTITION`: how many partitions, and which one this instance consumes. */
export interface Partitioning {
  readonly count: number;
  readonly index: number;
}

/** What a partitioned instance consumes, and where its calls are kept. */
export interface PartitionNames extends Partitioning {
  /** This partition's events: `<prefix>.partition.<index>.<callId>`. */
  readonly eventsFilter: string;
  /**
   * Partition 0's instance routes: events kept as published on
   * `<prefix>.events.>` (no subject transform, or a subject no call id
   * makes) and Graph's notification batches are republished to their call's
   * partition, in the order they were stored.
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
  /** Where identical replicas keep their heartbeats and partition leases. */
  readonly owners: string;
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
    owners: `callgate-${prefix}-owners`,
    eventsSubject: `${prefix}.events.>`,
    notificationsSubject,
  };
  if (partitions.count <= 1) return names;
  return {
    ...names,
    consumer: `callgate-${prefix}-p${partitions.index}`,
    partition: {
      ...partitions,
      eventsFilter: `${prefix}.partition.${partitions.index}.*`,
      ...(partitions.index === 0 && {
        router: {
          eventsConsumer: `callgate-${prefix}-router`,
          eventsFilter: `${prefix}.events.>`,
          notificationsConsumer: `callgate-${prefix}-notifications`,
        },
      }),
      keyPrefix: `p${partitions.index}.`,
    },
  };
}

/** Where an event for `callId` goes in partition `partition`. */
export function partitionSubject(prefix: string, partition: number, callId: string): string {
  return `${prefix}.partition.${partition}.${callId}`;
}

/**
 * An optional server subject mapping (`mappings = { … }` in the server's
 * configuration) that partitions events as they are published, sparing them
 * the router's hop. It hashes the subject's token as published, so use it
 * only when publishers put canonical call ids in subjects.
 */
export function partitionMapping(prefix: string, count: number): Record<string, string> {
  const { src, dest } = partitionTransform(prefix, count);
  return { [src]: dest };
}

const NANOS_PER_MS = 1_000_000;

/** How the stream is made, beyond its names. */
export interface StreamOptions {
  /** Replicas of the stream on a NATS cluster (`STREAM_REPLICAS`, default 1). */
  readonly replicas?: number;
  /**
   * Partition events as they are stored (NATS 2.10+): `<prefix>.events.<id>`
   * is kept as `<prefix>.events.<partition>.<id>`, the partition being
   * `{{partition(n,1)}}` of the id as published.
   */
  readonly transform?: number;
}

/** The stream's subject transform for `count` partitions (NATS 2.10+). */
export function partitionTransform(prefix: string, count: number): { src: string; dest: string } {
  return {
    src: `${prefix}.events.*`,
    dest: `${prefix}.partition.{{partition(${count},1)}}.{{wildcard(1)}}`,
  };
}

/**
 * A durable consumer taken over from an instance that died: made again from
 * its acknowledgement floor, so that the messages the dead instance held
 * unacknowledged come at once instead of after their ack wait. Returns the
 * last stream sequence the consumer had delivered: messages up to it may
 * have been applied (and a reject sent) by the dead instance, and count as
 * redelivered. Nothing is made again when no message was held.
 */
export async function restartConsumer(
  jsm: JetStreamManager,
  stream: string,
  name: string,
): Promise<number> {
  let info: Awaited<ReturnType<JetStreamManager['consumers']['info']>>;
  try {
    info = await jsm.consumers.info(stream, name);
  } catch (error) {
    if (isNotFound(error)) return 0;
    throw error;
  }
  const delivered = info.delivered.stream_seq;
  if (info.num_ack_pending === 0) return delivered;
  const { config } = info;
  await jsm.consumers.delete(stream, name);
  // Made again with the saved settings, however long a cluster takes: a
  // consumer made by anyone else in between would replay the stream.
  await whileTransient(() =>
    jsm.consumers.add(stream, {
      ...config,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: info.ack_floor.stream_seq + 1,
    }),
  );
  return delivered;
}

/**
 * Create the input stream and the durable consumer if they do not exist,
 * and bring their settings up to date if they do. Uses nothing newer than
 * NATS 2.9 (one filter subject at most, no subject transforms).
 */
export async function ensureStreamAndConsumer(
  jsm: JetStreamManager,
  names: BusNames,
  options: StreamOptions & { ackWaitMs: number; maxAckPending?: number },
): Promise<void> {
  const stream = {
    name: names.stream,
    subjects: [
      names.eventsSubject,
      ...(names.partition ? [`${names.prefix}.partition.>`] : []),
      names.notificationsSubject,
    ],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    duplicate_window: 2 * 60_000 * NANOS_PER_MS,
    max_age: 24 * 3_600_000 * NANOS_PER_MS,
    max_bytes: 1024 ** 3,
    max_msg_size: 1024 ** 2,
    num_replicas: options.replicas ?? 1,
    ...(options.transform !== undefined && {
      subject_transform: partitionTransform(names.prefix, options.transform),
    }),
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
