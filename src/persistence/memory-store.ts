import type { WriteResult } from './cas-writer.js';
import { decodeCall, encodeCall, isFinalStored } from './codec.js';
import { KeyQueue } from './key-queue.js';
import type { CallSource, Loaded, SnapshotStore, StoredCall } from './store.js';

interface Entry {
  readonly revision: number;
  readonly data: Uint8Array;
}

/**
 * A snapshot store in memory, for unit tests of the pipeline: the same
 * per-key queue as the bucket's store, compare-and-set on a revision per key,
 * and acknowledgements that come back on a later turn, or only when the test
 * says ({@link holdAcks}), or as failures ({@link failWrites}).
 */
export class MemoryStore implements SnapshotStore {
  /** Every write sent, in order. */
  readonly writes: Array<{ readonly callId: string; readonly call: StoredCall | 'erase' }> = [];
  readonly #entries = new Map<string, Entry>();
  readonly #queue: KeyQueue;
  readonly #heldAcks: Array<() => void> = [];
  #revision = 0;
  #holding = false;
  #failing: Error | undefined;

  constructor(source: CallSource) {
    this.#queue = new KeyQueue(
      {
        write: (callId, expected, call, done) => this.#write(callId, expected, call, done),
        revision: async (callId) => this.#entries.get(callId)?.revision,
        defer: (send) => setImmediate(send),
        now: Date.now,
      },
      source,
    );
  }

  /** Put a call in the store as if an earlier run had written it. */
  put(callId: string, call: StoredCall): void {
    this.#entries.set(callId, { revision: ++this.#revision, data: encodeCall(call) });
  }

  /** Put raw text under a key (a value another version of callgate wrote, say). */
  putRaw(callId: string, text: string): void {
    const data = new TextEncoder().encode(text);
    this.#entries.set(callId, { revision: ++this.#revision, data });
  }

  /** The call as stored now, decoded. */
  get(callId: string): Loaded | undefined {
    const entry = this.#entries.get(callId);
    return entry && decodeCall(entry.data);
  }

  /** Keep acknowledgements back until {@link releaseAcks}. */
  holdAcks(): void {
    this.#holding = true;
  }

  releaseAcks(): void {
    this.#holding = false;
    for (const ack of this.#heldAcks.splice(0)) ack();
  }

  /** Fail every write from now on with `error` (`undefined`: succeed again). */
  failWrites(error: Error | undefined): void {
    this.#failing = error;
  }

  async loadAll(): Promise<Map<string, Loaded>> {
    const found = new Map<string, Loaded>();
    for (const [callId, entry] of this.#entries) {
      const loaded = decodeCall(entry.data);
      found.set(callId, loaded);
      if (loaded.ok && !isFinalStored(loaded.call)) {
        this.#queue.known(callId, entry.revision, loaded.call.records);
      }
    }
    return found;
  }

  async lookup(callId: string): Promise<Loaded | undefined> {
    return this.get(callId);
  }

  save: SnapshotStore['save'] = (callId, request) => this.#queue.save(callId, request);
  lastRecords: SnapshotStore['lastRecords'] = (callId) => this.#queue.lastRecords(callId);
  forget: SnapshotStore['forget'] = (callId, done) => this.#queue.forget(callId, done);
  whenStored: SnapshotStore['whenStored'] = (callId, done) => this.#queue.whenStored(callId, done);
  settled = (): Promise<void> => this.#queue.settled();

  async ensure(): Promise<boolean> {
    return false;
  }

  #mark = 0;

  oldestUnpublished(): number | undefined {
    return this.#queue.oldestUnpublished();
  }

  async markPublished(at: number): Promise<void> {
    this.#mark = at;
  }

  async publishedMark(): Promise<number> {
    return this.#mark;
  }

  close(): void {
    this.#queue.close();
  }

  #write(
    callId: string,
    expected: number,
    call: StoredCall | 'erase',
    done: (r: WriteResult) => void,
  ): void {
    this.writes.push({ callId, call });
    const ack = () => {
      const current = this.#entries.get(callId)?.revision ?? 0;
      if (this.#failing) done({ ok: false, error: this.#failing, outcomeUnknown: false });
      else if (current !== expected) {
        const error = new Error(
          `KV write of ${callId} refused: the key was changed by someone else`,
        );
        done({ ok: false, error, outcomeUnknown: false });
      } else if (call === 'erase') {
        this.#entries.delete(callId);
        done({ ok: true, revision: ++this.#revision });
      } else {
        const revision = ++this.#revision;
        this.#entries.set(callId, { revision, data: encodeCall(call) });
        done({ ok: true, revision });
      }
    };
    if (this.#holding) this.#heldAcks.push(ack);
    else setImmediate(ack);
  }
}
