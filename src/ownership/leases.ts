import type { KV, KvWatchEntry } from '@nats-io/kv';

/**
 * How often a member says it is alive, how long its own leases stay valid
 * to itself after a heartbeat was sent (the fence), and how long the others
 * wait without a heartbeat before they take its partitions over. The fence
 * is shorter than the wait: an instance stops acting on its calls before
 * any other may start.
 */
export interface LeaseTiming {
  readonly heartbeatMs: number;
  readonly fenceMs: number;
  readonly deadMs: number;
}

export const LEASE_TIMING: LeaseTiming = { heartbeatMs: 250, fenceMs: 1_500, deadMs: 2_000 };

/**
 * A heartbeat first seen in the replay of the bucket (not as it happened)
 * is dated by the time it was stored, plus this margin for clocks that
 * disagree: a member found stale at start-up is taken over without the
 * full wait, a live one is not.
 */
const CLOCK_MARGIN_MS = 250;

const MEMBER = 'member.';
const LEASE = 'lease.';

interface Member {
  readonly revision: number;
  /** When this instance last saw the member's heartbeat change (monotonic clock). */
  readonly seenAt: number;
  /**
   * How many of this instance's own heartbeats it had seen come back when
   * it saw this one (`-Infinity` for one found in the bucket at start-up).
   */
  readonly ownBeatsAt: number;
  /** The member is handing its partitions over: plan without it, but do not take them. */
  readonly leaving: boolean;
}

interface Lease {
  readonly owner: string;
  readonly revision: number;
}

export interface LeasesOptions {
  readonly kv: KV;
  /** This instance's member id (unique per process). */
  readonly me: string;
  /** How many partitions the calls are split into. */
  readonly count: number;
  readonly timing?: LeaseTiming;
  /** A monotonic clock in ms (default `performance.now`): the fence and the waits. */
  readonly now?: () => number;
  /** The wall clock (default `Date.now`): to date heartbeats found in the bucket at start-up. */
  readonly wallNow?: () => number;
  /**
   * True for a member known to be gone without waiting for its heartbeat to
   * age (a process of this host that no longer exists): its partitions are
   * taken over at once. Default: none is.
   */
  readonly isGone?: (member: string) => boolean;
  /** A member or a lease changed: the assignment may have to change. */
  readonly onChange: () => void;
  /** A heartbeat or the watch failed (logged; the heartbeat goes on). */
  readonly onError: (error: unknown, what: string) => void;
}

/**
 * Partition leases in a KV bucket, and the members that hold them. Each
 * member puts `member.<id>` every heartbeat; a partition's lease is
 * `lease.<count>.<partition>` = `{"owner": id}`, taken with a
 * compare-and-set on its revision (so two members never both take it), and
 * given up by deleting it on the revision it was taken with. A lease is
 * valid to its holder while its last heartbeat is younger than the fence;
 * the others take it over only once the holder's heartbeat has not changed
 * for longer than that (`deadMs`). Every member watches the whole bucket,
 * so each sees the same members and leases a moment after they change.
 */
export class Leases {
  readonly me: string;
  readonly count: number;
  readonly #kv: KV;
  readonly #timing: LeaseTiming;
  readonly #now: () => number;
  readonly #wallNow: () => number;
  readonly #o: LeasesOptions;
  readonly #members = new Map<string, Member>();
  readonly #leases = new Map<number, Lease>();
  #validUntil = 0;
  /** The last heartbeat stored, until the watch shows it: only then does it extend the fence. */
  #unseenBeat: { readonly revision: number; readonly sentAt: number } | undefined;
  /** The revision of this member's key the watch showed last. */
  #seenOwn = 0;
  /** This member's heartbeats the watch has shown since it started. */
  #ownBeats = 0;
  #leaving = false;
  #timer: NodeJS.Timeout | undefined;
  #watch: (AsyncIterable<KvWatchEntry> & { stop(): void }) | undefined;
  #stopped = false;

  constructor(options: LeasesOptions) {
    this.#o = options;
    this.me = options.me;
    this.count = options.count;
    this.#kv = options.kv;
    this.#timing = options.timing ?? LEASE_TIMING;
    this.#now = options.now ?? (() => performance.now());
    this.#wallNow = options.wallNow ?? Date.now;
  }

  /** Say this member is alive, read every member and lease, and keep both up to date. */
  async start(): Promise<void> {
    await this.#beat();
    const watch = await this.#kv.watch({ key: '>' });
    this.#watch = watch;
    let synced!: () => void;
    let failed!: (error: unknown) => void;
    const ready = new Promise<void>((resolve, reject) => {
      synced = resolve;
      failed = reject;
    });
    void (async () => {
      for await (const entry of watch) {
        this.#seen(entry);
        if (entry.isUpdate || !entry.delta) synced();
        if (entry.isUpdate) this.#o.onChange();
      }
      throw new Error('the watch of the leases ended');
    })().catch((error: unknown) => {
      if (this.#stopped) return;
      // Blind to the others: stop the heartbeat, so that they take over
      // once its partitions' fence has lapsed here.
      failed(error);
      this.stop();
      this.#o.onError(error, 'watching the leases');
    });
    await ready;
    this.#schedule();
  }

  /** Stop the heartbeat and the watch (the member key stays until `leave`, or others see it go stale). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#watch?.stop();
  }

  /**
   * Tell the others this member is going: they plan without it (and take
   * its partitions as it gives them up), but do not take them over while
   * its heartbeat goes on.
   */
  async beginLeaving(): Promise<void> {
    this.#leaving = true;
    await this.#beat();
  }

  /** The last step of leaving, after every lease is given up: the heartbeat stops and its key goes. */
  async leave(): Promise<void> {
    this.stop();
    await this.#kv.delete(`${MEMBER}${this.me}`);
  }

  /** This member's heartbeat is fresh: it may act on what it holds. */
  get alive(): boolean {
    return this.#now() < this.#validUntil;
  }

  /**
   * Members whose heartbeat is fresh, and always this one: a member that
   * missed its own heartbeats (a pause, a slow server) plans as if it were
   * alive, and acts only while {@link valid} says so.
   */
  liveMembers(): string[] {
    const live = [...this.#members]
      .filter(([id, m]) => id !== this.me && !m.leaving && this.isAlive(id))
      .map(([id]) => id);
    return (this.#leaving ? live : [...live, this.me]).sort();
  }

  /**
   * Whether the member's heartbeat is fresh. One seen change is stale after
   * `deadMs` and only once this member has seen its own heartbeats come back
   * that many times since (`deadMs / heartbeatMs`): a member whose own view
   * was stalled (a pause, a bucket without a leader) does not judge the
   * others dead before it has caught up with their heartbeats.
   */
  isAlive(member: string): boolean {
    if (member === this.me) return this.alive;
    const seen = this.#members.get(member);
    if (seen === undefined || this.#o.isGone?.(member) === true) return false;
    const beats = this.#timing.deadMs / this.#timing.heartbeatMs;
    return (
      this.#now() - seen.seenAt <= this.#timing.deadMs || this.#ownBeats - seen.ownBeatsAt < beats
    );
  }

  /** Members whose heartbeat stopped long ago: their keys can go. */
  longGone(): string[] {
    const gone = this.#timing.deadMs * 10;
    return [...this.#members]
      .filter(([id, m]) => id !== this.me && this.#now() - m.seenAt > gone)
      .map(([id]) => id);
  }

  ownerOf(partition: number): string | undefined {
    return this.#leases.get(partition)?.owner;
  }

  /** This member holds the partition's lease and its heartbeat is fresh. */
  valid(partition: number): boolean {
    return this.alive && this.ownerOf(partition) === this.me;
  }

  /**
   * Take the partition's lease: free, or held by a member that is gone.
   * False when its holder is alive, or another member took it first.
   */
  async acquire(partition: number): Promise<boolean> {
    const key = this.#leaseKey(partition);
    const value = JSON.stringify({ owner: this.me });
    const held = this.#leases.get(partition);
    // Only with a current view of the others (its own heartbeat came back).
    if (!this.alive) return false;
    if (held && held.owner !== this.me && this.isAlive(held.owner)) return false;
    try {
      const revision = held
        ? await this.#kv.update(key, value, held.revision)
        : await this.#kv.create(key, value);
      this.#leases.set(partition, { owner: this.me, revision });
      return true;
    } catch {
      return false;
    }
  }

  /** Give the partition's lease up (only if it is still the one this member took). */
  async release(partition: number): Promise<void> {
    const held = this.#leases.get(partition);
    if (held?.owner !== this.me) return;
    await this.#kv.delete(this.#leaseKey(partition), { previousSeq: held.revision });
    if (this.#leases.get(partition) === held) this.#leases.delete(partition);
  }

  /** Remove a member that is gone (only if it has not come back since). */
  async forget(member: string): Promise<void> {
    const seen = this.#members.get(member);
    if (!seen || member === this.me) return;
    await this.#kv.delete(`${MEMBER}${member}`, { previousSeq: seen.revision });
  }

  #leaseKey(partition: number): string {
    return `${LEASE}${this.count}.${partition}`;
  }

  #seen(entry: KvWatchEntry): void {
    const now = this.#now();
    if (entry.key.startsWith(MEMBER)) {
      const id = entry.key.slice(MEMBER.length);
      if (id === this.me) this.#beatSeen(entry.revision);
      if (entry.operation !== 'PUT') this.#members.delete(id);
      else {
        // Found at start-up: dated by when the server stored it.
        const age = this.#wallNow() - (entry.created.getTime() + CLOCK_MARGIN_MS);
        const seenAt = entry.isUpdate ? now : now - Math.max(0, age);
        const ownBeatsAt = entry.isUpdate ? this.#ownBeats : Number.NEGATIVE_INFINITY;
        this.#members.set(id, {
          revision: entry.revision,
          seenAt,
          ownBeatsAt,
          leaving: fieldsOf(entry).leaving === true,
        });
      }
      return;
    }
    const prefix = `${LEASE}${this.count}.`;
    if (!entry.key.startsWith(prefix)) return;
    const partition = Number(entry.key.slice(prefix.length));
    if (entry.operation !== 'PUT') this.#leases.delete(partition);
    else {
      const { owner } = fieldsOf(entry);
      if (typeof owner === 'string')
        this.#leases.set(partition, { owner, revision: entry.revision });
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      // Its echo through the watch makes the next plan.
      this.#beat()
        .catch((error: unknown) => this.#o.onError(error, 'the heartbeat'))
        .finally(() => this.#schedule());
    }, this.#timing.heartbeatMs);
  }

  /**
   * One heartbeat. It extends the fence (from when it was sent) only once the
   * watch has shown it: every lease change stored before it has then been
   * seen too, so a member that wakes from a pause learns that another took
   * its leases before its heartbeat makes them valid again.
   */
  async #beat(): Promise<void> {
    const sentAt = this.#now();
    const value = JSON.stringify({ at: this.#wallNow(), ...(this.#leaving && { leaving: true }) });
    const revision = await this.#kv.put(`${MEMBER}${this.me}`, value);
    if (this.#unseenBeat === undefined || this.#unseenBeat.revision < revision) {
      this.#unseenBeat = { revision, sentAt };
    }
    // The watch may have shown it before the reply came.
    this.#beatSeen(this.#seenOwn);
  }

  #beatSeen(revision: number): void {
    this.#seenOwn = Math.max(this.#seenOwn, revision);
    const beat = this.#unseenBeat;
    if (beat === undefined || revision < beat.revision) return;
    this.#unseenBeat = undefined;
    this.#ownBeats++;
    this.#validUntil = Math.max(this.#validUntil, beat.sentAt + this.#timing.fenceMs);
  }
}

/** A member's or a lease's fields (none when the value is not JSON). */
function fieldsOf(entry: KvWatchEntry): { readonly leaving?: unknown; readonly owner?: unknown } {
  try {
    return entry.json<object>() ?? {};
  } catch {
    return {};
  }
}
