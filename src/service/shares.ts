import type { Log } from '../log.js';
import { assign } from '../ownership/assign.js';
import type { Leases } from '../ownership/leases.js';
import type { Metrics } from './metrics.js';

/** One partition's service, as the shares need it. */
export interface PartitionService {
  isReady(): boolean;
  problem(): string | undefined;
  /** Hand the calls over: finish what is in flight (up to `graceMs`), store everything, stop. */
  stop(graceMs: number): Promise<void>;
  /** Drop everything at once: another instance owns the calls now. */
  abandon(): Promise<void>;
}

export interface SharesOptions {
  readonly leases: Leases;
  /**
   * Start the service of one partition whose lease this instance holds;
   * `takeover`: it was taken from an instance that is gone.
   */
  readonly start: (partition: number, takeover: boolean) => Promise<PartitionService>;
  /** How long a partition handed over to an instance that joined may finish its requests. */
  readonly handOverMs: number;
  readonly metrics: Metrics;
  readonly log: Log;
  /** Told what this instance owns after each change (the live page). */
  readonly onOwned?: (description: string) => void;
}

type Change = 'acquired' | 'tookOver' | 'handedOver' | 'lost';

/** A partition that could not start is not tried again here for this long. */
const FAILED_START_WAIT_MS = 10_000;

/**
 * This instance's share of the calls among identical replicas: it holds the
 * leases of the partitions the assignment gives it, runs a service for
 * each, and re-plans whenever a member or a lease changes (and at every
 * heartbeat). A partition assigned to another live member is handed over
 * (its service stopped, then its lease given up); one whose lease another
 * member took is dropped at once; one assigned here is taken when it is
 * free, or taken over when its holder's heartbeat has stopped.
 */
export class Shares {
  readonly #o: SharesOptions;
  readonly #running = new Map<number, PartitionService>();
  /** Partitions whose start failed, not tried again before this time (monotonic ms). */
  readonly #failedUntil = new Map<number, number>();
  /** Live calls per running partition: `callgate_live_calls` is their sum. */
  readonly #live = new Map<number, number>();
  #planning: Promise<void> | undefined;
  #again = false;
  /** Plans wait for the first one, made by `start`. */
  #started = false;
  #stopped = false;

  constructor(options: SharesOptions) {
    this.#o = options;
  }

  /**
   * Join: start the leases and take this instance's share. Fails (leaving
   * nothing held) when a partition it takes cannot be started: the stream,
   * a consumer or the bucket cannot be made.
   */
  async start(): Promise<void> {
    try {
      await this.#o.leases.start();
      await this.#planOnce(true);
    } catch (error) {
      await this.stop(0);
      throw error;
    }
    this.#started = true;
    await this.plan();
  }

  /** The partitions this instance runs now, in order. */
  get owned(): number[] {
    return [...this.#running.keys()].sort((a, b) => a - b);
  }

  /** What this instance owns, in words (logs, the live page). */
  get description(): string {
    const { leases } = this.#o;
    const owned = this.owned;
    return `instance ${leases.me}: ${owned.length} of ${leases.count} partitions (${owned.join(', ') || 'none'})`;
  }

  /** Its heartbeat is fresh, it runs every partition assigned to it, and each is ready. */
  isReady(): boolean {
    const { leases } = this.#o;
    if (this.#stopped || !leases.alive) return false;
    const target = assign(leases.count, leases.liveMembers());
    for (const [partition, owner] of target) {
      if (owner === leases.me && !this.#running.has(partition)) return false;
    }
    return [...this.#running.values()].every((service) => service.isReady());
  }

  problem(): string | undefined {
    if (!this.#o.leases.alive) return 'no heartbeat stored lately (NATS unreachable?)';
    for (const service of this.#running.values()) {
      const problem = service.problem();
      if (problem) return problem;
    }
    return undefined;
  }

  /** Where a partition's service reports its live calls. */
  liveCounter(partition: number): (live: number) => void {
    return (live) => {
      this.#live.set(partition, live);
      let sum = 0;
      for (const count of this.#live.values()) sum += count;
      this.#o.metrics.liveCalls.set(sum);
    };
  }

  /** Re-plan now (one plan at a time; a change during a plan plans again after it). */
  plan(): Promise<void> {
    if (this.#stopped || !this.#started) return Promise.resolve();
    // Not behind a plan still starting partitions: a lease held elsewhere is dropped now.
    this.#dropLost();
    if (this.#planning) {
      this.#again = true;
      return this.#planning;
    }
    this.#planning = this.#planOnce(false).finally(() => {
      this.#planning = undefined;
      if (this.#again) {
        this.#again = false;
        void this.plan();
      }
    });
    return this.#planning;
  }

  /**
   * Leave: the others are told first (they plan without this instance but
   * take nothing from it while its heartbeat goes on), then each partition
   * is stopped and its lease given up, and last the heartbeat stops.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopped = true;
    const { leases, log } = this.#o;
    await this.#planning;
    await leases.beginLeaving().catch((error: unknown) => {
      log.warn({ err: error }, 'could not tell the other instances it is leaving');
    });
    await Promise.all(this.owned.map((partition) => this.#handOver(partition, graceMs)));
    await leases.leave().catch((error: unknown) => log.warn({ err: error }, 'could not leave'));
  }

  /** One plan; `strict`: a partition that cannot start fails the plan (at start-up). */
  async #planOnce(strict: boolean): Promise<void> {
    const { leases } = this.#o;
    const target = assign(leases.count, leases.liveMembers());
    const actions: Promise<void>[] = [];
    for (const partition of this.owned) {
      const assigned = target.get(partition);
      if (assigned !== undefined && assigned !== leases.me && leases.isAlive(assigned)) {
        actions.push(this.#handOver(partition, this.#o.handOverMs, assigned));
      }
    }
    for (const [partition, assigned] of target) {
      if (this.#running.has(partition)) continue;
      const owner = leases.ownerOf(partition);
      if (assigned !== leases.me) {
        // A lease whose release failed: given up again.
        if (owner === leases.me) actions.push(leases.release(partition).catch(() => {}));
        continue;
      }
      if ((this.#failedUntil.get(partition) ?? 0) > performance.now()) continue;
      if (owner === undefined || owner === leases.me || !leases.isAlive(owner)) {
        actions.push(this.#take(partition, owner, strict));
      }
    }
    await Promise.all(actions);
    for (const member of leases.longGone()) await leases.forget(member).catch(() => {});
  }

  /** Drop at once every partition whose lease another instance holds now. */
  #dropLost(): void {
    const { leases } = this.#o;
    for (const partition of this.owned) {
      const owner = leases.ownerOf(partition);
      if (owner !== leases.me) void this.#lose(partition, owner);
    }
  }

  async #take(partition: number, holder: string | undefined, strict: boolean): Promise<void> {
    const { leases, log } = this.#o;
    const takeover = holder !== undefined && holder !== leases.me;
    if (holder !== leases.me && !(await leases.acquire(partition))) return;
    try {
      const service = await this.#o.start(partition, takeover);
      if (this.#stopped || leases.ownerOf(partition) !== leases.me) {
        await service.abandon();
        return;
      }
      this.#running.set(partition, service);
      this.#changed(takeover ? 'tookOver' : 'acquired', partition, holder);
      if (takeover && holder) await leases.forget(holder).catch(() => {});
    } catch (error) {
      await leases.release(partition).catch(() => {});
      if (strict) throw error;
      this.#failedUntil.set(partition, performance.now() + FAILED_START_WAIT_MS);
      log.error({ err: error, partition }, 'could not start a partition: its lease is given up');
    }
  }

  async #handOver(partition: number, graceMs: number, to?: string): Promise<void> {
    const service = this.#running.get(partition);
    if (!service) return;
    this.#running.delete(partition);
    await service.stop(graceMs).catch((error: unknown) => {
      this.#o.log.error({ err: error, partition }, 'stopping a partition failed');
    });
    await this.#o.leases.release(partition).catch(() => {});
    this.#changed('handedOver', partition, to);
  }

  async #lose(partition: number, owner: string | undefined): Promise<void> {
    const service = this.#running.get(partition);
    if (!service) return;
    this.#running.delete(partition);
    await service.abandon().catch(() => {});
    this.#changed('lost', partition, owner);
  }

  #changed(change: Change, partition: number, other: string | undefined): void {
    const { metrics, log, leases } = this.#o;
    if (change === 'handedOver' || change === 'lost') this.liveCounter(partition)(0);
    metrics.ownershipChanges.inc({ change });
    metrics.ownedPartitions.set(this.#running.size);
    const why: Record<Change, string> = {
      acquired: 'partition taken: it was free',
      tookOver: 'partition taken over: its holder stopped sending heartbeats',
      handedOver: to(other, 'partition handed over'),
      lost: 'partition lost: another instance holds its lease (this one was cut off or paused)',
    };
    this.#o.onOwned?.(this.description);
    const fields = { partition, instance: leases.me, ...(other && { other }) };
    if (change === 'lost') log.warn(fields, why[change]);
    else log.info(fields, why[change]);
  }
}

function to(other: string | undefined, what: string): string {
  return other ? `${what} to an instance that joined` : `${what}: this instance is stopping`;
}
