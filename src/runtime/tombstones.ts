import type { FinalStateName } from '../../machines/states.js';
import { createFinalFilter, type FinalFilter } from './final-filter.js';
import type { Intake } from './intake.js';
import type { RejectFacts } from './records.js';

/** What is kept of a final call, so late commands are refused with its facts. */
export interface Tombstone extends RejectFacts {
  readonly state: FinalStateName;
  /** The messages the call took in, so a redelivered one is recognised. */
  readonly intake: Intake;
}

export interface TombstonesOptions {
  readonly now: () => number;
  /** How long a final call is remembered whole (default: for ever). */
  readonly memoryMs?: number | undefined;
  /**
   * How long a store keeps final calls (default: no store). For that long a
   * 32-bit hash of the id is remembered, so a late event for a call that left
   * memory can be told apart from one for a call never seen.
   */
  readonly storedMs?: number | undefined;
}

/**
 * Final calls: remembered whole for a while (about 600 bytes each), then
 * only as a hash of their id (about 35 bytes) for as long as the store keeps
 * them. A whole tombstone answers a late command at once; a hash says the
 * store may have the call, which the host then reads.
 */
export class Tombstones {
  readonly #now: () => number;
  readonly #memoryMs: number;
  /** Whole tombstones with the time they were made, oldest first. */
  readonly #whole = new Map<string, { readonly tombstone: Tombstone; readonly at: number }>();
  readonly #hashes: FinalFilter | undefined;

  constructor(options: TombstonesOptions) {
    this.#now = options.now;
    this.#memoryMs = options.memoryMs ?? Number.POSITIVE_INFINITY;
    this.#hashes =
      options.storedMs === undefined
        ? undefined
        : createFinalFilter({ retentionMs: options.storedMs, now: options.now });
  }

  remember(callId: string, tombstone: Tombstone): void {
    this.#forgetOld();
    this.#whole.delete(callId);
    this.#whole.set(callId, { tombstone, at: this.#now() });
    this.#hashes?.add(callId);
  }

  /** A final call that a store keeps, known here only by its hash from now on. */
  rememberStored(callId: string): void {
    this.#hashes?.add(callId);
  }

  /** The tombstone with `update` applied, if the call is remembered whole. */
  update(callId: string, update: (tombstone: Tombstone) => Tombstone): Tombstone | undefined {
    const entry = this.#whole.get(callId);
    if (!entry) return undefined;
    const tombstone = update(entry.tombstone);
    this.#whole.set(callId, { tombstone, at: entry.at });
    return tombstone;
  }

  get(callId: string): Tombstone | undefined {
    this.#forgetOld();
    return this.#whole.get(callId)?.tombstone;
  }

  /** Whether the call may be final and kept by the store (never wrong when it says no). */
  mayBeStored(callId: string): boolean {
    return this.#hashes?.mightHold(callId) ?? false;
  }

  clear(): void {
    this.#whole.clear();
  }

  #forgetOld(): void {
    const before = this.#now() - this.#memoryMs;
    for (const [callId, { at }] of this.#whole) {
      if (at > before) return;
      this.#whole.delete(callId);
    }
  }
}
