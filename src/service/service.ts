import { type ConsumerMessages, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { isFinalState } from '../../machines/states.js';
import {
  type BusNames,
  busNames,
  ensureStreamAndConsumer,
  type Partitioning,
  partitionSubject,
} from '../bus/jetstream.js';
import { createOutbox } from '../bus/outbox.js';
import { partitionOf } from '../bus/partition.js';
import {
  openSnapshotStore,
  type SnapshotStore,
  type Stored,
  type StoredCall,
} from '../bus/snapshot-store.js';
import { canonicalCallId } from '../contract/call-id.js';
import { type CallEnvelope, parseEnvelopeText } from '../contract/events.js';
import { translateNotificationsText } from '../contract/graph-notifications.js';
import type { InvalidRecord, LifecycleRecord } from '../contract/records.js';
import type { Log } from '../log.js';
import {
  type CallRuntime,
  type CallRuntimeOptions,
  createCallRuntime,
  type Delivery,
} from '../runtime/call-runtime.js';
import { type Clock, systemClock } from '../runtime/clock.js';
import type { CallControl } from '../runtime/ports.js';
import { createFinalFilter, type FinalFilter } from './final-filter.js';
import { type MessageWrites, messageWrites } from './message-writes.js';
import type { Metrics } from './metrics.js';

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
  readonly inspect?: CallRuntimeOptions['inspect'];
  /** Passed to the call runtime: one running actor per call for its life (for inspection). */
  readonly keepAwake?: boolean;
  /** Receives every lifecycle record (transitions and refusals) after it is published (the live page). */
  readonly onRecord?: (record: LifecycleRecord) => void;
  /** `PARTITIONS` / `PARTITION`: this instance owns one partition of the calls (default: all). */
  readonly partitions?: Partitioning;
  /**
   * How long a final call stays in memory whole (default 2 minutes, at most
   * `retentionMs`); after that only a hash of its id is kept, and a late event
   * for it reads the call from the bucket.
   */
  readonly tombstoneMemoryMs?: number;
}

export interface Service {
  readonly names: BusNames;
  readonly runtime: CallRuntime;
  /** True once the stream, the consumer and the store are ready and consuming. */
  isReady(): boolean;
  /**
   * Stop consuming, let requests in flight finish (up to `graceMs`), wait for
   * every snapshot write, and stop the runtime. Messages not yet acknowledged
   * are redelivered to the next instance.
   */
  stop(graceMs: number): Promise<void>;
}

const DECODER = new TextDecoder('utf-8', { fatal: true });
const ACK_WAIT_MS = 5_000;
/**
 * Waiting calls that keep a running actor (about 4 KB each): a call's reject
 * usually follows its incoming within a second, and then finds its actor
 * awake instead of restoring it. The rest rest as snapshots of a few hundred bytes.
 */
const IDLE_AWAKE = 2_048;
/** Requests sent again after a restart: at most this many in flight, this many started per turn. */
const RESEND_IN_FLIGHT = 256;
const RESEND_SLICE = 64;
const TOMBSTONE_MEMORY_MS = 120_000;

/**
 * The live service: JetStream in, the call runtime in the middle, lifecycle
 * and invalid records out, every state change stored before the message that
 * caused it is acknowledged.
 */
export async function startService(options: ServiceOptions): Promise<Service> {
  const { nc, log, metrics } = options;
  const clock = options.clock ?? systemClock;
  const names = busNames(options.subjectPrefix, options.notificationsSubject, options.partitions);
  const eventsPrefix = `${names.prefix}.events.`;
  /** Where this instance's events arrive: `<prefix>.events.` and, partitioned, `<index>.`. */
  const ownPrefix = names.partition ? `${eventsPrefix}${names.partition.index}.` : eventsPrefix;
  const jsm = await jetstreamManager(nc);
  // Short: only messages being applied are unacknowledged (held events are
  // stored), so after a crash they come back within seconds.
  await ensureStreamAndConsumer(jsm, names, { ackWaitMs: ACK_WAIT_MS });
  // Records, snapshot writes and acknowledgements made in one turn of the
  // event loop leave together, in as few socket writes as possible.
  const outbox = createOutbox((error) => log.error({ err: error }, 'sending to NATS failed'));
  const store = await openSnapshotStore(nc, {
    bucket: names.bucket,
    retentionMs: options.retentionMs,
    outbox,
    ...(names.partition && { keyPrefix: names.partition.keyPrefix }),
  });
  const encoder = new TextEncoder();
  /** The stream sequence of the message being applied, so its changes carry it. */
  let currentSeq: number | undefined;
  /** The message being applied: acknowledged once every write it caused is stored. */
  let current: MessageWrites | undefined;
  const decidedAt = new Map<string, number>();
  /** Final calls still in the bucket, by a hash of their id. */
  const finals = createFinalFilter({ retentionMs: options.retentionMs });
  /** Calls whose events wait for a read of the bucket, in order, by call id. */
  const lookups = new Map<string, Promise<void>>();
  /** Events held for calls not seen yet, as stored, so a restart keeps them. */
  const heldByCall = new Map<string, CallEnvelope[]>();

  const publish = (subject: string, body: unknown) => {
    nc.publish(subject, encoder.encode(JSON.stringify(body)));
  };
  /** Publish in this turn's batch (records follow the order they were made in). */
  const publishSoon = (subject: string, body: unknown) => {
    outbox.defer(() => publish(subject, body));
  };

  const runtime = createCallRuntime({
    clock,
    windowMs: options.answerTimeoutMs,
    // Whole tombstones only briefly; the final-call filter and the bucket cover the rest.
    retentionMs: Math.min(options.retentionMs, options.tombstoneMemoryMs ?? TOMBSTONE_MEMORY_MS),
    control: options.control,
    log,
    ...(options.inspect && { inspect: options.inspect }),
    ...(options.keepAwake !== undefined && { keepAwake: options.keepAwake }),
    sink: {
      lifecycle(record: LifecycleRecord) {
        publishSoon(`${names.prefix}.lifecycle.${record.callId}`, record);
        observe(record);
        options.onRecord?.(record);
      },
    },
    onChange(callId, read) {
      store.save(callId, read, currentSeq, track(callId));
    },
    idleAwake: IDLE_AWAKE,
  });

  /** A write's callback, counted in so the message being applied is acknowledged only after it. */
  function track(callId: string): Stored {
    const message = current;
    if (message) message.waiting++;
    return (error) => {
      if (error) {
        metrics.persistFailures.inc();
        log.error({ callId, err: error }, 'could not store the call');
      }
      if (message) message.stored(error);
    };
  }

  function observe(record: LifecycleRecord) {
    const { callId } = record;
    if (record.refused) {
      metrics.refused.inc({ type: record.refused.type });
      log.info({ callId, refused: record.refused, state: record.state }, 'command refused');
      return;
    }
    log.info(
      {
        callId,
        state: record.state,
        previous: record.previous,
        attempts: record.attempts,
        error: record.error,
      },
      'call state changed',
    );
    if (record.state === 'rejecting') decidedAt.set(record.callId, clock.now());
    if (isFinalState(record.state)) {
      finals.add(callId);
      metrics.finalCalls.inc({ state: record.state });
      const started = decidedAt.get(record.callId);
      decidedAt.delete(record.callId);
      if (record.state === 'rejected' && started !== undefined) {
        metrics.rejectLatency.observe((clock.now() - started) / 1000);
      }
      if (record.attempts !== undefined) metrics.attempts.observe(record.attempts);
    }
    metrics.liveCalls.set(runtime.liveCount);
  }

  function reportInvalid(subject: string, data: Uint8Array, error: string) {
    metrics.invalid.inc();
    let payload: string;
    try {
      payload = DECODER.decode(data);
    } catch {
      payload = Buffer.from(data).toString('base64');
    }
    const record: InvalidRecord = {
      subject,
      error,
      payload,
      at: new Date(clock.now()).toISOString(),
    };
    publishSoon(`${names.prefix}.invalid`, record);
    log.warn({ subject, error }, 'invalid message');
  }

  function deliver(envelope: CallEnvelope, redelivered: boolean): Delivery {
    const delivery = runtime.deliver(envelope, { redelivered });
    metrics.events.inc({ type: envelope.type, delivery });
    if (delivery === 'held') {
      const held = [...(heldByCall.get(envelope.callId) ?? []), envelope];
      heldByCall.set(envelope.callId, held);
      store.saveHeld(envelope.callId, held, currentSeq ?? 0, track(envelope.callId));
      // The runtime drops them once no window could be open; so does this copy.
      setTimeout(() => {
        if (heldByCall.get(envelope.callId) === held) heldByCall.delete(envelope.callId);
      }, options.answerTimeoutMs + 1_000).unref();
    } else heldByCall.delete(envelope.callId);
    if (envelope.type === 'call.incoming' && delivery === 'applied') {
      // Who calls whom: hashed by the logger unless LOG_PII=1.
      const { callId, tenantId, source, targets } = envelope;
      log.info({ callId, tenantId, source, targets }, 'incoming call');
    }
    if (delivery === 'duplicate' || delivery === 'ignoredFinal') {
      log
        .child({ callId: envelope.callId })
        .debug({ type: envelope.type, delivery }, 'event changed nothing');
    }
    return delivery;
  }

  /** Decode one stream message into events, reporting what cannot be used. */
  function eventsOf(msg: JsMsg): CallEnvelope[] {
    let text: string;
    try {
      text = DECODER.decode(msg.data);
    } catch {
      reportInvalid(msg.subject, msg.data, '(message): must be UTF-8 JSON text');
      return [];
    }
    if (msg.subject === names.notificationsSubject) {
      const at = Number(msg.timestampNanos / 1_000_000n);
      const result = translateNotificationsText(text, at);
      if (!result.ok) {
        reportInvalid(msg.subject, msg.data, result.error);
        return [];
      }
      for (const bad of result.batch.invalid) reportInvalid(msg.subject, msg.data, bad.error);
      return result.batch.events;
    }
    // This instance's events, or (the router) events not partitioned yet.
    const token = msg.subject.startsWith(ownPrefix)
      ? msg.subject.slice(ownPrefix.length)
      : msg.subject.startsWith(eventsPrefix)
        ? msg.subject.slice(eventsPrefix.length)
        : '';
    const subjectId = canonicalCallId(token);
    if (!subjectId.ok) {
      reportInvalid(msg.subject, msg.data, `(subject): the call id token ${subjectId.rule}`);
      return [];
    }
    const parsed = parseEnvelopeText(text);
    if (!parsed.ok) {
      reportInvalid(msg.subject, msg.data, parsed.error);
      return [];
    }
    if (parsed.value.callId !== subjectId.callId) {
      reportInvalid(
        msg.subject,
        msg.data,
        `callId: must name the same call as the subject token "${token}" (got "${parsed.value.callId}")`,
      );
      return [];
    }
    return [parsed.value];
  }

  /** Unknown here, but the bucket may hold it as a final call whose tombstone left memory. */
  function mayBeFinalInBucket(callId: string): boolean {
    // A call with a key in the store is in memory: one lookup settles the
    // usual case before the runtime or the hashes are asked.
    return (
      store.lastSeq(callId) === undefined &&
      runtime.stateOf(callId) === undefined &&
      !heldByCall.has(callId) &&
      finals.mightHold(callId)
    );
  }

  /**
   * Read the call from the bucket (a final one comes back as a tombstone),
   * then deliver the event; later events for the same call wait their turn.
   * The message is acknowledged once this is done and stored.
   */
  function deliverAfterLookup(
    envelope: CallEnvelope,
    seq: number,
    redelivered: boolean,
    message: MessageWrites,
  ): void {
    const { callId } = envelope;
    message.waiting++;
    const previous = lookups.get(callId);
    const run = async () => {
      if (previous) await previous;
      else {
        const stored = await store.lookup(callId);
        metrics.finalLookups.inc();
        if (stored && stored.seq >= seq) {
          metrics.redelivered.inc();
          return;
        }
        if (stored && 'snapshot' in stored && stored.snapshot.status === 'done') {
          if (runtime.stateOf(callId) === undefined) runtime.restore(stored.snapshot);
        }
      }
      current = message;
      currentSeq = seq;
      try {
        deliver(envelope, redelivered);
      } finally {
        current = undefined;
        currentSeq = undefined;
      }
    };
    const done = run().then(
      () => message.stored(),
      (error: unknown) => {
        log.error({ callId, err: error }, 'could not read the call from the bucket');
        message.stored(error instanceof Error ? error : new Error(String(error)));
      },
    );
    lookups.set(callId, done);
    void done.then(() => {
      if (lookups.get(callId) === done) lookups.delete(callId);
    });
  }

  /**
   * Partition 0's router: validate an event published without a partition (or
   * translate a notification batch), and republish each event to its call's
   * partition. One router, publishing in the order it consumes, keeps each
   * call's events in order. The message is acknowledged once every copy is
   * stored; a redelivered one is republished with the same message ids, which
   * the stream's duplicate window drops.
   */
  function routeEvents(msg: JsMsg): void {
    const count = names.partition?.count ?? 1;
    metrics.messages.inc();
    let events: CallEnvelope[];
    try {
      events = eventsOf(msg);
    } catch (error) {
      log.error({ err: error, subject: msg.subject, seq: msg.seq }, 'message routing failed');
      msg.nak(1_000);
      return;
    }
    const fromNotifications = msg.subject === names.notificationsSubject;
    const copies = events.map((envelope, i) =>
      js.publish(
        partitionSubject(names.prefix, partitionOf(envelope.callId, count), envelope.callId),
        fromNotifications ? encoder.encode(JSON.stringify(wireForm(envelope))) : msg.data,
        { msgID: `${names.stream}:${msg.seq}:${i}` },
      ),
    );
    Promise.all(copies).then(
      () => msg.ack(),
      (error: unknown) => {
        log.error({ err: error, subject: msg.subject, seq: msg.seq }, 'could not route a message');
        msg.nak(1_000);
      },
    );
  }

  function handle(msg: JsMsg): void {
    metrics.messages.inc();
    currentSeq = msg.seq;
    const message = messageWrites(msg);
    current = message;
    try {
      const events = eventsOf(msg);
      const { redelivered } = msg;
      // Decided for every event first: applying one advances its call's sequence.
      const applied = events.map((e) => (store.lastSeq(e.callId) ?? -1) >= msg.seq);
      for (const [i, envelope] of events.entries()) {
        const { callId } = envelope;
        if (applied[i]) {
          // Redelivered, and applied already: acknowledged once its changes
          // are stored (a failed write is made again), never applied twice.
          metrics.redelivered.inc();
          store.whenStored(callId, track(callId));
        } else if (lookups.has(callId) || mayBeFinalInBucket(callId)) {
          deliverAfterLookup(envelope, msg.seq, redelivered, message);
        } else deliver(envelope, redelivered);
      }
    } catch (error) {
      log.error({ err: error, subject: msg.subject, seq: msg.seq }, 'message handling failed');
      message.fail();
      return;
    } finally {
      currentSeq = undefined;
      current = undefined;
    }
    message.applied();
  }

  const restored = await restore(store, runtime, heldByCall, finals, log);
  metrics.liveCalls.set(runtime.liveCount);
  log.info({ restored, live: runtime.liveCount }, 'calls restored');

  const js = jetstream(nc);
  const consumer = await js.consumers.get(names.stream, names.consumer);
  const subscriptions: ConsumerMessages[] = [
    await consumer.consume({
      // Small slices: the event loop gets back to Graph's sockets between them.
      max_messages: 64,
      callback: handle,
    }),
  ];
  const router = names.partition?.router;
  if (router) {
    const events = await js.consumers.get(names.stream, router.eventsConsumer);
    subscriptions.push(await events.consume({ max_messages: 64, callback: routeEvents }));
    const batches = await js.consumers.get(names.stream, router.notificationsConsumer);
    subscriptions.push(await batches.consume({ max_messages: 64, callback: routeEvents }));
  }
  let ready = true;
  let stopping = false;
  void resendRecovered();

  /**
   * Send again, earliest deadline first, the requests that were in flight at
   * the last stop, a slice per turn and never more than RESEND_IN_FLIGHT at
   * once. Meanwhile the service is ready and consuming: a call reached by an
   * event or timer first is recovered on the spot. Requests queued behind
   * thousands of others in the HTTP pool would spend their time left in the
   * queue; kept to a bounded number, they spend it at Graph.
   */
  async function resendRecovered(): Promise<void> {
    const started = Date.now();
    let left = runtime.resendDeferred(0);
    if (left === 0) return;
    const total = left;
    while (left > 0 && !stopping) {
      const room = RESEND_IN_FLIGHT - runtime.inFlight;
      if (room > 0) left = runtime.resendDeferred(Math.min(room, RESEND_SLICE));
      await new Promise((resolve) => (room > 0 ? setImmediate(resolve) : setTimeout(resolve, 1)));
    }
    log.info(
      { requests: total, ms: Date.now() - started },
      'requests in flight at the last stop sent again',
    );
  }

  return {
    names,
    runtime,
    isReady: () => ready && !nc.isClosed() && (options.isConnected?.() ?? true),
    async stop(graceMs) {
      ready = false;
      stopping = true;
      await Promise.all(subscriptions.splice(0).map((messages) => messages.close()));
      const until = Date.now() + graceMs;
      while (runtime.inFlight > 0 && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      outbox.flush();
      await store.settled();
      runtime.stop();
      store.close();
    },
  };
}

/**
 * Bring back every stored call: live ones into the runtime, final ones as
 * hashes in the final-call filter, and events held for calls not seen yet
 * held again.
 */
async function restore(
  store: SnapshotStore,
  runtime: CallRuntime,
  heldByCall: Map<string, CallEnvelope[]>,
  finals: FinalFilter,
  log: Log,
): Promise<number> {
  const stored = await store.loadAll();
  for (const [callId, call] of stored) {
    // Final calls stay in the bucket; memory keeps only a hash of their id.
    if ('snapshot' in call && call.snapshot.status === 'done') {
      finals.add(callId);
      stored.delete(callId);
    }
  }
  // Earliest deadline first: requests to send again go out in this order.
  const byDeadline = [...stored].sort(([, a], [, b]) => deadlineOf(a) - deadlineOf(b));
  for (const [callId, call] of byDeadline) {
    try {
      if ('snapshot' in call) runtime.restore(call.snapshot, { deferResend: true });
      else {
        heldByCall.set(callId, [...call.held]);
        for (const envelope of call.held) runtime.deliver(envelope);
      }
    } catch (error) {
      log.error({ callId, err: error }, 'could not restore a stored call');
    }
  }
  return stored.size;
}

/** An event as published on the bus (its time as ISO-8601 text), from its parsed form. */
function wireForm(envelope: CallEnvelope): Record<string, unknown> {
  return { ...envelope, at: new Date(envelope.at).toISOString() };
}

function deadlineOf(call: StoredCall): number {
  return 'snapshot' in call ? call.snapshot.context.deadline : Number.POSITIVE_INFINITY;
}
