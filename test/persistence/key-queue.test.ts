import { describe, expect, it } from 'vitest';
import type { LifecycleRecord } from '../../src/contract/records.js';
import { MemoryStore } from '../../src/persistence/memory-store.js';
import type { CallSource } from '../../src/persistence/store.js';
import type { StoredForm } from '../../src/runtime/types.js';
import { persistedCall } from '../support/persisted-call.js';

/** The per-key write queue, through the in-memory store: what a value keeps of its changes. */

const T0 = Date.parse('2026-11-27T09:00:00.000Z');
const at = new Date(T0).toISOString();
const ringing: LifecycleRecord = { callId: 'a', state: 'ringing', previous: null, at };
const rejecting: LifecycleRecord = { callId: 'a', state: 'rejecting', previous: 'ringing', at };
const rejected: LifecycleRecord = { callId: 'a', state: 'rejected', previous: 'rejecting', at };

/** The call as the runtime would hand it to the store: always there. */
const source: CallSource = {
  storedFormOf: (callId): StoredForm => ({
    snapshot: persistedCall(callId, 'ringing', T0 + 15_000),
    intake: { floor: 0, seqs: [1] },
  }),
};

/** A write's outcome: the error, or undefined once stored. */
function outcome() {
  let done!: (error?: Error) => void;
  const result = new Promise<Error | undefined>((resolve) => {
    done = resolve;
  });
  return { done, result };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('the key queue', () => {
  it('marks a value whose records no message caused, and reports it unpublished until a write stores it', async () => {
    const store = new MemoryStore(source);
    const prompted = outcome();
    store.save('a', { records: [ringing], prompted: true, done: prompted.done });
    expect(await prompted.result).toBeUndefined();
    expect(store.oldestUnpublished()).toBeUndefined();

    store.holdAcks();
    store.failWrites(new Error('no space'));
    const first = outcome();
    store.save('a', { records: [rejected], prompted: false, done: first.done });
    await turn();
    const written = store.writes.at(-1)?.call;
    expect(written).toMatchObject({ records: [rejected], unprompted: true });
    const writtenAt = written === 'erase' ? undefined : written?.writtenAt;
    expect(store.oldestUnpublished()).toBe(writtenAt);
    store.releaseAcks();
    expect(await first.result).toBeInstanceOf(Error);
    // Failed: the records wait for the retry, and so does the mark.
    expect(store.oldestUnpublished()).toBe(writtenAt);

    store.failWrites(undefined);
    const retry = outcome();
    store.whenStored('a', retry.done);
    expect(await retry.result).toBeUndefined();
    expect(store.get('a')).toMatchObject({
      ok: true,
      call: { records: [rejected], unprompted: true },
    });
    expect(store.oldestUnpublished()).toBeUndefined();
  });

  it('takes records without a word on their cause as unprompted: they are sent again rather than lost', async () => {
    const store = new MemoryStore(source);
    const saved = outcome();
    store.save('a', { records: [ringing], done: saved.done });
    expect(await saved.result).toBeUndefined();
    expect(store.get('a')).toMatchObject({ ok: true, call: { unprompted: true } });
  });

  it("carries a failed write's records and mark into the write queued behind it", async () => {
    const store = new MemoryStore(source);
    store.holdAcks();
    store.failWrites(new Error('timeout'));
    const first = outcome();
    store.save('a', { records: [ringing], prompted: false, done: first.done });
    await turn();
    const second = outcome();
    store.save('a', { records: [rejecting], prompted: true, done: second.done });
    // The first write fails; the second, queued behind it, is sent at once and stored.
    store.releaseAcks();
    store.failWrites(undefined);
    expect(await first.result).toBeInstanceOf(Error);
    expect(await second.result).toBeUndefined();
    expect(store.get('a')).toMatchObject({
      ok: true,
      call: { records: [ringing, rejecting], unprompted: true },
    });
    expect(store.lastRecords('a')).toEqual([ringing, rejecting]);
  });
});
