import type { LifecycleRecord } from '../contract/records.js';
import type { StoredForm } from '../runtime/types.js';
import type { WriteResult } from './cas-writer.js';
import type { CallSource, SaveRequest, Stored, StoredCall } from './store.js';

/** What the queue needs from the bucket. */
export interface KeyIo {
  /**
   * A compare-and-set write of `call` on revision `expected` (0: the key must
   * not exist); `erase`: delete the key instead.
   */
  write(
    callId: string,
    expected: number,
    call: StoredCall | 'erase',
    done: (result: WriteResult) => void,
  ): void;
  /** The key's revision as stored now. */
  revision(callId: string): Promise<number | undefined>;
  /** Run `send` at the end of this turn of the event loop, with the host's other sends. */
  defer(send: () => void): void;
  /** The time a value is written at (epoch ms). */
  now(): number;
}

/** What a write sends as it is: a final call's last form, or `erase` (the key goes). */
type Fixed = StoredForm | 'erase';

/** Changes waiting for the key's next write. */
interface Next {
  final: Fixed | undefined;
  /** The changes' records, kept with the value written. */
  readonly records: LifecycleRecord[];
  /** A change with records had no message behind it (see {@link StoredCall.unprompted}). */
  unprompted: boolean;
  readonly waiters: Stored[];
}

type Records = readonly LifecycleRecord[];
const NONE: Records = [];
/** The phase of a key with nothing to write: one object for every such key. */
const IDLE = { kind: 'idle' } as const;

/** Where a key is in its life. */
type Phase =
  | { readonly kind: 'idle' }
  /** The last write failed: what is in memory may be newer than what is stored. */
  | { readonly kind: 'failed'; readonly retry: Next }
  /** A write waits for the end of the turn, to fold in the rest of this batch of messages. */
  | { readonly kind: 'queued'; readonly next: Next }
  /** An earlier write's outcome is unknown: the revision is read again before writing. */
  | { readonly kind: 'reading'; readonly next: Next }
  | { readonly kind: 'writing'; readonly current: Next; next: Next | undefined };

interface Key {
  /** The revision this instance last stored; `undefined` before the first write. */
  revision: number | undefined;
  /** Set when a write's outcome is unknown (it may have been stored). */
  stale: boolean;
  phase: Phase;
  /** The records of the last value stored. */
  lastRecords: Records;
}

/**
 * The per-key write queue of the snapshot store: one write in flight per
 * key, changes made meanwhile folded into the next one, and the call read
 * from the source only when its write is sent.
 */
export class KeyQueue {
  readonly #io: KeyIo;
  readonly #source: CallSource;
  readonly #keys = new Map<string, Key>();
  /** Writes queued or in flight. */
  #open = 0;
  #idleWaiters: Array<() => void> = [];
  #closed = false;
  /**
   * Calls with a value no message caused that was sent but whose records are
   * not known to be out (its write, or a later one carrying them, is not
   * stored yet): the write time of the oldest such value.
   */
  readonly #unpublished = new Map<string, number>();

  constructor(io: KeyIo, source: CallSource) {
    this.#io = io;
    this.#source = source;
  }

  /** A key found in the bucket at start, with its revision and the records its value keeps. */
  known(callId: string, revision: number, records: Records = NONE): void {
    this.#keys.set(callId, {
      revision,
      stale: false,
      phase: IDLE,
      lastRecords: records,
    });
  }

  lastRecords(callId: string): Records {
    return this.#keys.get(callId)?.lastRecords ?? NONE;
  }

  save(callId: string, request: SaveRequest): void {
    this.#enqueue(callId, request, 'save');
  }

  /** Delete the key (the call is forgotten); a later save writes it anew. */
  forget(callId: string, done: Stored): void {
    this.#enqueue(callId, { done }, 'erase');
  }

  /** `save`: a change; `erase`: the key goes; `again`: written again as it failed. */
  #enqueue(callId: string, request: SaveRequest, as: 'save' | 'erase' | 'again'): void {
    const key = this.#key(callId);
    const { phase } = key;
    if (phase.kind === 'queued' || phase.kind === 'reading') {
      fold(phase.next, request, as);
      return;
    }
    if (phase.kind === 'writing') {
      if (!phase.next) this.#open++;
      phase.next ??= emptyNext();
      fold(phase.next, request, as);
      return;
    }
    const next = phase.kind === 'failed' ? phase.retry : emptyNext();
    fold(next, request, as);
    this.#queue(callId, key, next);
  }

  /** Every key's revision is unknown (the bucket was made again): each is read before its next write. */
  revisionsUnknown(): void {
    for (const key of this.#keys.values()) key.stale = true;
  }

  whenStored(callId: string, done: Stored): void {
    const phase = this.#keys.get(callId)?.phase;
    if (!phase || phase.kind === 'idle') done();
    // Written again as it failed: an erase stays an erase.
    else if (phase.kind === 'failed') this.#enqueue(callId, { done }, 'again');
    else if (phase.kind === 'writing') (phase.next ?? phase.current).waiters.push(done);
    else phase.next.waiters.push(done);
  }

  /** The write time of the oldest value no message caused whose records may not be out yet. */
  oldestUnpublished(): number | undefined {
    let oldest: number | undefined;
    for (const at of this.#unpublished.values())
      if (oldest === undefined || at < oldest) oldest = at;
    return oldest;
  }

  settled(): Promise<void> {
    if (this.#open === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Writes not sent yet fail from now on. */
  close(): void {
    this.#closed = true;
  }

  #key(callId: string): Key {
    let key = this.#keys.get(callId);
    if (!key) {
      key = { revision: undefined, stale: false, phase: IDLE, lastRecords: NONE };
      this.#keys.set(callId, key);
    }
    return key;
  }

  #queue(callId: string, key: Key, next: Next): void {
    this.#open++;
    key.phase = { kind: 'queued', next };
    // Wait for the rest of this batch of messages: a call's incoming and its
    // reject often arrive together, and then make one write.
    this.#io.defer(() => this.#send(callId, key));
  }

  #send(callId: string, key: Key): void {
    const { phase } = key;
    if (phase.kind !== 'queued') return;
    if (this.#closed) {
      this.#fail(key, phase.next, new Error('the snapshot store is closed'));
    } else if (key.stale) {
      this.#readRevision(callId, key, phase.next);
    } else {
      this.#write(callId, key, phase.next);
    }
  }

  #write(callId: string, key: Key, next: Next): void {
    const { final, records, unprompted } = next;
    const form = final ?? this.#source.storedFormOf(callId);
    if (!form) {
      this.#fail(key, next, new Error(`${callId} is no longer known`));
      return;
    }
    key.phase = { kind: 'writing', current: next, next: undefined };
    if (form === 'erase' && key.revision === undefined) {
      // Never stored: nothing to delete.
      this.#written(callId, key, { ok: true, revision: 0 });
      return;
    }
    const writtenAt = this.#io.now();
    const value =
      form === 'erase'
        ? form
        : {
            ...form,
            writtenAt,
            ...(records.length > 0 && { records }),
            ...(unprompted && { unprompted }),
          };
    if (unprompted && !this.#unpublished.has(callId)) this.#unpublished.set(callId, writtenAt);
    this.#io.write(callId, key.revision ?? 0, value, (result) =>
      this.#written(callId, key, result),
    );
  }

  #readRevision(callId: string, key: Key, next: Next): void {
    key.phase = { kind: 'reading', next };
    this.#io.revision(callId).then(
      (revision) => {
        key.revision = revision;
        key.stale = false;
        key.phase = { kind: 'queued', next };
        this.#send(callId, key);
      },
      () => this.#fail(key, next, new Error(`could not read ${callId}'s revision`)),
    );
  }

  /** Report a write's outcome, then send the key's next write if one is waiting. */
  #written(callId: string, key: Key, result: WriteResult): void {
    const { phase } = key;
    if (phase.kind !== 'writing') return;
    const { current } = phase;
    if (result.ok) {
      key.revision = result.revision;
      // Kept until the key's next write: a copy of exact size, not the journal's growable array.
      key.lastRecords = current.records.length === 0 ? NONE : current.records.slice();
    } else if (result.outcomeUnknown) key.stale = true;
    const error = result.ok ? undefined : result.error;
    for (const done of current.waiters) done(error);
    // Stored: the waiters just published its records and any kept from failed writes.
    if (!error) this.#unpublished.delete(callId);
    if (error && phase.next) carryOver(current, phase.next);
    if (phase.next) {
      // Sent now: this runs while the acknowledgements are read, so the next
      // writes leave in the same socket write as the message acks.
      key.phase = { kind: 'queued', next: phase.next };
      this.#send(callId, key);
    } else if (error) {
      key.phase = { kind: 'failed', retry: { ...current, waiters: [] } };
    } else if (current.final) {
      // A final call is never written again, an erased one is gone: keep nothing of it in memory.
      this.#keys.delete(callId);
    } else key.phase = IDLE;
    this.#released();
  }

  #fail(key: Key, next: Next, error: Error): void {
    key.phase = { kind: 'failed', retry: { ...next, waiters: [] } };
    for (const done of next.waiters) done(error);
    this.#released();
  }

  /** One queued write is done with (stored, failed or dropped). */
  #released(): void {
    this.#open--;
    if (this.#open > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function emptyNext(): Next {
  return { final: undefined, records: [], unprompted: false, waiters: [] };
}

/**
 * A failed write's changes, carried into the write queued behind it: its
 * records first, and its final form unless the call was changed after an
 * erase.
 */
function carryOver(failed: Next, next: Next): void {
  next.records.unshift(...failed.records);
  if (failed.unprompted) next.unprompted = true;
  if (next.final === undefined && failed.final !== 'erase') next.final = failed.final;
}

/**
 * A request folded into the next write: a change brings its final form if it
 * has one, and a call changed again is not erased; an erase erases; a write
 * again keeps what it was.
 */
function fold(next: Next, request: SaveRequest, as: 'save' | 'erase' | 'again'): void {
  if (as === 'erase') next.final = 'erase';
  else if (as === 'save' && request.final) {
    next.final = { snapshot: request.final.final, intake: request.final.intake };
  } else if (as === 'save' && next.final === 'erase') next.final = undefined;
  if (request.records && request.records.length > 0) {
    next.records.push(...request.records);
    // No message comes back to send them again (see StoredCall.unprompted).
    if (request.prompted !== true) next.unprompted = true;
  }
  if (request.done) next.waiters.push(request.done);
}
