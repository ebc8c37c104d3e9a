import { StorageType } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import {
  createInbox,
  headers,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import type { CallEnvelope } from '../contract/events.js';
import type { PersistedCall } from '../runtime/call-runtime.js';
import { createOutbox, type Outbox } from './outbox.js';

/**
 * One call as kept in the KV bucket: its snapshot and the last stream
 * sequence applied to it; or, before its `call.incoming` arrived, the events
 * held for it.
 */
export type StoredCall =
  | { readonly seq: number; readonly snapshot: PersistedCall }
  | { readonly seq: number; readonly held: readonly CallEnvelope[] };

type Value = { readonly snapshot: PersistedCall } | { readonly held: readonly CallEnvelope[] };

/** Called once a write containing the change is stored, or with the reason it was not. */
export type Stored = (error?: Error) => void;

interface KeyState {
  /** The key's revision as last stored by this instance; `undefined` before the first write. */
  revision: number | undefined;
  /** A write timed out: it may have been stored, so the revision is read again first. */
  stale: boolean;
  seq: number;
  writing: boolean;
  queued: boolean;
  pending: { read: () => Value | undefined; waiters: Stored[] } | undefined;
  /** The write on its way to the server, if any. */
  current: InFlight | undefined;
  /** The last write failed: what is in memory may be newer than what is stored. */
  failed: boolean;
  /** How to read the key's value again, for a write after a failed one. */
  lastRead: (() => Value | undefined) | undefined;
}

/** A key with nothing queued or in flight. */
function idleKey(revision: number | undefined, seq: number): KeyState {
  return {
    revision,
    stale: false,
    seq,
    writing: false,
    queued: false,
    pending: undefined,
    current: undefined,
    failed: false,
    lastRead: undefined,
  };
}

interface InFlight {
  readonly callId: string;
  readonly state: KeyState;
  readonly value: Value;
  readonly waiters: Stored[];
  readonly sentAt: number;
}

/**
 * Call snapshots in a JetStream KV bucket, one key per call. Every write is a
 * compare-and-set on the key's revision, so two instances can never both
 * own a call. Writes to one key are serialised and coalesced: changes made in
 * the same turn of the event loop, or while the key is being written, are
 * folded into one write, and each change's callback runs when a write
 * containing it is stored.
 */
export interface SnapshotStore {
  /** Every stored call, for restoring on start. */
  loadAll(): Promise<Map<string, StoredCall>>;
  /** One call as stored now, read from the bucket (for a call not in memory). */
  lookup(callId: string): Promise<StoredCall | undefined>;
  /** The last stream sequence applied to a call, if any. */
  lastSeq(callId: string): number | undefined;
  /**
   * Store the call's snapshot, read by `read` when the write is sent (so
   * several changes make one write); `seq` is the message that caused it, if any.
   */
  save(
    callId: string,
    read: () => PersistedCall | undefined,
    seq: number | undefined,
    done?: Stored,
  ): void;
  /** Store the events held for a call not seen yet. */
  saveHeld(callId: string, held: readonly CallEnvelope[], seq: number, done?: Stored): void;
  /**
   * Call `done` once what is queued or in flight for the key is stored (at
   * once when nothing is; after writing the key again when its last write
   * failed). For a redelivered message whose changes were already made.
   */
  whenStored(callId: string, done: Stored): void;
  /** Writes queued or in flight. */
  readonly pendingWrites: number;
  /** Resolves once no write is queued or in flight (failed ones included). */
  settled(): Promise<void>;
  /** Stop listening for write acknowledgements; writes still in flight fail. */
  close(): void;
}

export interface SnapshotStoreOptions {
  readonly bucket: string;
  readonly retentionMs: number;
  /** Batches this store's writes with the host's other sends; one of its own otherwise. */
  readonly outbox?: Outbox;
  /** A write not acknowledged within this time fails (default 5 s). */
  readonly writeTimeoutMs?: number;
  /**
   * Put before each call id in the bucket's keys (a partition's `p<n>.`), so
   * that an instance loads only its own calls. Default none.
   */
  readonly keyPrefix?: string;
}

/** JetStream's error code for a compare-and-set on a stale revision. */
const WRONG_LAST_SEQUENCE = 10071;

/**
 * Writes go out as plain publishes to the bucket's subject with the
 * `Nats-Expected-Last-Subject-Sequence` header (what `kv.update` sends), and
 * the stream's acknowledgements come back on one wildcard inbox. Measured on
 * the e2e benchmark, `kv.update` spent about 50 µs a write in the client's
 * request machinery (a timer and an Error with a stack trace per request); this
 * path spends a few, and lets a batch of writes leave in one socket write.
 * Reading, watching and creating the bucket use `@nats-io/kv`.
 */
export async function openSnapshotStore(
  nc: NatsConnection,
  options: SnapshotStoreOptions,
): Promise<SnapshotStore> {
  const kv: KV = await new Kvm(nc).create(options.bucket, {
    history: 1,
    ttl: options.retentionMs,
    storage: StorageType.File,
  });
  const keyPrefix = options.keyPrefix ?? '';
  const subjectPrefix = `$KV.${options.bucket}.${keyPrefix}`;
  const writeTimeoutMs = options.writeTimeoutMs ?? 5_000;
  const outbox = options.outbox ?? createOutbox(() => {});
  const keys = new Map<string, KeyState>();
  const inFlight = new Map<number, InFlight>();
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const inbox = createInbox();
  let nextId = 1;
  let queuedOrInFlight = 0;
  let idleWaiters: Array<() => void> = [];
  let closed = false;

  const replies: Subscription = nc.subscribe(`${inbox}.*`, {
    callback: (error, msg) => {
      if (error) return;
      onReply(msg);
    },
  });

  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [id, write] of inFlight) {
        if (now - write.sentAt < writeTimeoutMs) continue;
        inFlight.delete(id);
        write.state.stale = true;
        finish(
          write,
          new Error(`KV write of ${write.callId} timed out after ${writeTimeoutMs} ms`),
        );
      }
    },
    Math.min(1_000, writeTimeoutMs),
  );
  sweep.unref();

  const state = (callId: string) => {
    let s = keys.get(callId);
    if (!s) {
      s = idleKey(undefined, 0);
      keys.set(callId, s);
    }
    return s;
  };

  function onReply(msg: Msg): void {
    const id = Number(msg.subject.slice(inbox.length + 1));
    const write = inFlight.get(id);
    if (!write) return; // timed out already
    inFlight.delete(id);
    let error: Error | undefined;
    if (msg.headers?.code === 503) error = new Error('JetStream did not answer the KV write');
    else {
      try {
        const ack = JSON.parse(decoder.decode(msg.data)) as {
          seq?: number;
          error?: { err_code?: number; description?: string };
        };
        if (ack.error) {
          const code = ack.error.err_code;
          error = new Error(
            code === WRONG_LAST_SEQUENCE
              ? `KV write of ${write.callId} refused: the key was changed by someone else (${ack.error.description})`
              : `KV write of ${write.callId} refused: ${ack.error.description} (${code})`,
          );
        } else if (typeof ack.seq === 'number') write.state.revision = ack.seq;
        else error = new Error('KV write: unexpected acknowledgement');
      } catch {
        error = new Error('KV write: unreadable acknowledgement');
      }
    }
    finish(write, error);
  }

  /** Report a write's outcome, then start the key's next write if one is waiting. */
  function finish(write: InFlight, error: Error | undefined): void {
    const { state: s, callId } = write;
    s.writing = false;
    s.current = undefined;
    s.failed = error !== undefined;
    // Kept only to write again after a failure.
    if (!s.failed && !s.pending) s.lastRead = undefined;
    for (const done of write.waiters) done(error);
    if (s.pending) {
      // Sent now: this runs while the acknowledgements are read, so the
      // next writes leave in the same socket write as the message acks.
      send(callId, s);
    } else if (!error && 'snapshot' in write.value && write.value.snapshot.status === 'done') {
      // A final call is never written again: keep nothing of it in memory.
      keys.delete(callId);
    }
    released();
  }

  /** One queued write is done with (stored, failed or dropped). */
  function released(): void {
    queuedOrInFlight--;
    if (queuedOrInFlight === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  function send(callId: string, s: KeyState): void {
    const pending = s.pending;
    if (!pending || s.writing) return;
    if (closed) {
      s.pending = undefined;
      for (const done of pending.waiters) done(new Error('the snapshot store is closed'));
      released();
      return;
    }
    if (s.stale) {
      // Learn the key's revision again before writing.
      s.writing = true;
      s.stale = false;
      kv.get(keyPrefix + callId).then(
        (entry) => {
          s.revision = entry ? entry.revision : undefined;
          s.writing = false;
          send(callId, s);
        },
        () => {
          s.writing = false;
          s.stale = true;
          s.pending = undefined;
          for (const done of pending.waiters) {
            done(new Error(`could not read ${callId}'s revision`));
          }
          released();
        },
      );
      return;
    }
    s.pending = undefined;
    const value = pending.read();
    if (value === undefined) {
      for (const done of pending.waiters) done(new Error(`${callId} is no longer known`));
      released();
      return;
    }
    s.writing = true;
    const id = nextId++;
    const write: InFlight = {
      callId,
      state: s,
      value,
      waiters: pending.waiters,
      sentAt: Date.now(),
    };
    inFlight.set(id, write);
    s.current = write;
    const h = headers();
    h.set('Nats-Expected-Last-Subject-Sequence', String(s.revision ?? 0));
    const data = encoder.encode(JSON.stringify({ seq: s.seq, ...value }));
    nc.publish(subjectPrefix + callId, data, { reply: `${inbox}.${id}`, headers: h });
  }

  function enqueue(
    callId: string,
    read: () => Value | undefined,
    seq: number | undefined,
    done?: Stored,
  ): void {
    const s = state(callId);
    if (seq !== undefined && seq > s.seq) s.seq = seq;
    s.lastRead = read;
    if (s.pending) {
      s.pending.read = read;
      if (done) s.pending.waiters.push(done);
    } else {
      s.pending = { read, waiters: done ? [done] : [] };
      queuedOrInFlight++;
    }
    if (!s.writing && !s.queued) {
      s.queued = true;
      // Wait for the rest of this batch of messages: a call's incoming and
      // its reject often arrive together, and then make one write.
      outbox.defer(() => {
        s.queued = false;
        send(callId, s);
      });
    }
  }

  return {
    async loadAll() {
      const found = new Map<string, StoredCall>();
      // One ordered consumer over the bucket (it keeps one value per key)
      // rather than a request per key.
      for await (const entry of await kv.history({ key: `${keyPrefix}>` })) {
        const callId = entry.key.slice(keyPrefix.length);
        // Without a prefix, a key with a dot belongs to a partition (call ids have none).
        if (callId.includes('.')) continue;
        if (entry.operation !== 'PUT') {
          found.delete(callId);
          continue;
        }
        const stored = entry.json<StoredCall>();
        found.set(callId, stored);
        // A final call is never written again: nothing to keep for its key.
        if ('snapshot' in stored && stored.snapshot.status === 'done') continue;
        keys.set(callId, idleKey(entry.revision, stored.seq));
      }
      return found;
    },
    async lookup(callId) {
      const entry = await kv.get(keyPrefix + callId);
      return entry?.operation === 'PUT' ? entry.json<StoredCall>() : undefined;
    },
    lastSeq(callId) {
      return keys.get(callId)?.seq;
    },
    save(callId, read, seq, done) {
      enqueue(
        callId,
        () => {
          const snapshot = read();
          return snapshot && { snapshot };
        },
        seq,
        done,
      );
    },
    saveHeld(callId, held, seq, done) {
      enqueue(callId, () => ({ held }), seq, done);
    },
    whenStored(callId, done) {
      const s = keys.get(callId);
      if (s?.pending) s.pending.waiters.push(done);
      else if (s?.current) s.current.waiters.push(done);
      else if (s?.failed && s.lastRead) enqueue(callId, s.lastRead, undefined, done);
      else done();
    },
    get pendingWrites() {
      return queuedOrInFlight;
    },
    settled() {
      if (queuedOrInFlight === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    close() {
      closed = true;
      clearInterval(sweep);
      replies.unsubscribe();
      for (const [id, write] of inFlight) {
        inFlight.delete(id);
        finish(write, new Error('the snapshot store is closed'));
      }
    },
  };
}
