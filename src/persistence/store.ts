import type { LifecycleRecord } from '../contract/records.js';
import type { Intake } from '../runtime/intake.js';
import type { PersistedCall, StoredForm } from '../runtime/types.js';

/**
 * One call as the bucket keeps it: its snapshot (or, before its
 * `call.incoming` arrived, the events held for it) and the messages whose
 * effects that holds.
 */
export type StoredCall = StoredForm & {
  /**
   * The lifecycle records of the change(s) this value stores. They go out
   * once it is stored; a crash between the two can lose them, so they are
   * kept with the value and sent again (at least once): when a redelivered
   * message for the call is found applied (the records of the call's last
   * stored value), or at a restart for an unprompted value.
   */
  readonly records?: readonly LifecycleRecord[] | undefined;
  /** When the value was written (epoch ms, the writer's clock). */
  readonly writtenAt?: number | undefined;
  /**
   * No message caused the change(s) it stores (a timer, a request's
   * outcome): nothing comes back to send its records again, so a restart
   * does, when it was written after the last publication mark.
   */
  readonly unprompted?: boolean | undefined;
};

/** What a stored value turned out to be when read. */
export type Loaded =
  | { readonly ok: true; readonly call: StoredCall }
  /** Unusable here: a snapshot of another machine version, or not a stored call at all. */
  | { readonly ok: false; readonly error: string; readonly data: Uint8Array };

/** Where the store reads what to write for a call, when it writes. */
export interface CallSource {
  storedFormOf(callId: string): StoredForm | undefined;
}

/** Called once a write containing the change is stored, or with the reason it was not. */
export type Stored = (error?: Error) => void;

export interface SaveRequest {
  /** A final call's last form, written as it is (the source no longer has the call). */
  readonly final?: { readonly final: PersistedCall; readonly intake: Intake } | undefined;
  /** The change's lifecycle records, kept with the value (see {@link StoredCall}). */
  readonly records?: readonly LifecycleRecord[] | undefined;
  /**
   * A message caused the change (it comes back if the records are lost).
   * Records without it are taken as unprompted: sent again rather than lost.
   */
  readonly prompted?: boolean | undefined;
  readonly done?: Stored | undefined;
}

/**
 * Call snapshots, one key per call, every write a compare-and-set on the
 * key's revision. Writes to one key are serialised and coalesced: changes
 * saved in the same turn of the event loop, or while the key is being
 * written, make one write of what the source holds when it is sent, and each
 * change's `done` runs once a write containing it is stored.
 */
export interface SnapshotStore {
  /** Every stored call, for restoring on start. */
  loadAll(): Promise<Map<string, Loaded>>;
  /** One call as stored now, read from the bucket (for a call not in memory). */
  lookup(callId: string): Promise<Loaded | undefined>;
  save(callId: string, request: SaveRequest): void;
  /** The records of the call's last stored value, while the call is live (loaded ones too). */
  lastRecords(callId: string): readonly LifecycleRecord[];
  /** Delete the call's key: nothing of it is kept any more (events held for it expired). */
  forget(callId: string, done: Stored): void;
  /**
   * Call `done` once what is queued or in flight for the key is stored (at
   * once when nothing is; after writing the key again when its last write
   * failed). For a redelivered message whose changes were already made.
   */
  whenStored(callId: string, done: Stored): void;
  /**
   * Make the bucket again if it is gone (true when it was): the calls in
   * memory are written to it anew at their next change.
   */
  ensure(): Promise<boolean>;
  /**
   * Every record of a value written before `at` has gone out (the caller
   * flushed the connection first): kept in the bucket, so that a restart
   * sends again only the records of values written after it.
   */
  markPublished(at: number): Promise<void>;
  /**
   * The write time of the oldest value no message caused whose records may
   * not be out yet (its write, or the later one carrying them, is not stored).
   */
  oldestUnpublished(): number | undefined;
  /** The last {@link markPublished} time, or 0. */
  publishedMark(): Promise<number>;
  /** Resolves once no write is queued or in flight (failed ones included). */
  settled(): Promise<void>;
  /** Stop writing; writes still queued or in flight fail. */
  close(): void;
}
