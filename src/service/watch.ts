import type { ConsumerInfo, JetStreamManager } from '@nats-io/jetstream';
import {
  type BusNames,
  ensureStreamAndConsumer,
  isNotFound,
  type StreamOptions,
} from '../bus/jetstream.js';
import type { Log } from '../log.js';
import type { SnapshotStore } from '../persistence/store.js';
import type { Metrics } from './metrics.js';

export interface BusWatchOptions {
  readonly jsm: JetStreamManager;
  readonly names: BusNames;
  readonly ackWaitMs: number;
  /** How the stream is made again (its replicas and transform), as at start. */
  readonly stream?: StreamOptions;
  /** Repairs only while this instance may act on its calls (it holds their lease). */
  readonly mayAct?: () => boolean;
  readonly store: SnapshotStore;
  /** Started again once a deleted consumer (or its stream) is made again. */
  readonly consumption: { restart(): Promise<void> };
  readonly metrics: Metrics;
  readonly log: Log;
  /** How often the stream, the consumer and the bucket are looked at (default 5 s). */
  readonly intervalMs?: number;
  /** Messages waiting with no progress for this long make the service not ready (default 30 s). */
  readonly stallMs?: number;
}

/** Where the consumer was at the last look, and since when. */
interface Progress {
  readonly delivered: number;
  readonly acked: number;
  readonly since: number;
}

/**
 * Keeps an eye on what the service depends on in JetStream: a deleted
 * stream, consumer or bucket is made again (and said so in the log); while
 * it cannot be, or while messages wait and the consumer makes no progress,
 * the service is not ready (`/readyz` 503), and `problem` says why. Also
 * reports the consumer's lag.
 */
export class BusWatch {
  readonly #o: BusWatchOptions;
  readonly #stallMs: number;
  #timer: NodeJS.Timeout | undefined;
  #progress: Progress | undefined;
  #problem: string | undefined;
  #checking = false;

  constructor(options: BusWatchOptions) {
    this.#o = options;
    this.#stallMs = options.stallMs ?? 30_000;
  }

  /** Why the service is not ready, if it is not. */
  get problem(): string | undefined {
    return this.#problem;
  }

  start(): void {
    this.#timer = setInterval(() => void this.check(), this.#o.intervalMs ?? 5_000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One look: repair what is missing, then judge the consumer's progress. */
  async check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const repaired = (await this.#repairStreamAndConsumer()) && (await this.#repairBucket());
      const info = repaired ? await this.#consumerInfo() : undefined;
      if (info) this.#judge(info);
    } catch (error) {
      this.#fail(`JetStream does not answer (${(error as Error).message})`);
    } finally {
      this.#checking = false;
    }
  }

  async #repairStreamAndConsumer(): Promise<boolean> {
    const { jsm, names } = this.#o;
    const missing =
      (await this.#missing(() => jsm.streams.info(names.stream), 'stream')) ??
      (await this.#missing(() => jsm.consumers.info(names.stream, names.consumer), 'consumer'));
    if (missing === undefined) return true;
    if (this.#o.mayAct && !this.#o.mayAct()) return true;
    this.#o.log.error(
      { [missing]: missing === 'stream' ? names.stream : names.consumer },
      `the ${missing} is gone: making it again`,
    );
    try {
      await ensureStreamAndConsumer(jsm, names, {
        ...this.#o.stream,
        ackWaitMs: this.#o.ackWaitMs,
      });
      await this.#o.consumption.restart();
      this.#o.metrics.repairs.inc({ what: missing });
      return true;
    } catch (error) {
      this.#fail(`the ${missing} is gone and cannot be made again (${(error as Error).message})`);
      return false;
    }
  }

  async #repairBucket(): Promise<boolean> {
    try {
      if (await this.#o.store.ensure()) {
        this.#o.log.error({ bucket: this.#o.names.bucket }, 'the bucket was gone: made it again');
        this.#o.metrics.repairs.inc({ what: 'bucket' });
      }
      return true;
    } catch (error) {
      this.#fail(`the bucket is gone and cannot be made again (${(error as Error).message})`);
      return false;
    }
  }

  /** `what` when `look` says it does not exist. */
  async #missing(look: () => Promise<unknown>, what: 'stream' | 'consumer') {
    try {
      await look();
      return undefined;
    } catch (error) {
      if (isNotFound(error)) return what;
      throw error;
    }
  }

  async #consumerInfo(): Promise<ConsumerInfo> {
    return this.#o.jsm.consumers.info(this.#o.names.stream, this.#o.names.consumer);
  }

  /** Messages wait and neither delivery nor acknowledgements moved for `stallMs`: stalled. */
  #judge(info: ConsumerInfo): void {
    const waiting = info.num_pending + info.num_ack_pending;
    this.#o.metrics.consumerLag.set(waiting);
    const now = Date.now();
    const delivered = info.delivered.stream_seq;
    const acked = info.ack_floor.stream_seq;
    const last = this.#progress;
    if (!last || waiting === 0 || delivered !== last.delivered || acked !== last.acked) {
      this.#progress = { delivered, acked, since: now };
      this.#ok();
      return;
    }
    if (now - last.since >= this.#stallMs) {
      this.#fail(
        `${waiting} messages wait and the consumer has made no progress for ${now - last.since} ms`,
      );
    }
  }

  #ok(): void {
    if (this.#problem !== undefined) this.#o.log.info({ was: this.#problem }, 'ready again');
    this.#problem = undefined;
  }

  #fail(problem: string): void {
    if (this.#problem !== problem) this.#o.log.error({ problem }, 'not ready');
    this.#problem = problem;
  }
}
