import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutbox } from '../../src/bus/outbox.js';
import { openSnapshotStore } from '../../src/persistence/nats-store.js';
import type { CallSource, SnapshotStore } from '../../src/persistence/store.js';
import type { PersistedCall, StoredForm } from '../../src/runtime/call-runtime.js';
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

/** What the runtime would hand the store: each call as it is now, with the reads counted. */
class Source implements CallSource {
  readonly calls = new Map<string, StoredForm>();
  reads = 0;

  storedFormOf(callId: string): StoredForm | undefined {
    this.reads++;
    return this.calls.get(callId);
  }

  /** The call as it is now, and the stream sequences of the messages it has taken in. */
  set(callId: string, value: unknown, seqs: number[] = []): void {
    this.calls.set(callId, { snapshot: snapshot(value), intake: { floor: 0, seqs } });
  }
}

async function open(bucket = `calls-${++bucketNo}`, mayWrite?: () => boolean) {
  const source = new Source();
  const outbox = createOutbox(() => {});
  const store = await openSnapshotStore(nc, {
    bucket,
    retentionMs: 60_000,
    source,
    defer: (send) => outbox.defer(send),
    ...(mayWrite && { mayWrite }),
  });
  stores.push(store);
  return { store, bucket, source };
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
  it('stores a snapshot with the stream sequence that caused it and the machine version, and loads it back', async () => {
    const { store, bucket, source } = await open();
    source.set('call-a', 'ringing', [5, 7]);
    const first = outcome();
    store.save('call-a', { done: first.done });
    expect(await first.result).toBeUndefined();

    const entry = await (await new Kvm(nc).open(bucket)).get('call-a');
    expect(entry?.json()).toEqual({
      v: 1,
      seq: 7,
      applied: [5, 7],
      snapshot: snapshot('ringing'),
      writtenAt: expect.any(Number),
    });

    const { store: again } = await open(bucket);
    const loaded = await again.loadAll();
    expect([...loaded.keys()]).toEqual(['call-a']);
    expect(loaded.get('call-a')).toEqual({
      ok: true,
      call: {
        snapshot: snapshot('ringing'),
        intake: { floor: 0, seqs: [5, 7] },
        writtenAt: expect.any(Number),
      },
    });
  });

  it('reads a snapshot stored before versions as version 1, and refuses one of another version', async () => {
    const { bucket } = await open();
    const kv = await new Kvm(nc).open(bucket);
    await kv.put('call-old', JSON.stringify({ seq: 3, snapshot: snapshot('ringing') }));
    await kv.put('call-new', JSON.stringify({ v: 2, seq: 4, snapshot: snapshot('ringing') }));
    const { store } = await open(bucket);
    const loaded = await store.loadAll();
    expect(loaded.get('call-old')).toEqual({
      ok: true,
      // Before stored intakes, every message up to seq counted as taken in.
      call: { snapshot: snapshot('ringing'), intake: { floor: 3, seqs: [] } },
    });
    expect(loaded.get('call-new')).toMatchObject({
      ok: false,
      error:
        'the snapshot was stored by machine version 2; this service runs version 1 and does not restore it',
    });
  });

  it('folds changes made in one turn into one write of the newest snapshot, read when sent', async () => {
    const { store, bucket, source } = await open();
    const kv = await new Kvm(nc).open(bucket);
    const a = outcome();
    const b = outcome();
    source.set('call-b', 'ringing', [3]);
    store.save('call-b', { done: a.done });
    source.set('call-b', 'rejecting', [3, 4]);
    store.save('call-b', { done: b.done });
    expect(source.reads).toBe(0);
    expect([await a.result, await b.result]).toEqual([undefined, undefined]);

    expect(source.reads).toBe(1);
    const entry = await kv.get('call-b');
    expect(entry?.revision).toBeDefined();
    expect(entry?.json()).toEqual({
      v: 1,
      seq: 4,
      applied: [3, 4],
      snapshot: snapshot('rejecting'),
      writtenAt: expect.any(Number),
    });
    // One write: the key's only revision is the bucket's first message.
    const status = await kv.status();
    expect(status.values).toBe(1);
  });

  it('keeps writes to one key in order, each a compare-and-set on the previous revision, the last one final', async () => {
    const { store, bucket, source } = await open();
    const kv = await new Kvm(nc).open(bucket);
    const first = outcome();
    source.set('call-c', 'ringing', [1]);
    store.save('call-c', { done: first.done });
    await first.result;
    const second = outcome();
    source.set('call-c', 'rejecting', [1, 2]);
    store.save('call-c', { done: second.done });
    expect(await second.result).toBeUndefined();
    const third = outcome();
    source.calls.delete('call-c');
    const intake = { floor: 0, seqs: [1, 2, 3] };
    store.save('call-c', {
      final: { final: snapshot('rejected', 'done'), intake },
      done: third.done,
    });
    expect(await third.result).toBeUndefined();
    expect((await kv.get('call-c'))?.json()).toEqual({
      v: 1,
      seq: 3,
      applied: [1, 2, 3],
      snapshot: snapshot('rejected', 'done'),
      writtenAt: expect.any(Number),
    });
  });

  it('refuses to overwrite a key someone else changed, naming why', async () => {
    const { store, bucket, source } = await open();
    const kv = await new Kvm(nc).open(bucket);
    const first = outcome();
    source.set('call-d', 'ringing');
    store.save('call-d', { done: first.done });
    await first.result;
    await kv.put('call-d', JSON.stringify({ seq: 9, snapshot: snapshot('answered', 'done') }));

    const second = outcome();
    source.set('call-d', 'rejecting');
    store.save('call-d', { done: second.done });
    const error = await second.result;
    expect(error?.message).toMatch(
      /KV write of call-d refused: the key was changed by someone else/,
    );
    expect((await kv.get('call-d'))?.json()).toMatchObject({ seq: 9 });
  });

  it('fails a write when JetStream does not answer, and settles', async () => {
    const { store, bucket, source } = await open();
    await (await jetstreamManager(nc)).streams.delete(`KV_${bucket}`);
    const write = outcome();
    source.set('call-e', 'ringing');
    store.save('call-e', { done: write.done });
    expect((await write.result)?.message).toMatch(/JetStream did not answer the KV write/);
    await store.settled();
  });

  it('tells when what is queued for a key is stored, and writes again after a failed write', async () => {
    const { store, bucket, source } = await open();
    const kv = await new Kvm(nc).open(bucket);

    const nothing = outcome();
    store.whenStored('call-h', nothing.done);
    expect(await nothing.result).toBeUndefined();

    const write = outcome();
    const waited = outcome();
    let storedFirst = false;
    source.set('call-h', 'ringing');
    store.save('call-h', {
      done: (error) => {
        storedFirst = true;
        write.done(error);
      },
    });
    store.whenStored('call-h', (error) => {
      expect(storedFirst).toBe(true);
      waited.done(error);
    });
    expect([await write.result, await waited.result]).toEqual([undefined, undefined]);

    // Someone else changes the key: the next write fails, and so does a
    // later wait, because it writes again instead of taking the failure as stored.
    await kv.put('call-h', JSON.stringify({ seq: 9, snapshot: snapshot('answered', 'done') }));
    const failed = outcome();
    source.set('call-h', 'rejecting');
    store.save('call-h', { done: failed.done });
    expect((await failed.result)?.message).toMatch(/changed by someone else/);
    const reads = source.reads;
    const again = outcome();
    store.whenStored('call-h', again.done);
    expect((await again.result)?.message).toMatch(/changed by someone else/);
    expect(source.reads).toBe(reads + 1);
  });

  it('stores events held for a call not seen yet', async () => {
    const { store, bucket, source } = await open();
    const held = [
      {
        type: 'call.reject',
        callId: 'call-f',
        at: '2026-01-01T00:00:00.000Z',
        reason: 'busy',
      },
    ] as const;
    source.calls.set('call-f', { held: held as never, intake: { floor: 0, seqs: [5] } });
    const write = outcome();
    store.save('call-f', { done: write.done });
    expect(await write.result).toBeUndefined();
    const { store: again } = await open(bucket);
    expect((await again.loadAll()).get('call-f')).toEqual({
      ok: true,
      call: { held, intake: { floor: 0, seqs: [5] }, writtenAt: expect.any(Number) },
    });
  });

  it('marks a value whose records no message caused, and keeps the publication mark', async () => {
    const { store, bucket, source } = await open();
    const kv = await new Kvm(nc).open(bucket);
    const at = new Date(0).toISOString();
    const rejecting = { callId: 'call-g', state: 'rejecting', previous: 'ringing', at } as const;
    const rejected = { callId: 'call-g', state: 'rejected', previous: 'rejecting', at } as const;
    const prompted = outcome();
    source.set('call-g', 'rejecting', [1]);
    store.save('call-g', { records: [rejecting], prompted: true, done: prompted.done });
    expect(await prompted.result).toBeUndefined();
    expect((await kv.get('call-g'))?.json()).not.toHaveProperty('unprompted');

    const unprompted = outcome();
    source.set('call-g', 'rejected', [1]);
    store.save('call-g', { records: [rejected], prompted: false, done: unprompted.done });
    expect(await unprompted.result).toBeUndefined();
    expect((await kv.get('call-g'))?.json()).toMatchObject({
      records: [rejected],
      unprompted: true,
    });

    expect(await store.publishedMark()).toBe(0);
    expect(store.oldestUnpublished()).toBeUndefined();
    await store.markPublished(1_234);
    const { store: again } = await open(bucket);
    expect(await again.publishedMark()).toBe(1_234);
    // The mark is no call.
    expect([...(await again.loadAll()).keys()]).toEqual(['call-g']);
  });

  it('drops a write whose call is no longer known, with an error, instead of writing nothing', async () => {
    const { store } = await open();
    const write = outcome();
    store.save('call-g', { done: write.done });
    expect((await write.result)?.message).toMatch(/call-g is no longer known/);
    await store.settled();
  });
});

describe('a store whose instance no longer owns its calls', () => {
  it('writes nothing while it may not: the write fails (and is retried by its caller), the mark is refused', async () => {
    let owner = false;
    const { store, bucket, source } = await open(undefined, () => owner);
    source.set('call-f', 'ringing', [1]);
    const refused = outcome();
    store.save('call-f', { done: refused.done });
    expect((await refused.result)?.message).toBe('this instance does not own the call now');
    await expect(store.markPublished(5)).rejects.toThrow('does not own');
    const kv = await new Kvm(nc).open(bucket);
    expect(await kv.get('call-f')).toBeNull();

    owner = true;
    const stored = outcome();
    store.save('call-f', { done: stored.done });
    expect(await stored.result).toBeUndefined();
    expect((await kv.get('call-f'))?.operation).toBe('PUT');
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
