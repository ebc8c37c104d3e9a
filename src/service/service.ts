import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  type BusNames,
  busNames,
  ensureStreamAndConsumer,
  type Partitioning,
  restartConsumer,
  type StreamOptions,
} from '../bus/jetstream.js';
import { createOutbox, type Outbox } from '../bus/outbox.js';
import { createRecordPublisher } from '../bus/publishers.js';
import type { LifecycleRecord, RecordFacts } from '../contract/records.js';
import type { Log } from '../log.js';
import { type Ownership, ownsAll, ownsPartition } from '../ownership/ownership.js';
import { openSnapshotStore } from '../persistence/nats-store.js';
import type { SnapshotStore } from '../persistence/store.js';
import {
  type CallChange,
  type CallRuntime,
  type CallRuntimeOptions,
  createCallRuntime,
} from '../runtime/call-runtime.js';
import { type Clock, systemClock } from '../runtime/clock.js';
import type { CallControl } from '../runtime/ports.js';
import { Consumption } from './consumption.js';
import type { DecodeSubjects } from './decode.js';
import { createInvalidReporter, type InvalidReporter } from './invalid.js';
import type { MessageAck } from './message-ack.js';
import type { Metrics } from './metrics.js';
import { createRecordObserver } from './observers.js';
import { Pipeline } from './pipeline.js';
import { PublicationMark } from './publication-mark.js';
import { resendRecovered } from './resend.js';
import { restoreCalls } from './restore.js';
import { createRouter, publishToPartition } from './router.js';
import { BusWatch } from './watch.js';

export interface ServiceOptions {
  readonly nc: NatsConnection;
  readonly control: CallControl;
  readonly log: Log;
  readonly metrics: Metrics;
  readonly subjectPrefix: string;
  /** Where Graph's notification batches arrive (default `graph.notifications`). */
  readonly notificationsSubject?: string;
  readonly answerTimeoutMs: number;
  readonly retentionMs: number;
  readonly clock?: Clock;
  /** Whether the connection to NATS is up (it reconnects for ever, so it is never closed). */
  readonly isConnected?: () => boolean;
  /** Passed to the call runtime: receives every call actor's inspection events. */
  readonly inspect?: CallRuntimeOptions<MessageAck>['inspect'];
  /** Passed to the call runtime: one running actor per call for its life (for inspection). */
  readonly keepAwake?: boolean;
  /** Receives every lifecycle record (transitions and refusals) and its facts, once published (the live page). */
  readonly onRecord?: (record: LifecycleRecord, facts: RecordFacts) => void;
  /** This service owns one partition of the calls (default: all). */
  readonly partitions?: Partitioning;
  /** How the stream is made: its replicas, and whether it partitions events as they are stored. */
  readonly stream?: StreamOptions;
  /** Replicas of the bucket when it is made (default 1). */
  readonly bucketReplicas?: number;
  /**
   * Whether this service may act on its calls now (it holds their lease):
   * asked before every write to the bucket. Default: always.
   */
  readonly mayAct?: () => boolean;
  /**
   * Messages up to this stream sequence count as redelivered: the calls are
   * taken over from an instance that died, which may have applied them
   * (see {@link takeOverConsumers}). Default 0.
   */
  readonly redeliveredUpTo?: number;
  /**
   * Waiting calls that keep a running actor (default 2,048): a service that
   * holds one of several partitions gets its part of the instance's budget.
   */
  readonly idleAwake?: number;
  /**
   * At most one publication mark this often (default 50 ms): the services
   * of an instance's partitions share the rate of one.
   */
  readonly markGapMs?: number;
  /** Told the number of live calls after each change (default: sets `callgate_live_calls`). */
  readonly countLive?: (live: number) => void;
  /** How often the stream, the consumer and the bucket are looked at (default 5 s). */
  readonly watchIntervalMs?: number;
  /** Messages waiting with no progress for this long make the service not ready (default 30 s). */
  readonly stallMs?: number;
  /**
   * How long a final call stays in memory whole (default 2 minutes, at most
   * `retentionMs`); after that only a hash of its id is kept, and a late event
   * for it reads the call from the bucket.
   */
  readonly tombstoneMemoryMs?: number;
}

export interface Service {
  readonly names: BusNames;
  readonly runtime: CallRuntime<MessageAck>;
  readonly ownership: Ownership;
  /** True while NATS, the stream, the consumer and the bucket are there and calls are moving. */
  isReady(): boolean;
  /** Why the service is not ready, when the bus is to blame. */
  problem(): string | undefined;
  /**
   * Drop everything at once, acting on nothing more: another instance owns
   * the calls now. Writes and requests still queued are never sent.
   */
  abandon(): Promise<void>;
  /**
   * Stop consuming, let requests in flight finish (up to `graceMs`), wait for
   * every snapshot write, and stop the runtime. Messages not yet acknowledged
   * are redelivered to the next instance.
   */
  stop(graceMs: number): Promise<void>;
}

/** Short: only messages being applied are unacknowledged (held events are stored), so after a crash they come back within seconds. */
const ACK_WAIT_MS = 5_000;
/**
 * Waiting calls that keep a running actor (about 4 KB each): a call's reject
 * usually follows its incoming within a second, and then finds its actor
 * awake instead of restoring it. The rest rest as snapshots of a few hundred bytes.
 */
export const IDLE_AWAKE = 2_048;
const TOMBSTONE_MEMORY_MS = 120_000;

/**
 * The live service: JetStream in, the call runtime in the middle, lifecycle
 * and invalid records out, every state change stored before the message
 * that caused it is acknowledged.
 */
export async function startService(options: ServiceOptions): Promise<Service> {
  const { nc, log, metrics } = options;
  const clock = options.clock ?? systemClock;
  const names = busNames(options.subjectPrefix, options.notificationsSubject, options.partitions);
  const jsm = await jetstreamManager(nc);
  await ensureStreamAndConsumer(jsm, names, { ...options.stream, ackWaitMs: ACK_WAIT_MS });
  const countLive = options.countLive ?? ((live: number) => metrics.liveCalls.set(live));
  // Snapshot writes made in one turn of the event loop leave together, in as
  // few socket writes as possible.
  const outbox = createOutbox((error) => log.error({ err: error }, 'sending to NATS failed'));
  const publisher = createRecordPublisher(nc, names.prefix, (error) =>
    log.error({ err: error }, 'could not publish a record'),
  );
  const reportInvalid = createInvalidReporter({ publisher, metrics, log, clock });
  // The pipeline is made below; steps only run once it exists.
  const runtime = runtimeFor(options, clock, (changes) => pipeline.changed(changes));
  const store = await openSnapshotStore(nc, {
    bucket: names.bucket,
    retentionMs: options.retentionMs,
    source: runtime,
    defer: (send) => outbox.defer(send),
    ...(names.partition && { keyPrefix: names.partition.keyPrefix }),
    ...(options.bucketReplicas !== undefined && { replicas: options.bucketReplicas }),
    ...(options.mayAct && { mayWrite: options.mayAct }),
  });
  const ownership = names.partition
    ? ownsPartition(names.partition.index, names.partition.count)
    : ownsAll();
  const subjects = decodeSubjects(names);
  const mark = new PublicationMark(() => nc.flush(), store, log, options.markGapMs);
  const js = jetstream(nc);
  const pipeline = new Pipeline({
    runtime,
    store,
    ownership,
    subjects,
    reportInvalid,
    publish: (record) => publisher.lifecycle(record),
    observe: createRecordObserver({ log, metrics, onRecord: options.onRecord }),
    metrics,
    log,
    clock,
    staleAfterMs: options.retentionMs - options.answerTimeoutMs,
    mark,
    redeliveredUpTo: options.redeliveredUpTo ?? 0,
    countLive,
    ...(names.partition && {
      forward: (msg, envelope) =>
        publishToPartition(
          js,
          { prefix: names.prefix, partitions: names.partition?.count ?? 1 },
          envelope.callId,
          msg.data,
          `${names.stream}:${msg.seq}:forward`,
        ),
    }),
  });
  const keySubject = `$KV.${names.bucket}.${names.partition?.keyPrefix ?? ''}`;
  const consumption = new Consumption(js, names, {
    own: (msg) => pipeline.handle(msg),
    route: names.partition?.router
      ? createRouter({
          js,
          subjects,
          reportInvalid,
          metrics,
          log,
          prefix: names.prefix,
          stream: names.stream,
          partitions: names.partition.count,
        })
      : undefined,
  });
  try {
    await restore({ store, runtime, pipeline, keySubject, reportInvalid, metrics, log, countLive });
    await ownership.acquire();
    await consumption.start();
  } catch (error) {
    // Nothing of a service that did not start keeps running.
    pipeline.close();
    runtime.stop();
    store.close();
    throw error;
  }
  const stopping = new AbortController();
  void resend(runtime, stopping.signal, log);
  const watch = new BusWatch({
    jsm,
    names,
    ackWaitMs: ACK_WAIT_MS,
    ...(options.stream && { stream: options.stream }),
    ...(options.mayAct && { mayAct: options.mayAct }),
    store,
    consumption,
    metrics,
    log,
    ...(options.watchIntervalMs !== undefined && { intervalMs: options.watchIntervalMs }),
    ...(options.stallMs !== undefined && { stallMs: options.stallMs }),
  });
  watch.start();
  const parts = { runtime, store, outbox, ownership, consumption, stopping, pipeline, watch, mark };
  return {
    names,
    runtime,
    ownership,
    isReady: () =>
      !stopping.signal.aborted &&
      !nc.isClosed() &&
      (options.isConnected?.() ?? true) &&
      watch.problem === undefined,
    problem: () => watch.problem,
    stop: (graceMs) => stop(parts, graceMs),
    abandon: () => abandon(parts),
  };
}

function runtimeFor(
  options: ServiceOptions,
  clock: Clock,
  onChanges: (changes: CallChange<MessageAck>[]) => void,
): CallRuntime<MessageAck> {
  return createCallRuntime<MessageAck>({
    clock,
    windowMs: options.answerTimeoutMs,
    control: options.control,
    log: options.log,
    idleAwake: options.idleAwake ?? IDLE_AWAKE,
    tombstoneMemoryMs: Math.min(
      options.retentionMs,
      options.tombstoneMemoryMs ?? TOMBSTONE_MEMORY_MS,
    ),
    storedMs: options.retentionMs,
    ...(options.inspect && { inspect: options.inspect }),
    ...(options.keepAwake !== undefined && { keepAwake: options.keepAwake }),
    onChanges,
  });
}

/** Restore every stored call; a call stored by another machine version is reported and fenced off. */
async function restore(parts: {
  readonly store: SnapshotStore;
  readonly runtime: CallRuntime<MessageAck>;
  readonly pipeline: Pipeline;
  /** The subject prefix of this instance's keys, `$KV.<bucket>.` and the partition's key prefix. */
  readonly keySubject: string;
  readonly reportInvalid: InvalidReporter;
  readonly metrics: Metrics;
  readonly log: Log;
  readonly countLive: (live: number) => void;
}): Promise<void> {
  const { runtime, pipeline, metrics, log } = parts;
  const restored = await restoreCalls(parts.store, runtime, log);
  for (const [callId, value] of restored.unreadable) {
    metrics.unreadableCalls.inc();
    log.error({ callId, error: value.error }, 'a stored call cannot be restored');
    parts.reportInvalid(`${parts.keySubject}${callId}`, value.data, `snapshot: ${value.error}`);
    pipeline.unreadable(callId, value.error);
  }
  // Written before the crash, perhaps never sent: sent again (at least once).
  pipeline.republish(restored.unsent);
  parts.countLive(runtime.liveCount);
  const { live, final } = restored;
  const resent = restored.unsent.length;
  log.info({ restored: live, final, live: runtime.liveCount, resent }, 'calls restored');
}

async function resend(runtime: CallRuntime<MessageAck>, signal: AbortSignal, log: Log) {
  const started = Date.now();
  const requests = await resendRecovered(runtime, signal);
  if (requests === 0) return;
  log.info(
    { requests, ms: Date.now() - started },
    'requests in flight at the last stop sent again',
  );
}

/**
 * Stop consuming, let requests in flight finish (up to `graceMs`), wait for
 * every snapshot write, stop the runtime and give the calls up.
 */
async function stop(parts: Parts, graceMs: number): Promise<void> {
  const { runtime, store } = parts;
  parts.stopping.abort();
  parts.watch.stop();
  await parts.consumption.close();
  const until = Date.now() + graceMs;
  while (runtime.inFlight > 0 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  parts.outbox.flush();
  await store.settled();
  // Records of the writes just stored were published as each was stored:
  // the last mark flushes them out before the connection drains.
  await parts.mark.stop();
  parts.pipeline.close();
  runtime.stop();
  store.close();
  await parts.ownership.release();
}

/** Drop everything without a last write: another instance owns the calls now. */
async function abandon(parts: Parts): Promise<void> {
  parts.stopping.abort();
  parts.watch.stop();
  parts.mark.abandon();
  parts.pipeline.close();
  parts.runtime.stop();
  parts.store.close();
  await parts.consumption.close();
  await parts.ownership.release();
}

/**
 * Before a service takes calls over from an instance that died: its
 * consumers are made again from their acknowledgement floor (see
 * `restartConsumer`), so the messages the dead one held come at once.
 * Returns what its own consumer had delivered, the service's
 * `redeliveredUpTo` (the router's copies are applied through that one).
 * Done once, not with each attempt to start the service.
 */
export async function takeOverConsumers(
  nc: NatsConnection,
  options: Pick<ServiceOptions, 'subjectPrefix' | 'notificationsSubject' | 'partitions'>,
): Promise<number> {
  const names = busNames(options.subjectPrefix, options.notificationsSubject, options.partitions);
  const jsm = await jetstreamManager(nc);
  const { router } = names.partition ?? {};
  if (router) {
    await restartConsumer(jsm, names.stream, router.eventsConsumer);
    await restartConsumer(jsm, names.stream, router.notificationsConsumer);
  }
  return restartConsumer(jsm, names.stream, names.consumer);
}

/** What `stop` and `abandon` close. */
interface Parts {
  readonly runtime: CallRuntime<MessageAck>;
  readonly store: SnapshotStore;
  readonly outbox: Outbox;
  readonly ownership: Ownership;
  readonly consumption: Consumption;
  readonly stopping: AbortController;
  readonly pipeline: Pipeline;
  readonly watch: BusWatch;
  readonly mark: PublicationMark;
}

/** Where this instance's events arrive: `<prefix>.events.`, or its partition's copies of them. */
function decodeSubjects(names: BusNames): DecodeSubjects {
  const events = `${names.prefix}.events.`;
  return {
    notifications: names.notificationsSubject,
    eventPrefixes: [events],
    ...(names.partition && {
      partitioned: { kept: `${names.prefix}.partition.`, published: events },
    }),
  };
}
