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
  /** When this instance last saw the member's heartbeat change (local clock). */
  readonly seenAt: number;
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
  readonly now?: () => number;
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
  readonly #o: LeasesOptions;
  readonly #members = new Map<string, Member>();
  readonly #leases = new Map<number, Lease>();
  #validUntil = 0;
  /** The last heartbeat stored, until the watch shows it: only then does it extend the fence. */
  #unseenBeat: { readonly revision: number; readonly sentAt: number } | undefined;
  /** The revision of this member's key the watch showed last. */
  #seenOwn = 0;
  #timer: NodeJS.Timeout | undefined;
  #watch: (AsyncIterable<KvWatchEntry> & { stop(): void }) | undefined;
  #stopped = false;

  constructor(options: LeasesOptions) {
    this.#o = options;
    this.me = options.me;
    this.count = options.count;
    this.#kv = options.kv;
    this.#timing = options.timing ?? LEASE_TIMING;
    this.#now = options.now ?? Date.now;
  }

  /** Say this member is alive, read every member and lease, and keep both up to date. */
  async start(): Promise<void> {
    await this.#beat();
    const watch = await this.#kv.watch({ key: '>' });
    this.#watch = watch;
    let synced!: () => void;
    const ready = new Promise<void>((resolve) => {
      synced = resolve;
    });
    void (async () => {
      for await (const entry of watch) {
        this.#seen(entry);
        if (entry.isUpdate || !entry.delta) synced();
        if (entry.isUpdate) this.#o.onChange();
      }
    })().catch((error: unknown) => this.#o.onError(error, 'watching the leases'));
    await ready;
    this.#schedule();
  }

  /** Stop the heartbeat and the watch (the member key stays until `leave`, or others see it go stale). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#watch?.stop();
  }

  /** Tell the others this member is going: its key goes, and they plan without it. */
  async leave(): Promise<void> {
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
    const live = [...this.#members.keys()].filter((id) => id !== this.me && this.isAlive(id));
    return [...live, this.me].sort();
  }

  isAlive(member: string): boolean {
    if (member === this.me) return this.alive;
    const seen = this.#members.get(member);
    return seen !== undefined && this.#now() - seen.seenAt <= this.#timing.deadMs;
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
    this.#leases.delete(partition);
    await this.#kv.delete(this.#leaseKey(partition), { previousSeq: held.revision });
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
        const stored = entry.created.getTime() + CLOCK_MARGIN_MS;
        const seenAt = entry.isUpdate ? now : Math.min(now, stored);
        this.#members.set(id, { revision: entry.revision, seenAt });
      }
      return;
    }
    const prefix = `${LEASE}${this.count}.`;
    if (!entry.key.startsWith(prefix)) return;
    const partition = Number(entry.key.slice(prefix.length));
    if (entry.operation !== 'PUT') this.#leases.delete(partition);
    else {
      const owner = leaseOwner(entry);
      if (owner !== undefined) this.#leases.set(partition, { owner, revision: entry.revision });
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#beat()
        .catch((error: unknown) => this.#o.onError(error, 'the heartbeat'))
        .finally(() => {
          this.#o.onChange();
          this.#schedule();
        });
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
    const revision = await this.#kv.put(`${MEMBER}${this.me}`, JSON.stringify({ at: sentAt }));
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
    this.#validUntil = Math.max(this.#validUntil, beat.sentAt + this.#timing.fenceMs);
  }
}

function leaseOwner(entry: KvWatchEntry): string | undefined {
  try {
    const { owner } = entry.json<{ owner?: unknown }>();
    return typeof owner === 'string' ? owner : undefined;
  } catch {
    return undefined;
  }
}
