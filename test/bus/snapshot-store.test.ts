import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutbox } from '../../src/bus/outbox.js';
import { openSnapshotStore, type SnapshotStore } from '../../src/bus/snapshot-store.js';
import type { PersistedCall } from '../../src/runtime/call-runtime.js';
import { type NatsServer, startNatsServer } from '../support/nats-server.js';

/** The snapshot store against a real nats-server: writes, coalescing, compare-and-set, loading. */

let server: NatsServer;
let nc: NatsConnection;
let bucketNo = 0;
const stores: SnapshotStore[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  for (const store of stores) store.close();
  await nc?.close();
  await server?.dispose();
});

async function open(bucket = `calls-${++bucketNo}`) {
  const store = await openSnapshotStore(nc, { bucket, retentionMs: 60_000 });
  stores.push(store);
  return { store, bucket };
}

function snapshot(value: unknown, status: 'active' | 'done' = 'active'): PersistedCall {
  return {
    status,
    value,
    output: undefined,
    error: undefined,
    context: { callId: 'c1' },
  } as unknown as PersistedCall;
}

/** Wait for a write's callback; resolves with its error, if any. */
function outcome(): { done: (error?: Error) => void; result: Promise<Error | undefined> } {
  let done: (error?: Error) => void = () => {};
  const result = new Promise<Error | undefined>((resolve) => {
    done = resolve;
  });
  return { done, result };
}

describe('snapshot store', () => {
  it('stores a snapshot with the stream sequence that caused it, and loads it back', async () => {
    const { store, bucket } = await open();
    const first = outcome();
    store.save('call-a', () => snapshot('ringing'), 7, first.done);
    expect(await first.result).toBeUndefined();

    const entry = await (await new Kvm(nc).open(bucket)).get('call-a');
    expect(entry?.json()).toEqual({ seq: 7, snapshot: snapshot('ringing') });
    expect(store.lastSeq('call-a')).toBe(7);

    const { store: again } = await open(bucket);
    const loaded = await again.loadAll();
    expect([...loaded.keys()]).toEqual(['call-a']);
    expect(loaded.get('call-a')).toEqual({ seq: 7, snapshot: snapshot('ringing') });
    expect(again.lastSeq('call-a')).toBe(7);
  });

  it('folds changes made in one turn into one write of the newest snapshot, read when sent', async () => {
    const { store, bucket } = await open();
    const kv = await new Kvm(nc).open(bucket);
    let reads = 0;
    let state = 'ringing';
    const read = () => {
      reads++;
      return snapshot(state);
    };
    const a = outcome();
    const b = outcome();
    store.save('call-b', read, 3, a.done);
    state = 'rejecting';
    store.save('call-b', read, 4, b.done);
    expect(store.pendingWrites).toBe(1);
    expect([await a.result, await b.result]).toEqual([undefined, undefined]);

    expect(reads).toBe(1);
    const entry = await kv.get('call-b');
    expect(entry?.revision).toBeDefined();
    expect(entry?.json()).toEqual({ seq: 4, snapshot: snapshot('rejecting') });
    // One write: the key's only revision is the bucket's first message.
    const status = await kv.status();
    expect(status.values).toBe(1);
  });

  it('keeps writes to one key in order, each a compare-and-set on the previous revision', async () => {
    const { store, bucket } = await open();
    const kv = await new Kvm(nc).open(bucket);
    const first = outcome();
    store.save('call-c', () => snapshot('ringing'), 1, first.done);
    await first.result;
    const second = outcome();
    store.save('call-c', () => snapshot('rejecting'), 2, second.done);
    expect(await second.result).toBeUndefined();
    const third = outcome();
    store.save('call-c', () => snapshot('rejected', 'done'), 3, third.done);
    expect(await third.result).toBeUndefined();
    expect((await kv.get('call-c'))?.json()).toEqual({
      seq: 3,
      snapshot: snapshot('rejected', 'done'),
    });
  });

  it('refuses to overwrite a key someone else changed, naming why', async () => {
    const { store, bucket } = await open();
    const kv = await new Kvm(nc).open(bucket);
    const first = outcome();
    store.save('call-d', () => snapshot('ringing'), 1, first.done);
    await first.result;
    await kv.put('call-d', JSON.stringify({ seq: 9, snapshot: snapshot('answered', 'done') }));

    const second = outcome();
    store.save('call-d', () => snapshot('rejecting'), 2, second.done);
    const error = await second.result;
    expect(error?.message).toMatch(
      /KV write of call-d refused: the key was changed by someone else/,
    );
    expect((await kv.get('call-d'))?.json()).toMatchObject({ seq: 9 });
  });

  it('fails a write when JetStream does not answer, and settles', async () => {
    const { store, bucket } = await open();
    await (await jetstreamManager(nc)).streams.delete(`KV_${bucket}`);
    const write = outcome();
    store.save('call-e', () => snapshot('ringing'), 1, write.done);
    expect((await write.result)?.message).toMatch(/JetStream did not answer the KV write/);
    await store.settled();
    expect(store.pendingWrites).toBe(0);
  });

  it('tells when what is queued for a key is stored, and writes again after a failed write', async () => {
    const { store, bucket } = await open();
    const kv = await new Kvm(nc).open(bucket);

    const nothing = outcome();
    store.whenStored('call-h', nothing.done);
    expect(await nothing.result).toBeUndefined();

    const write = outcome();
    const waited = outcome();
    let storedFirst = false;
    store.save(
      'call-h',
      () => snapshot('ringing'),
      1,
      (error) => {
        storedFirst = true;
        write.done(error);
      },
    );
    store.whenStored('call-h', (error) => {
      expect(storedFirst).toBe(true);
      waited.done(error);
    });
    expect([await write.result, await waited.result]).toEqual([undefined, undefined]);

    // Someone else changes the key: the next write fails, and so does a
    // later wait, because it writes again instead of taking the failure as stored.
    await kv.put('call-h', JSON.stringify({ seq: 9, snapshot: snapshot('answered', 'done') }));
    const failed = outcome();
    store.save('call-h', () => snapshot('rejecting'), 2, failed.done);
    expect((await failed.result)?.message).toMatch(/changed by someone else/);
    const again = outcome();
    store.whenStored('call-h', again.done);
    expect(store.pendingWrites).toBe(1);
    expect((await again.result)?.message).toMatch(/changed by someone else/);
  });

  it('stores events held for a call not seen yet', async () => {
    const { store, bucket } = await open();
    const held = [
      {
        type: 'call.reject',
        callId: 'call-f',
        at: '2026-01-01T00:00:00.000Z',
        reason: 'busy',
      },
    ] as const;
    const write = outcome();
    store.saveHeld('call-f', held as never, 5, write.done);
    expect(await write.result).toBeUndefined();
    const { store: again } = await open(bucket);
    expect((await again.loadAll()).get('call-f')).toEqual({ seq: 5, held });
  });

  it('drops a write whose call is no longer known, with an error, instead of writing nothing', async () => {
    const { store } = await open();
    const write = outcome();
    store.save('call-g', () => undefined, 1, write.done);
    expect((await write.result)?.message).toMatch(/call-g is no longer known/);
    expect(store.pendingWrites).toBe(0);
  });
});

describe('outbox', () => {
  it('runs what was deferred in one turn together, in order, once', async () => {
    const ran: string[] = [];
    const errors: unknown[] = [];
    const outbox = createOutbox((error) => errors.push(error));
    outbox.defer(() => ran.push('a'));
    outbox.defer(() => {
      throw new Error('boom');
    });
    outbox.defer(() => {
      ran.push('b');
      outbox.defer(() => ran.push('next turn'));
    });
    expect(ran).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual(['a', 'b']);
    expect(errors).toHaveLength(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual(['a', 'b', 'next turn']);
  });
});
