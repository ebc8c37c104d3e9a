import type { Log } from '../log.js';
import type { SnapshotStore } from '../persistence/store.js';

/** What the mark needs from the snapshot store. */
export type MarkStore = Pick<SnapshotStore, 'oldestUnpublished' | 'markPublished'>;

/** Marks at most this often (by default). */
export const MARK_GAP_MS = 50;

/**
 * The time before which every value no message caused (a timeout, Graph's
 * answer) has had its records published, kept in the bucket soon after such
 * records go out: the connection is flushed first (records are published,
 * in the write's callback, before anything sent after them), and the mark
 * stays before the oldest such value whose records may not be out yet (its
 * write, or the later one carrying them, is not stored). A restart sends
 * again the records of those values written after the mark, and only
 * those: a record lost to a crash between its write and its publication is
 * not lost, and the rest are not sent twice.
 */
export class PublicationMark {
  readonly #flush: () => Promise<void>;
  readonly #store: MarkStore;
  readonly #log: Log;
  #timer: NodeJS.Timeout | undefined;
  #marking: Promise<void> | undefined;
  #lastAt = 0;
  #dirty = false;
  #stopped = false;

  readonly #gapMs: number;

  /** `gapMs`: at most one mark this often (a longer gap only sends more records again after a crash). */
  constructor(flush: () => Promise<void>, store: MarkStore, log: Log, gapMs = MARK_GAP_MS) {
    this.#flush = flush;
    this.#store = store;
    this.#log = log;
    this.#gapMs = gapMs;
  }

  /** Records went out: mark soon (at once unless a mark was made within the gap). */
  published(): void {
    this.#dirty = true;
    if (this.#marking || this.#timer || this.#stopped) return;
    const wait = Math.max(0, this.#lastAt + this.#gapMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#mark();
    }, wait);
    this.#timer.unref();
  }

  /** A last mark: every write stored by now has published its records. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#marking;
    await this.#mark();
  }

  /** No more marks (another instance owns the calls now). */
  abandon(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #mark(): Promise<void> {
    this.#marking ??= this.#markOnce().finally(() => {
      this.#marking = undefined;
      if (this.#dirty) this.published();
    });
    return this.#marking;
  }

  async #markOnce(): Promise<void> {
    this.#dirty = false;
    // Before this millisecond and before the oldest value whose records may
    // not be out: a value written at the mark itself is sent again.
    const now = Date.now();
    const unpublished = this.#store.oldestUnpublished() ?? now;
    const at = Math.min(now, unpublished) - 1;
    this.#lastAt = now;
    try {
      await this.#flush();
      await this.#store.markPublished(at);
    } catch (error) {
      this.#log.debug({ err: error }, 'could not keep the publication mark');
    }
  }
}
