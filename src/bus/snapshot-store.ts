import { StorageType } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CallEnvelope } from '../contract/events.js';
import type { PersistedCall } from '../runtime/call-runtime.js';

/**
 * One call as kept in the KV bucket: its snapshot and the last stream
 * sequence applied to it; or, before its `call.incoming` arrived, the events
 * held for it.
 */
export type StoredCall =
  | { readonly seq: number; readonly snapshot: PersistedCall }
  | { readonly seq: number; readonly held: readonly CallEnvelope[] };

type Value = { readonly snapshot: PersistedCall } | { readonly held: readonly CallEnvelope[] };

interface KeyState {
  revision: number | undefined;
  seq: number;
  writing: boolean;
  pending:
    | { value: Value; waiters: Array<{ resolve(): void; reject(e: unknown): void }> }
    | undefined;
}

/**
 * Call snapshots in a JetStream KV bucket, one key per call. Every write is a
 * compare-and-set on the key's revision, so two instances can never both
 * own a call. Writes to one key are serialised and coalesced: changes made in
 * the same turn of the event loop, or while the key is being written, are
 * folded into one write, and each change's promise resolves when a write
 * containing it is stored.
 */
export interface SnapshotStore {
  /** Every stored call, for restoring on start. */
  loadAll(): Promise<Map<string, StoredCall>>;
  /** The last stream sequence applied to a call, if any. */
  lastSeq(callId: string): number | undefined;
  /** Store the call's snapshot; `seq` is the message that caused it, if any. */
  save(callId: string, snapshot: PersistedCall, seq?: number): Promise<void>;
  /** Store the events held for a call not seen yet. */
  saveHeld(callId: string, held: readonly CallEnvelope[], seq: number): Promise<void>;
}

export async function openSnapshotStore(
  nc: NatsConnection,
  options: { bucket: string; retentionMs: number },
): Promise<SnapshotStore> {
  const kv: KV = await new Kvm(nc).create(options.bucket, {
    history: 1,
    ttl: options.retentionMs,
    storage: StorageType.File,
  });
  const keys = new Map<string, KeyState>();
  const encoder = new TextEncoder();

  const state = (callId: string) => {
    let s = keys.get(callId);
    if (!s) {
      s = { revision: undefined, seq: 0, writing: false, pending: undefined };
      keys.set(callId, s);
    }
    return s;
  };

  async function write(callId: string, s: KeyState, value: Value): Promise<void> {
    const data = encoder.encode(JSON.stringify({ seq: s.seq, ...value }));
    s.revision =
      s.revision === undefined
        ? await kv.create(callId, data)
        : await kv.update(callId, data, s.revision);
  }

  async function drain(callId: string, s: KeyState): Promise<void> {
    let last: Value | undefined;
    while (s.pending) {
      const { value, waiters } = s.pending;
      s.pending = undefined;
      try {
        await write(callId, s, value);
        last = value;
        for (const w of waiters) w.resolve();
      } catch (error) {
        for (const w of waiters) w.reject(error);
      }
    }
    s.writing = false;
    // A final call is never written again: keep nothing of it in memory.
    if (last && 'snapshot' in last && last.snapshot.status === 'done') keys.delete(callId);
  }

  function enqueue(callId: string, value: Value, seq: number | undefined): Promise<void> {
    const s = state(callId);
    if (seq !== undefined && seq > s.seq) s.seq = seq;
    return new Promise<void>((resolve, reject) => {
      if (s.pending) s.pending = { value, waiters: [...s.pending.waiters, { resolve, reject }] };
      else s.pending = { value, waiters: [{ resolve, reject }] };
      if (!s.writing) {
        s.writing = true;
        // Wait for the rest of this batch of messages: a call's incoming and
        // its reject often arrive together, and then make one write.
        setImmediate(() => void drain(callId, s));
      }
    });
  }

  return {
    async loadAll() {
      const found = new Map<string, StoredCall>();
      const names: string[] = [];
      for await (const key of await kv.keys()) names.push(key);
      const batch = 256;
      for (let i = 0; i < names.length; i += batch) {
        const entries = await Promise.all(names.slice(i, i + batch).map((key) => kv.get(key)));
        for (const entry of entries) {
          if (entry?.operation !== 'PUT') continue;
          const stored = entry.json<StoredCall>();
          found.set(entry.key, stored);
          keys.set(entry.key, {
            revision: entry.revision,
            seq: stored.seq,
            writing: false,
            pending: undefined,
          });
        }
      }
      return found;
    },
    lastSeq(callId) {
      return keys.get(callId)?.seq;
    },
    save(callId, snapshot, seq) {
      return enqueue(callId, { snapshot }, seq);
    },
    saveHeld(callId, held, seq) {
      return enqueue(callId, { held }, seq);
    },
  };
}
