import { type ConsumerMessages, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { isFinalState } from '../../machines/call.machine.js';
import { type BusNames, busNames, ensureStreamAndConsumer } from '../bus/jetstream.js';
import { openSnapshotStore, type SnapshotStore } from '../bus/snapshot-store.js';
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
 * The live service: JetStream in, the call runtime in the middle, lifecycle
 * and invalid records out, every state change stored before the message that
 * caused it is acknowledged.
 */
export async function startService(options: ServiceOptions): Promise<Service> {
  const { nc, log, metrics } = options;
  const clock = options.clock ?? systemClock;
  const names = busNames(options.subjectPrefix, options.notificationsSubject);
  const eventsPrefix = `${names.prefix}.events.`;
  const jsm = await jetstreamManager(nc);
  // Short: only messages being applied are unacknowledged (held events are
  // stored), so after a crash they come back within seconds.
  await ensureStreamAndConsumer(jsm, names, { ackWaitMs: ACK_WAIT_MS });
  const store = await openSnapshotStore(nc, {
    bucket: names.bucket,
    retentionMs: options.retentionMs,
  });
  const encoder = new TextEncoder();
  const pendingWrites = new Set<Promise<void>>();
  /** The stream sequence of the message being applied, so its changes carry it. */
  let currentSeq: number | undefined;
  /** Writes started by the message being applied. */
  let currentWrites: Promise<void>[] = [];
  const decidedAt = new Map<string, number>();
  /** Events held for calls not seen yet, as stored, so a restart keeps them. */
  const heldByCall = new Map<string, CallEnvelope[]>();

  const publish = (subject: string, body: unknown) => {
    nc.publish(subject, encoder.encode(JSON.stringify(body)));
  };

  const runtime = createCallRuntime({
    clock,
    windowMs: options.answerTimeoutMs,
    retentionMs: options.retentionMs,
    control: options.control,
    log,
    ...(options.inspect && { inspect: options.inspect }),
    ...(options.keepAwake !== undefined && { keepAwake: options.keepAwake }),
    sink: {
      lifecycle(record: LifecycleRecord) {
        publish(`${names.prefix}.lifecycle.${record.callId}`, record);
        observe(record);
        options.onRecord?.(record);
      },
    },
    onChange(callId, snapshot) {
      track(store.save(callId, snapshot, currentSeq), callId);
    },
  });

  /** Count a write in, so the message being applied is acknowledged only after it. */
  function track(write: Promise<void>, callId: string): void {
    currentWrites.push(write);
    pendingWrites.add(write);
    write
      .catch((error: unknown) => {
        metrics.persistFailures.inc();
        log.error({ callId, err: error }, 'could not store the call');
      })
      .finally(() => pendingWrites.delete(write));
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
    publish(`${names.prefix}.invalid`, record);
    log.warn({ subject, error }, 'invalid message');
  }

  function deliver(envelope: CallEnvelope): Delivery {
    const delivery = runtime.deliver(envelope);
    metrics.events.inc({ type: envelope.type, delivery });
    if (delivery === 'held') {
      const held = [...(heldByCall.get(envelope.callId) ?? []), envelope];
      heldByCall.set(envelope.callId, held);
      track(store.saveHeld(envelope.callId, held, currentSeq ?? 0), envelope.callId);
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
    const token = msg.subject.startsWith(eventsPrefix)
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

  function handle(msg: JsMsg): void {
    metrics.messages.inc();
    currentSeq = msg.seq;
    currentWrites = [];
    try {
      const events = eventsOf(msg);
      // A redelivered message whose effects were stored already is not applied again.
      const fresh = events.filter((e) => (store.lastSeq(e.callId) ?? -1) < msg.seq);
      if (fresh.length < events.length) metrics.redelivered.inc(events.length - fresh.length);
      for (const envelope of fresh) deliver(envelope);
    } catch (error) {
      log.error({ err: error, subject: msg.subject, seq: msg.seq }, 'message handling failed');
      msg.nak(1_000);
      return;
    } finally {
      currentSeq = undefined;
    }
    const writes = currentWrites;
    currentWrites = [];
    if (writes.length === 0) {
      msg.ack();
      return;
    }
    Promise.all(writes).then(
      () => msg.ack(),
      () => msg.nak(1_000),
    );
  }

  const restored = await restore(store, runtime, heldByCall, log);
  metrics.liveCalls.set(runtime.liveCount);
  log.info({ restored, live: runtime.liveCount }, 'calls restored');

  const consumer = await jetstream(nc).consumers.get(names.stream, names.consumer);
  let messages: ConsumerMessages | undefined = await consumer.consume({
    // Small slices: the event loop gets back to Graph's sockets between them.
    max_messages: 64,
    callback: handle,
  });
  let ready = true;

  return {
    names,
    runtime,
    isReady: () => ready && !nc.isClosed() && (options.isConnected?.() ?? true),
    async stop(graceMs) {
      ready = false;
      await messages?.close();
      messages = undefined;
      const until = Date.now() + graceMs;
      while (runtime.inFlight > 0 && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await Promise.allSettled([...pendingWrites]);
      runtime.stop();
    },
  };
}

/**
 * Bring back every stored call: live ones into the runtime, final ones as
 * tombstones, and events held for calls not seen yet held again.
 */
async function restore(
  store: SnapshotStore,
  runtime: CallRuntime,
  heldByCall: Map<string, CallEnvelope[]>,
  log: Log,
): Promise<number> {
  const stored = await store.loadAll();
  for (const [callId, call] of stored) {
    try {
      if ('snapshot' in call) runtime.restore(call.snapshot);
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
