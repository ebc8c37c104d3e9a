import { getHeapSpaceStatistics } from 'node:v8';
import { describe, expect, it, vi } from 'vitest';
import {
  CompactionPolicy,
  fullCollection,
  GROWTH_BYTES,
  type HeapSample,
  QUIET_CHECKS,
  type Sampler,
  startHeapCompaction,
} from '../../src/app/heap.js';
import { createLogger } from '../../src/log.js';

const MB = 2 ** 20;
const LIVE = 100 * MB;
/** A sample of an old generation with `live` in use and `slack` more committed. */
const sample = (slack: number, extra: Partial<HeapSample> = {}): HeapSample => ({
  oldCommitted: LIVE + slack,
  oldUsed: LIVE,
  utilization: 0.01,
  busy: false,
  ...extra,
});
const busyLoop = (slack: number) => sample(slack, { utilization: 0.5 });
const log = createLogger({ level: 'silent' });

/** Feed `n` samples; true if any was due. */
function feed(policy: CompactionPolicy, n: number, at: HeapSample): boolean {
  let due = false;
  for (let i = 0; i < n; i++) due = policy.due(at) || due;
  return due;
}

describe('the heap collection after a burst', () => {
  it('collects once the old generation holds the threshold beyond what is live, after enough quiet checks', () => {
    const policy = new CompactionPolicy();
    expect(feed(policy, QUIET_CHECKS - 1, sample(GROWTH_BYTES))).toBe(false);
    expect(policy.due(sample(GROWTH_BYTES))).toBe(true);
  });

  it('does not collect while the loop is busy or a reject request is in flight', () => {
    const policy = new CompactionPolicy();
    expect(feed(policy, 10, busyLoop(10 * GROWTH_BYTES))).toBe(false);
    expect(feed(policy, 10, sample(10 * GROWTH_BYTES, { busy: true }))).toBe(false);
  });

  it('starts counting the quiet checks again after a busy one', () => {
    const policy = new CompactionPolicy();
    feed(policy, QUIET_CHECKS - 1, sample(GROWTH_BYTES));
    policy.due(sample(GROWTH_BYTES, { busy: true }));
    expect(feed(policy, QUIET_CHECKS - 1, sample(GROWTH_BYTES))).toBe(false);
    expect(policy.due(sample(GROWTH_BYTES))).toBe(true);
  });

  it('does not collect a quiet process whose old generation holds less than the threshold beyond', () => {
    expect(feed(new CompactionPolicy(), 10, sample(GROWTH_BYTES - 1))).toBe(false);
  });

  it('takes what a full collection left in use as live: calls restored since are not garbage', () => {
    const policy = new CompactionPolicy();
    // V8 collected in full after 300 MB of calls were restored: all of it live.
    policy.collected(LIVE + 300 * MB);
    const restored = { ...sample(0), oldUsed: LIVE + 300 * MB, oldCommitted: LIVE + 310 * MB };
    expect(feed(policy, 10, restored)).toBe(false);
  });

  it('is not due again once its own compacted collection left the old generation lean', () => {
    const policy = new CompactionPolicy();
    expect(feed(policy, QUIET_CHECKS, sample(GROWTH_BYTES))).toBe(true);
    policy.collected(LIVE);
    expect(feed(policy, 10, sample(8 * MB))).toBe(false);
  });

  it('is given a real full collection, which gives back what nothing refers to', () => {
    const collect = fullCollection([]);
    expect(collect).toBeTypeOf('function');
    const old = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');
    let garbage: unknown[] | undefined = Array.from({ length: 300_000 }, (_, i) => ({ i }));
    collect?.(); // promoted
    expect(garbage.length).toBe(300_000);
    const before = old()?.space_used_size ?? 0;
    garbage = undefined;
    collect?.();
    expect(old()?.space_used_size ?? 0).toBeLessThan(before - 4 * MB);
  });

  it('samples on a timer, collects when due and tells each collection', () => {
    vi.useFakeTimers();
    try {
      const collect = vi.fn();
      const onCollected = vi.fn();
      const samples = [
        busyLoop(0),
        ...Array.from({ length: QUIET_CHECKS }, () => sample(GROWTH_BYTES)),
      ];
      const sampler: Sampler = { sample: () => samples.shift() ?? sample(0), restart: vi.fn() };
      let inFlight = 0;
      const stop = startHeapCompaction({
        log,
        collect,
        onCollected,
        everyMs: 1_000,
        sampler,
        inFlight: () => inFlight,
      });
      vi.advanceTimersByTime(QUIET_CHECKS * 1_000);
      expect(collect).not.toHaveBeenCalled();
      vi.advanceTimersByTime(1_000);
      expect(collect).toHaveBeenCalledTimes(1);
      expect(onCollected).toHaveBeenCalledTimes(1);
      expect(sampler.restart).toHaveBeenCalledTimes(1);
      inFlight = 1;
      samples.push(...Array.from({ length: QUIET_CHECKS * 2 }, () => sample(GROWTH_BYTES)));
      vi.advanceTimersByTime(QUIET_CHECKS * 2_000);
      expect(collect).toHaveBeenCalledTimes(1);
      stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('warns once and checks nothing when the heap cannot be collected on demand', () => {
    vi.useFakeTimers();
    try {
      const warn = vi.spyOn(log, 'warn');
      const sampler: Sampler = { sample: vi.fn(() => sample(GROWTH_BYTES)), restart() {} };
      const stop = startHeapCompaction({ log, inFlight: () => 0, collect: null, sampler });
      vi.advanceTimersByTime(10_000);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[0]).toMatch(/cannot be collected on demand/);
      expect(sampler.sample).not.toHaveBeenCalled();
      stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
