import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { MemoryStore } from '../../src/persistence/memory-store.js';
import { createCallRuntime } from '../../src/runtime/call-runtime.js';
import { restoreCalls } from '../../src/service/restore.js';
import { persistedCall } from '../support/persisted-call.js';

const T0 = Date.parse('2026-11-27T09:00:00.000Z');
const log = pino({ level: 'silent' });

/** A runtime at T0 and an empty store it restores from. */
function setup() {
  const clock = new SimulatedClock();
  clock.set(T0);
  const runtime = createCallRuntime({
    clock,
    windowMs: 15_000,
    control: { reject: async () => ({ status: 202, maybeDelivered: false }) },
    storedMs: 3_600_000,
  });
  return { clock, runtime, store: new MemoryStore(runtime) };
}

describe('restore', () => {
  it('brings live calls back, remembers final ones by hash, holds early events again and leaves unreadable ones out', async () => {
    const { clock, runtime, store } = setup();
    store.put('live', {
      intake: { floor: 0, seqs: [1] },
      snapshot: persistedCall('live', 'ringing', T0 + 10_000),
    });
    store.put('final', {
      intake: { floor: 0, seqs: [2] },
      snapshot: persistedCall('final', 'answered', T0 + 5_000),
    });
    const held = [{ type: 'call.answered' as const, callId: 'early', at: T0 }];
    store.put('early', { intake: { floor: 0, seqs: [3] }, held });
    // Another machine version wrote this one.
    store.putRaw('foreign', JSON.stringify({ v: 9, seq: 4, snapshot: {} }));

    const restored = await restoreCalls(store, runtime, log);

    expect(restored).toMatchObject({ live: 2, final: 1 });
    expect([...restored.unreadable.keys()]).toEqual(['foreign']);
    expect(runtime.stateOf('live')).toBe('ringing');
    expect(runtime.knows('final')).toBe('maybeStored');
    expect(runtime.storedFormOf('early')).toEqual({ held, intake: { floor: 0, seqs: [3] } });
    expect(runtime.knows('foreign')).toBe('unknown');
    // The restored call times out at its own deadline.
    clock.set(T0 + 10_000);
    runtime.scheduler.fireDue();
    expect(runtime.stateOf('live')).toBe('timedOut');
  });
});

describe('records a crash may have kept from going out', () => {
  it('are the records of values no message caused, written after the last publication mark, oldest first', async () => {
    const { runtime, store } = setup();
    const record = (callId: string, state: 'rejected' | 'answered') =>
      ({ callId, state, previous: 'ringing', at: new Date(T0).toISOString() }) as const;
    const intake = { floor: 0, seqs: [1] };
    store.put('old', {
      snapshot: persistedCall('old', 'answered', T0),
      intake,
      records: [record('old', 'answered')],
      writtenAt: 1_000,
      unprompted: true,
    });
    store.put('late', {
      snapshot: persistedCall('late', 'answered', T0),
      intake,
      records: [record('late', 'answered')],
      writtenAt: 3_000,
      unprompted: true,
    });
    store.put('later', {
      snapshot: persistedCall('later', 'answered', T0),
      intake,
      records: [record('later', 'answered')],
      writtenAt: 2_500,
      unprompted: true,
    });
    // A message caused it: the message comes back if its records were lost.
    store.put('prompted', {
      snapshot: persistedCall('prompted', 'answered', T0),
      intake,
      records: [record('prompted', 'answered')],
      writtenAt: 2_600,
    });
    await store.markPublished(2_000);

    const restored = await restoreCalls(store, runtime, log);

    expect(restored.unsent.map((r) => r.callId)).toEqual(['later', 'late']);
  });
});
