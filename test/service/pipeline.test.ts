import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { RejectRequest } from '../../machines/types.js';
import { LIMITS } from '../../src/contract/limits.js';
import type { LifecycleRecord } from '../../src/contract/records.js';
import { ownsAll } from '../../src/ownership/ownership.js';
import { MemoryStore } from '../../src/persistence/memory-store.js';
import { createCallRuntime } from '../../src/runtime/call-runtime.js';
import type { InboundMessage, MessageAck } from '../../src/service/message-ack.js';
import { createMetrics } from '../../src/service/metrics.js';
import { Pipeline } from '../../src/service/pipeline.js';
import { persistedCall } from '../support/persisted-call.js';

/**
 * The message pipeline against the in-memory store, with no nats-server:
 * messages are acknowledged only once what they changed is stored, a
 * redelivered message is never applied twice, and one call's events apply
 * in the order they came.
 */

const T0 = Date.parse('2026-11-27T09:00:00.000Z');
const WINDOW_MS = 15_000;
const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';

interface Fake extends InboundMessage {
  readonly acks: string[];
}

let seq = 0;
function message(
  body: unknown,
  options: { seq?: number; redelivered?: boolean; storedAt?: number } = {},
): Fake {
  const acks: string[] = [];
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const callId = (body as { callId?: string }).callId ?? 'x';
  return {
    subject: `call.events.${callId}`,
    data: new TextEncoder().encode(text),
    seq: options.seq ?? ++seq,
    redelivered: options.redelivered ?? false,
    info: {
      deliveryCount: options.redelivered ? 2 : 1,
      timestampNanos: (options.storedAt ?? T0) * 1e6,
    },
    acks,
    ack: () => acks.push('ack'),
    nak: (ms?: number) => acks.push(`nak ${ms}`),
    term: (reason?: string) => acks.push(`term ${reason}`),
  };
}

const at = (ms = 0) => new Date(T0 + ms).toISOString();
const incoming = (callId: string, ms = 0) => ({ type: 'call.incoming', callId, at: at(ms) });
const reject = (callId: string, ms = 100) => ({
  type: 'call.reject',
  callId,
  at: at(ms),
  reason: 'busy',
});
const answered = (callId: string) => ({ type: 'call.answered', callId, at: at(50) });

/** Let the store's acknowledgements and the runtime's outcomes come in. */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

function setup(options: { tombstoneMemoryMs?: number; graphAnswers?: boolean } = {}) {
  const clock = new SimulatedClock();
  clock.set(T0);
  const requests: RejectRequest[] = [];
  const answer = { status: 202, maybeDelivered: false };
  const published: LifecycleRecord[] = [];
  const invalid: string[] = [];
  const metrics = createMetrics();
  const runtime = createCallRuntime<MessageAck>({
    clock,
    windowMs: WINDOW_MS,
    control: {
      reject: (request) => {
        requests.push(request);
        // Graph answers, or (graphAnswers: false) the request stays in flight.
        return options.graphAnswers === false ? new Promise(() => {}) : Promise.resolve(answer);
      },
    },
    storedMs: 3_600_000,
    ...(options.tombstoneMemoryMs !== undefined && {
      tombstoneMemoryMs: options.tombstoneMemoryMs,
    }),
    onChanges: (changes) => pipeline.changed(changes),
  });
  const store = new MemoryStore(runtime);
  const pipeline = new Pipeline({
    runtime,
    store,
    ownership: ownsAll(),
    subjects: { notifications: 'graph.notifications', eventPrefixes: ['call.events.'] },
    reportInvalid: (_subject, _data, error) => invalid.push(error),
    publish: (record) => published.push(record),
    observe: () => {},
    countLive: () => {},
    metrics,
    log: pino({ level: 'silent' }),
    retryMs: 20,
    clock,
    staleAfterMs: 3_600_000 - WINDOW_MS,
  });
  return { clock, runtime, store, pipeline, requests, published, invalid, metrics };
}

describe('the pipeline: ack only after store', () => {
  it('acknowledges a message only once the change it caused is stored, with its sequence', async () => {
    const { store, pipeline } = setup();
    store.holdAcks();
    const msg = message(incoming(A), { seq: 41 });
    pipeline.handle(msg);
    await turns();
    expect(msg.acks).toEqual([]);
    expect(store.get(A)).toBeUndefined();

    store.releaseAcks();
    await turns();
    expect(msg.acks).toEqual(['ack']);
    expect(store.get(A)).toMatchObject({
      ok: true,
      call: { snapshot: { value: 'ringing' }, intake: { floor: 0, seqs: [41] } },
    });
  });

  it('sends a message back (nak after a second) when its write fails', async () => {
    const { store, pipeline } = setup();
    store.failWrites(new Error('the bucket is gone'));
    const msg = message(incoming(A));
    pipeline.handle(msg);
    await turns();
    expect(msg.acks).toEqual(['nak 1000']);
  });

  it('stores the events held for a call not seen yet before acknowledging them', async () => {
    const { store, pipeline } = setup();
    store.holdAcks();
    const msg = message(reject(A));
    pipeline.handle(msg);
    await turns();
    expect(msg.acks).toEqual([]);
    store.releaseAcks();
    await turns();
    expect(msg.acks).toEqual(['ack']);
    expect(store.get(A)).toMatchObject({
      ok: true,
      call: { held: [{ type: 'call.reject', callId: A }] },
    });
  });

  it('acknowledges at once a message that changes nothing, and an invalid one after reporting it', async () => {
    const { store, pipeline, invalid } = setup();
    const bad = message('{"type": "call.incoming"');
    pipeline.handle(bad);
    expect(bad.acks).toEqual(['ack']);
    expect(invalid).toEqual([expect.stringMatching(/^\(message\): must be JSON/)]);
    expect(store.writes).toEqual([]);
  });
});

describe('the pipeline: a record only once its state is stored', () => {
  it('publishes a record once the write of its state is stored, not before', async () => {
    const { store, pipeline, published } = setup();
    store.holdAcks();
    pipeline.handle(message(incoming(A)));
    await turns();
    expect(published).toEqual([]);
    store.releaseAcks();
    await turns();
    expect(published.map((r) => r.state)).toEqual(['ringing']);
  });

  it('keeps the records of a failed write, writes the call again, and publishes them in order once stored', async () => {
    const { store, pipeline, published, metrics } = setup({ graphAnswers: false });
    store.failWrites(new Error('the bucket is away'));
    pipeline.handle(message(incoming(A)));
    pipeline.handle(message(reject(A)));
    await turns();
    expect(published).toEqual([]);
    expect(await metrics.registry.getSingleMetricAsString('callgate_unstored_calls')).toMatch(
      / 1$/m,
    );

    store.failWrites(undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await turns();
    expect(published.map((r) => r.state)).toEqual(['ringing', 'rejecting']);
    expect(store.get(A)).toMatchObject({
      ok: true,
      call: { snapshot: { value: { rejecting: 'sending' } } },
    });
    expect(await metrics.registry.getSingleMetricAsString('callgate_unstored_calls')).toMatch(
      / 0$/m,
    );
  });

  it('publishes a refusal after the records of the writes queued before it', async () => {
    const { store, pipeline, published } = setup({ graphAnswers: false });
    store.holdAcks();
    pipeline.handle(message(incoming(A)));
    pipeline.handle(message(reject(A)));
    await turns();
    pipeline.handle(message(reject(A, 200)));
    await turns();
    expect(published).toEqual([]);
    store.releaseAcks();
    await turns();
    expect(published.map((r) => [r.state, r.refused?.type ?? null])).toEqual([
      ['ringing', null],
      ['rejecting', null],
      ['rejecting', 'call.reject'],
    ]);
  });
});

describe('the pipeline: messages older than the bucket keeps calls', () => {
  it('acknowledges them without applying them: a consumer made anew does not decide old calls again', async () => {
    const { pipeline, published, store } = setup();
    const old = message(incoming(A), { storedAt: T0 - 3_600_000 });
    pipeline.handle(old);
    await turns();
    expect(old.acks).toEqual(['ack']);
    expect(published).toEqual([]);
    expect(store.writes).toEqual([]);
  });
});

describe('the pipeline: events held for a call that never comes', () => {
  it('leaves nothing behind once they expire: the key they were stored under goes too', async () => {
    const { clock, runtime, store, pipeline } = setup();
    pipeline.handle(message(reject(A)));
    await turns();
    expect(store.get(A)).toMatchObject({ ok: true, call: { held: [{ type: 'call.reject' }] } });

    clock.set(T0 + 100 + WINDOW_MS);
    runtime.scheduler.fireDue();
    await turns();
    expect(store.get(A)).toBeUndefined();
    expect(runtime.knows(A)).toBe('unknown');
    expect(store.writes.at(-1)).toEqual({ callId: A, call: 'erase' });
  });

  it(`holds at most ${LIMITS.heldEvents} events for one call and reports the rest`, async () => {
    const { pipeline, invalid, store } = setup();
    for (let i = 0; i < LIMITS.heldEvents + 3; i++) pipeline.handle(message(answered(A)));
    await turns();
    expect(invalid).toHaveLength(3);
    expect(invalid[0]).toMatch(/^callId: at most 64 events/);
    const stored = store.get(A);
    expect(stored?.ok && 'held' in stored.call && stored.call.held).toHaveLength(LIMITS.heldEvents);
  });
});

describe('the pipeline: redelivery', () => {
  it('never applies a redelivered message twice: it is acknowledged once its writes are stored', async () => {
    const { pipeline, requests, published, runtime } = setup({ graphAnswers: false });
    pipeline.handle(message(incoming(A), { seq: 1 }));
    const first = message(reject(A), { seq: 2 });
    pipeline.handle(first);
    await turns();
    expect(first.acks).toEqual(['ack']);
    expect(requests).toHaveLength(1);
    const before = published.length;

    const again = message(reject(A), { seq: 2, redelivered: true });
    pipeline.handle(again);
    await turns();
    expect(again.acks).toEqual(['ack']);
    expect(requests).toHaveLength(1);
    expect(runtime.stateOf(A)).toBe('rejecting');
    // Only the records of the call's last stored value go out again, as
    // they were: nothing new happened to the call.
    expect(published.slice(before)).toEqual(published.slice(0, before));
  });

  it("sends a redelivered message's records again when a crash took them after its write was stored", async () => {
    const { pipeline, store, published, runtime } = setup({ graphAnswers: false });
    // A run before the crash stored the call, with its records, and died before publishing them.
    const ringing = { callId: A, state: 'ringing', previous: null, at: at() } as const;
    store.put(A, {
      snapshot: persistedCall(A, 'ringing', T0 + WINDOW_MS),
      intake: { floor: 0, seqs: [5] },
      records: [ringing],
    });
    await store.loadAll().then((loaded) => {
      const value = loaded.get(A);
      if (value?.ok && 'snapshot' in value.call)
        runtime.restore(value.call.snapshot, { intake: value.call.intake });
    });
    const again = message(incoming(A), { seq: 5, redelivered: true });
    pipeline.handle(again);
    await turns();
    expect(again.acks).toEqual(['ack']);
    expect(published).toEqual([ringing]);
  });

  it('sends the records of the write a redelivered message waited for, never older ones after newer', async () => {
    const { pipeline, store, published, metrics } = setup({ graphAnswers: false });
    pipeline.handle(message(incoming(A), { seq: 1 }));
    await turns();
    store.holdAcks();
    pipeline.handle(message(reject(A), { seq: 2 }));
    await turns();
    // Redelivered while the write it caused is still in flight.
    const again = message(reject(A), { seq: 2, redelivered: true });
    pipeline.handle(again);
    store.releaseAcks();
    await turns();
    expect(again.acks).toEqual(['ack']);
    expect(published.map((r) => r.state)).toEqual(['ringing', 'rejecting', 'rejecting']);
    expect(
      await metrics.registry.getSingleMetricAsString('callgate_redelivered_events_total'),
    ).toMatch(/ 1$/m);
  });

  it('applies a redelivered message that was never applied, counting its first request as possibly sent', async () => {
    const { pipeline, requests, runtime } = setup();
    pipeline.handle(message(incoming(A), { seq: 1 }));
    const msg = message(reject(A), { seq: 2, redelivered: true });
    pipeline.handle(msg);
    await turns();
    expect(msg.acks).toEqual(['ack']);
    expect(requests).toHaveLength(1);
    expect(runtime.stateOf(A)).toBe('rejected');
  });
});

describe('the pipeline: redelivery after a crash, a later message first', () => {
  it("applies an earlier message redelivered after a later one was held: held events do not count as the call's progress", async () => {
    const { pipeline, published, requests, runtime } = setup({ graphAnswers: false });
    // The crashed run never applied seq 10 (incoming) and 11 (reject); seq 12 comes first.
    const later = message(answered(A), { seq: 12 });
    pipeline.handle(later);
    await turns();
    expect(later.acks).toEqual(['ack']);
    expect(runtime.knows(A)).toBe('held');

    const incomingAgain = message(incoming(A), { seq: 10, redelivered: true });
    pipeline.handle(incomingAgain);
    const rejectAgain = message(reject(A), { seq: 11, redelivered: true });
    pipeline.handle(rejectAgain);
    await turns();

    expect([incomingAgain.acks, rejectAgain.acks]).toEqual([['ack'], ['ack']]);
    expect(published.map((r) => [r.state, r.refused?.type ?? null])).toEqual([
      ['ringing', null],
      ['answered', null],
      ['answered', 'call.reject'],
    ]);
    expect(requests).toEqual([]);
    // What changed the call is taken in: another redelivery of it changes nothing.
    const again = message(answered(A), { seq: 12, redelivered: true });
    pipeline.handle(again);
    await turns();
    expect(again.acks).toEqual(['ack']);
    expect(published).toHaveLength(3);
    expect([10, 11, 12].map((seq) => runtime.hasTaken(A, seq))).toEqual([true, false, true]);
  });

  it('judges a redelivered message by the messages the call took in, not by the highest one', async () => {
    const { pipeline, runtime } = setup({ graphAnswers: false });
    pipeline.handle(message(incoming(A), { seq: 20 }));
    pipeline.handle(message(reject(A), { seq: 22 }));
    await turns();
    expect(runtime.hasTaken(A, 20)).toBe(true);
    expect(runtime.hasTaken(A, 21)).toBe(false);
    expect(runtime.hasTaken(A, 22)).toBe(true);
  });
});

describe('the pipeline: per-call order', () => {
  it("applies one call's events in the order they came, also while the first waits for a read of the bucket", async () => {
    const { clock, store, pipeline, published, requests } = setup({ tombstoneMemoryMs: 1_000 });
    pipeline.handle(message(incoming(A), { seq: 1 }));
    pipeline.handle(message(answered(A), { seq: 2 }));
    await turns();
    // A minute on, the call left memory: only a hash of its id says the bucket may have it.
    clock.set(T0 + 60_000);
    pipeline.handle(message(incoming(B, 60_000), { seq: 3 }));
    expect(store.get(A)).toMatchObject({
      ok: true,
      call: { snapshot: { value: 'answered' }, intake: { floor: 0, seqs: [1, 2] } },
    });

    store.holdAcks();
    const late = [message(reject(A, 60_000), { seq: 4 }), message(reject(A, 60_001), { seq: 5 })];
    for (const msg of late) pipeline.handle(msg);
    // Another call's events do not wait for that read.
    const other = message(reject(B, 60_002), { seq: 6 });
    pipeline.handle(other);
    await turns();
    store.releaseAcks();
    await turns();

    const refusals = published.filter((r) => r.callId === A && r.refused);
    expect(refusals.map((r) => [r.state, r.refused?.type])).toEqual([
      ['answered', 'call.reject'],
      ['answered', 'call.reject'],
    ]);
    expect(late.map((msg) => msg.acks)).toEqual([['ack'], ['ack']]);
    expect(requests.map((r) => r.callId)).toEqual([B]);
    expect(other.acks).toEqual(['ack']);
    // Nothing rang again: A's key holds its final snapshot still.
    expect(store.get(A)).toMatchObject({ ok: true, call: { snapshot: { value: 'answered' } } });
  });
});

describe('the pipeline: a stored call of another machine version', () => {
  it('reports its events as invalid and applies none of them', async () => {
    const { pipeline, invalid, published } = setup();
    pipeline.unreadable(A, 'the snapshot was stored by machine version 2');
    const msg = message(reject(A));
    pipeline.handle(msg);
    await turns();
    expect(msg.acks).toEqual(['ack']);
    expect(invalid).toEqual([
      'callId: the stored call cannot be used: the snapshot was stored by machine version 2',
    ]);
    expect(published).toEqual([]);
  });
});
