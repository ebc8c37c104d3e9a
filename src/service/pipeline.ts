import type { CallEnvelope } from '../contract/events.js';
import { LIMITS } from '../contract/limits.js';
import type { LifecycleRecord } from '../contract/records.js';
import type { Log } from '../log.js';
import type { Ownership } from '../ownership/ownership.js';
import { isFinalStored } from '../persistence/codec.js';
import type { SnapshotStore } from '../persistence/store.js';
import type { CallChange, CallRuntime } from '../runtime/call-runtime.js';
import type { Clock } from '../runtime/clock.js';
import { hasTaken } from '../runtime/intake.js';
import { type DecodeSubjects, decodeMessage, publishedSubject, type Unusable } from './decode.js';
import type { InvalidReporter } from './invalid.js';
import { type InboundMessage, MAX_DELIVERIES, MessageAck } from './message-ack.js';
import type { Metrics } from './metrics.js';
import { StoredRecords } from './stored-records.js';

export interface PipelineOptions {
  readonly runtime: CallRuntime<MessageAck>;
  readonly store: SnapshotStore;
  readonly ownership: Ownership;
  readonly subjects: DecodeSubjects;
  /** A message or an event that could not be used. */
  readonly reportInvalid: InvalidReporter;
  /** A lifecycle record whose state is stored: handed to the bus. */
  readonly publish: (record: LifecycleRecord) => void;
  /** Every lifecycle record with its call's deadline (logs, metrics, the live page). */
  readonly observe: (record: LifecycleRecord, deadline: number | undefined) => void;
  readonly metrics: Metrics;
  readonly log: Log;
  /** The first retry of a failed write waits this long (default 1 s), each later one twice as long. */
  readonly retryMs?: number;
  /**
   * A message stored longer ago than this is not applied: the calls it
   * names may have left the bucket (RETENTION_MS after their last write),
   * and must not be decided again (a consumer made anew replays the stream).
   */
  readonly staleAfterMs: number;
  readonly clock: Clock;
  /** Told when records went out (see `PublicationMark`). */
  readonly mark?: { published(): void };
  /**
   * Messages up to this stream sequence count as redelivered whatever
   * JetStream says: the consumer was made again after a crash, and the
   * instance that died may have applied them (and sent a reject).
   */
  readonly redeliveredUpTo?: number;
  /** Told the number of live calls after each change. */
  readonly countLive: (live: number) => void;
  /**
   * An event for a call another partition owns (its id spelled otherwise in
   * the subject): sent on to that partition. Without it, such a message fails.
   */
  readonly forward?: (msg: InboundMessage, envelope: CallEnvelope) => Promise<void>;
}

/**
 * The durable pipeline: decode → order → deliver → persist → ack. Each
 * message's events are delivered to the runtime with the message as their
 * cause; each change the runtime hands back is stored, its records
 * published, and the message acknowledged once every write it caused is
 * stored. A redelivered message already applied is acknowledged once its
 * writes are stored, never applied twice.
 */
export class Pipeline {
  readonly #o: PipelineOptions;
  /** Calls whose events wait for a read of the bucket, in order, by call id. */
  readonly #lookups = new Map<string, Promise<void>>();
  /** Calls the bucket holds in a form this service cannot restore: their events are reported. */
  readonly #unreadable = new Map<string, string>();

  readonly #records: StoredRecords;

  constructor(options: PipelineOptions) {
    this.#o = options;
    this.#records = new StoredRecords({
      store: options.store,
      publish: (record, deadline) => {
        options.publish(record);
        options.observe(record, deadline);
      },
      resend: options.publish,
      metrics: options.metrics,
      log: options.log,
      ...(options.retryMs !== undefined && { retryMs: options.retryMs }),
      ...(options.mark && { mark: options.mark }),
    });
  }

  /** One consumed message. */
  handle(msg: InboundMessage): void {
    this.#o.metrics.messages.inc();
    if (this.#isStale(msg)) {
      this.#o.metrics.stale.inc();
      msg.ack();
      return;
    }
    const ack = new MessageAck(msg, this.#giveUp);
    try {
      const { events, invalid } = decodeMessage(msg, this.#o.subjects);
      for (const bad of invalid) this.#report(msg, bad);
      // Decided for every event first: applying one takes the message into its call.
      const applied = events.map((e) => this.#o.runtime.hasTaken(e.callId, msg.seq));
      for (const [i, envelope] of events.entries()) {
        this.#route(msg, envelope, ack, applied[i] === true);
      }
    } catch (error) {
      this.#o.log.error(
        { err: error, subject: msg.subject, seq: msg.seq },
        'message handling failed',
      );
      ack.fail(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    ack.applied();
  }

  /** The runtime's changes of one step: stored, then their records published. */
  changed(changes: readonly CallChange<MessageAck>[]): void {
    for (const change of changes) {
      const { callId, cause, store, records, deadline } = change;
      const ack = cause.kind === 'event' ? cause.message : undefined;
      if (store === 'nothing') {
        if (records.length > 0) this.#records.afterQueued(callId, records, deadline, ack);
        continue;
      }
      if (store === 'forget') {
        this.#o.store.forget(callId, this.#records.afterWrite(callId, records, deadline, ack));
        continue;
      }
      this.#o.store.save(callId, {
        final: typeof store === 'object' ? store : undefined,
        records,
        prompted: ack !== undefined,
        done: this.#records.afterWrite(callId, records, deadline, ack),
      });
    }
    this.#o.countLive(this.#o.runtime.liveCount);
  }

  /** Records stored before a crash and perhaps never sent: sent again. */
  republish(records: readonly LifecycleRecord[]): void {
    this.#records.republish(records);
  }

  /** Stop retrying failed writes. */
  close(): void {
    this.#records.close();
  }

  /** A call the bucket holds but this service cannot restore (another machine version). */
  unreadable(callId: string, error: string): void {
    this.#unreadable.set(callId, error);
  }

  #route(msg: InboundMessage, envelope: CallEnvelope, ack: MessageAck, applied: boolean): void {
    const { callId } = envelope;
    const unreadable = this.#unreadable.get(callId);
    if (unreadable !== undefined) {
      this.#reportUnreadable(msg, unreadable);
    } else if (!this.#o.ownership.owns(callId)) {
      this.#forward(msg, envelope, ack);
    } else if (applied) {
      this.#alreadyApplied(callId, ack);
    } else if (this.#lookups.has(callId) || this.#o.runtime.knows(callId) === 'maybeStored') {
      this.#deliverAfterLookup(msg, envelope, ack);
    } else this.#deliver(msg, envelope, ack);
  }

  /**
   * A redelivered message the call has taken in: acknowledged once its
   * changes are stored (a failed write is made again), never applied twice.
   * Its records went out after its write was stored, unless the process died
   * in between: the call's last stored records go out again (at least once).
   */
  #alreadyApplied(callId: string, ack: MessageAck): void {
    this.#o.metrics.redelivered.inc();
    this.#records.againAfterQueued(callId, ack);
  }

  /** Another partition's call (its id published in another spelling): sent on to its owner. */
  #forward(msg: InboundMessage, envelope: CallEnvelope, ack: MessageAck): void {
    const { forward } = this.#o;
    if (!forward) {
      ack.fail(new Error(`${envelope.callId} is not this instance's call`));
      return;
    }
    const done = ack.wait();
    forward(msg, envelope).then(
      () => done(),
      (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
    );
  }

  #deliver(msg: InboundMessage, envelope: CallEnvelope, ack: MessageAck): void {
    const redelivered = msg.redelivered || msg.seq <= (this.#o.redeliveredUpTo ?? 0);
    const { delivery } = this.#o.runtime.deliver(envelope, {
      message: ack,
      mark: ack.seq,
      redelivered,
    });
    this.#o.metrics.events.inc({ type: envelope.type, delivery });
    const { callId } = envelope;
    if (envelope.type === 'call.incoming' && delivery === 'applied') {
      // Who calls whom: hashed by the logger unless LOG_PII=1.
      const { tenantId, source, targets } = envelope;
      this.#o.log.info({ callId, tenantId, source, targets }, 'incoming call');
    } else if (delivery === 'duplicate' || delivery === 'ignoredFinal') {
      this.#o.log.debug({ callId, type: envelope.type, delivery }, 'event changed nothing');
    } else if (delivery === 'notHeld') {
      this.#o.reportInvalid(
        publishedSubject(msg.subject, this.#o.subjects),
        msg.data,
        `callId: at most ${LIMITS.heldEvents} events (${LIMITS.heldBytes} bytes of them) are held for a call not seen yet`,
      );
    }
  }

  /**
   * The call may be final in the bucket, its tombstone gone from memory: read
   * it first (a final one comes back as a tombstone), then deliver the event.
   * Later events for the same call wait their turn.
   */
  #deliverAfterLookup(msg: InboundMessage, envelope: CallEnvelope, ack: MessageAck): void {
    const { callId } = envelope;
    const done = ack.wait();
    const previous = this.#lookups.get(callId);
    const run = async () => {
      if (previous) await previous;
      else if (!(await this.#readFinal(callId, ack.seq))) return;
      if (this.#o.runtime.hasTaken(callId, ack.seq)) {
        // Delivered again while it waited its turn, and applied meanwhile.
        this.#alreadyApplied(callId, ack);
        return;
      }
      const unreadable = this.#unreadable.get(callId);
      if (unreadable === undefined) this.#deliver(msg, envelope, ack);
      else this.#reportUnreadable(msg, unreadable);
    };
    const settled = run().then(
      () => done(),
      (error: unknown) => {
        this.#o.log.error({ callId, err: error }, 'could not read the call from the bucket');
        done(error instanceof Error ? error : new Error(String(error)));
      },
    );
    this.#lookups.set(callId, settled);
    void settled.then(() => {
      if (this.#lookups.get(callId) === settled) this.#lookups.delete(callId);
    });
  }

  /** Bring a final call back from the bucket; false when the event needs no delivery. */
  async #readFinal(callId: string, seq: number): Promise<boolean> {
    const stored = await this.#o.store.lookup(callId);
    this.#o.metrics.finalLookups.inc();
    if (!stored) return true;
    if (!stored.ok) {
      this.#o.log.error({ callId, error: stored.error }, 'the stored call cannot be used');
      this.unreadable(callId, stored.error);
      return true;
    }
    const { call } = stored;
    if (hasTaken(call.intake, seq)) {
      // Applied and stored before a crash: its records go out again.
      this.#o.metrics.redelivered.inc();
      this.#records.republish(call.records ?? []);
      return false;
    }
    if (
      'snapshot' in call &&
      isFinalStored(call) &&
      this.#o.runtime.stateOf(callId) === undefined
    ) {
      this.#o.runtime.restore(call.snapshot, { intake: call.intake });
    }
    return true;
  }

  #isStale(msg: InboundMessage): boolean {
    const storedAt = msg.info.timestampNanos / 1e6;
    return this.#o.clock.now() - storedAt > this.#o.staleAfterMs;
  }

  /** A message that failed its last attempt: reported, then terminated. */
  readonly #giveUp = (msg: InboundMessage, error: Error): void => {
    this.#o.metrics.gaveUp.inc();
    const why = `(message): could not be processed in ${MAX_DELIVERIES} attempts; the last failed with: ${error.message}`;
    this.#o.reportInvalid(publishedSubject(msg.subject, this.#o.subjects), msg.data, why);
  };

  #report(msg: InboundMessage, bad: Unusable): void {
    const what = bad.part === undefined ? msg.data : { part: bad.part };
    this.#o.reportInvalid(publishedSubject(msg.subject, this.#o.subjects), what, bad.error);
  }

  #reportUnreadable(msg: InboundMessage, why: string): void {
    this.#o.reportInvalid(
      publishedSubject(msg.subject, this.#o.subjects),
      msg.data,
      `callId: the stored call cannot be used: ${why}`,
    );
  }
}
