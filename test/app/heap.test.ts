import { getHeapStatistics } from 'node:v8';
import { describe, expect, it, vi } from 'vitest';
import {
  CompactionPolicy,
  fullCollection,
  GROWTH_BYTES,
  QUIET_CHECKS,
  startHeapCompaction,
} from '../../src/app/heap.js';
import { createLogger } from '../../src/log.js';

const MB = 2 ** 20;
const busy = (usedBytes: number) => ({ usedBytes, utilization: 0.5 });
const quiet = (usedBytes: number) => ({ usedBytes, utilization: 0.01 });

describe('the heap collection after a burst', () => {
  it('collects once the heap grew by the threshold and the loop was quiet twice in a row', () => {
    const policy = new CompactionPolicy();
    expect(policy.due(busy(100 * MB))).toBe(false);
    expect(policy.due(busy(100 * MB + GROWTH_BYTES))).toBe(false);
    for (let i = 1; i < QUIET_CHECKS; i++) {
      expect(policy.due(quiet(100 * MB + GROWTH_BYTES))).toBe(false);
    }
    expect(policy.due(quiet(100 * MB + GROWTH_BYTES))).toBe(true);
  });

  it('does not collect while the loop is busy, however much the heap grew', () => {
    const policy = new CompactionPolicy();
    policy.due(busy(50 * MB));
    for (let i = 0; i < 10; i++) expect(policy.due(busy(50 * MB + 10 * GROWTH_BYTES))).toBe(false);
  });

  it('does not collect a quiet process whose heap grew less than the threshold', () => {
    const policy = new CompactionPolicy();
    for (let i = 0; i < 10; i++) expect(policy.due(quiet(50 * MB + GROWTH_BYTES - 1))).toBe(false);
  });

  it('counts growth from the heap left by the last collection', () => {
    const policy = new CompactionPolicy();
    policy.due(quiet(50 * MB));
    for (let i = 1; i < QUIET_CHECKS; i++) policy.due(quiet(50 * MB + GROWTH_BYTES));
    expect(policy.due(quiet(50 * MB + GROWTH_BYTES))).toBe(true);
    policy.collected(120 * MB);
    for (let i = 0; i < QUIET_CHECKS; i++) {
      expect(policy.due(quiet(120 * MB + GROWTH_BYTES - 1))).toBe(false);
    }
    expect(policy.due(quiet(120 * MB + GROWTH_BYTES))).toBe(true);
  });

  it('counts growth from the smallest heap seen, so a heap V8 shrank itself needs new growth', () => {
    const policy = new CompactionPolicy();
    policy.due(busy(200 * MB));
    policy.due(busy(40 * MB));
    for (let i = 0; i < QUIET_CHECKS; i++) {
      expect(policy.due(quiet(40 * MB + GROWTH_BYTES - 1))).toBe(false);
    }
    expect(policy.due(quiet(40 * MB + GROWTH_BYTES))).toBe(true);
  });

  it('is given a real full collection, which frees what nothing refers to', () => {
    const collect = fullCollection();
    expect(collect).toBeTypeOf('function');
    let garbage: unknown[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i }));
    expect(garbage.length).toBe(200_000);
    const before = getHeapStatistics().used_heap_size;
    garbage = undefined;
    collect?.();
    expect(getHeapStatistics().used_heap_size).toBeLessThan(before - 4 * MB);
  });

  it('samples on a timer, collects when due and tells each collection', () => {
    vi.useFakeTimers();
    try {
      const collect = vi.fn();
      const onCollected = vi.fn();
      const quietOnes = Array.from({ length: QUIET_CHECKS }, () => quiet(90 * MB));
      const samples = [busy(10 * MB), busy(90 * MB), ...quietOnes];
      const stop = startHeapCompaction({
        log: createLogger({ level: 'silent' }),
        collect,
        onCollected,
        everyMs: 1_000,
        sample: () => samples.shift() ?? quiet(0),
      });
      vi.advanceTimersByTime((1 + QUIET_CHECKS) * 1_000);
      expect(collect).not.toHaveBeenCalled();
      vi.advanceTimersByTime(1_000);
      expect(collect).toHaveBeenCalledTimes(1);
      expect(onCollected).toHaveBeenCalledTimes(1);
      stop();
      vi.advanceTimersByTime(10_000);
      expect(collect).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
