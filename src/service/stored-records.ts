import type { LifecycleRecord } from '../contract/records.js';
import type { Log } from '../log.js';
import type { SnapshotStore, Stored } from '../persistence/store.js';
import type { MessageAck } from './message-ack.js';
import type { Metrics } from './metrics.js';

export interface StoredRecordsOptions {
  readonly store: SnapshotStore;
  /** A record whose state is stored, with its call's deadline: published (and observed). */
  readonly publish: (record: LifecycleRecord, deadline: number | undefined) => void;
  /** A record published before, perhaps lost to a crash: published again (not observed again). */
  readonly resend: (record: LifecycleRecord) => void;
  readonly metrics: Metrics;
  readonly log: Log;
  /** The first retry of a failed write waits this long, each later one twice as long (up to 30 s). */
  readonly retryMs?: number;
  /** Told when records no message caused went out (see `PublicationMark`). */
  readonly mark?: { published(): void };
}

const MAX_RETRY_MS = 30_000;

interface Waiting {
  readonly records: LifecycleRecord[];
  deadline: number | undefined;
  retryMs: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Records go out only once the state they report is stored, so a call has
 * one final state, ever: a record is never published for a state a crash
 * could lose. When a write fails, its records wait, in order, ahead of any
 * later ones for the call; the call is written again after a back-off until
 * a write succeeds, and then they go out. A message that caused a change is
 * acknowledged only once its write is stored.
 */
export class StoredRecords {
  readonly #o: StoredRecordsOptions;
  /** Calls whose records wait for a write that failed. */
  readonly #waiting = new Map<string, Waiting>();

  constructor(options: StoredRecordsOptions) {
    this.#o = options;
  }

  /** What to call when the write of a change ends: publish its records, or keep them for the retry. */
  afterWrite(
    callId: string,
    records: readonly LifecycleRecord[],
    deadline: number | undefined,
    ack: MessageAck | undefined,
  ): Stored {
    const done = ack?.wait();
    return (error) => {
      if (error) this.#failed(callId, records, deadline, error);
      else this.#publish(callId, records, deadline, ack === undefined);
      done?.(error);
    };
  }

  /** Records of a change that stores nothing (a refusal): out once what is queued for the call is stored. */
  afterQueued(
    callId: string,
    records: readonly LifecycleRecord[],
    deadline: number | undefined,
    ack: MessageAck | undefined,
  ): void {
    this.#o.store.whenStored(callId, this.afterWrite(callId, records, deadline, ack));
  }

  /**
   * A redelivered message found applied: once what is queued for its call is
   * stored, the records of the call's last stored value go out again (the
   * process may have died before they did), then it is acknowledged.
   */
  againAfterQueued(callId: string, ack: MessageAck): void {
    const done = ack.wait();
    this.#o.store.whenStored(callId, (error) => {
      if (error) this.#failed(callId, [], undefined, error);
      // The write just stored carried the records kept from failed writes: they go out.
      else if (this.#waiting.has(callId)) this.#publish(callId, [], undefined, false);
      else this.republish(this.#o.store.lastRecords(callId));
      done(error);
    });
  }

  /** Records stored before, published again (at least once). */
  republish(records: readonly LifecycleRecord[]): void {
    for (const record of records) this.#o.resend(record);
    if (records.length > 0) this.#o.mark?.published();
  }

  /** Stop retrying (the service stops); records still waiting are not published. */
  close(): void {
    for (const waiting of this.#waiting.values()) clearTimeout(waiting.timer);
    this.#waiting.clear();
    this.#o.metrics.unstoredCalls.set(0);
  }

  /** `unprompted`: no message caused the change, so nothing but the mark covers its records. */
  #publish(
    callId: string,
    records: readonly LifecycleRecord[],
    deadline: number | undefined,
    unprompted: boolean,
  ): void {
    const waiting = this.#waiting.get(callId);
    if (waiting) {
      this.#waiting.delete(callId);
      clearTimeout(waiting.timer);
      this.#o.metrics.unstoredCalls.set(this.#waiting.size);
      for (const record of waiting.records) this.#o.publish(record, waiting.deadline);
    }
    for (const record of records) this.#o.publish(record, deadline);
    if ((unprompted && records.length > 0) || waiting) this.#o.mark?.published();
  }

  #failed(
    callId: string,
    records: readonly LifecycleRecord[],
    deadline: number | undefined,
    error: Error,
  ): void {
    this.#o.metrics.persistFailures.inc();
    this.#o.log.error({ callId, err: error }, 'could not store the call; it is written again');
    let waiting = this.#waiting.get(callId);
    if (!waiting) {
      waiting = { records: [], deadline, retryMs: this.#o.retryMs ?? 1_000, timer: undefined };
      this.#waiting.set(callId, waiting);
      this.#o.metrics.unstoredCalls.set(this.#waiting.size);
    }
    waiting.records.push(...records);
    waiting.deadline ??= deadline;
    if (!waiting.timer) this.#retry(callId, waiting);
  }

  #retry(callId: string, waiting: Waiting): void {
    waiting.timer = setTimeout(() => {
      waiting.timer = undefined;
      waiting.retryMs = Math.min(MAX_RETRY_MS, waiting.retryMs * 2);
      if (this.#waiting.get(callId) !== waiting) return;
      this.#o.store.whenStored(callId, this.afterWrite(callId, [], undefined, undefined));
    }, waiting.retryMs);
    waiting.timer.unref();
  }
}
