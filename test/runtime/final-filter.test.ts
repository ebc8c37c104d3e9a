import { describe, expect, it } from 'vitest';
import { createFinalFilter } from '../../src/runtime/final-filter.js';

describe('the final-call filter', () => {
  it('knows the ids added within the retention period, and not others', () => {
    let t = 1_000_000;
    const filter = createFinalFilter({ retentionMs: 60_000, now: () => t });
    filter.add('call-a');
    t += 30_000;
    filter.add('call-b');
    expect(filter.mightHold('call-a')).toBe(true);
    expect(filter.mightHold('call-b')).toBe(true);
    expect(filter.mightHold('call-c')).toBe(false);
    expect(filter.size).toBe(2);
  });

  it('keeps an id at least the retention period, and drops it within one generation after', () => {
    let t = 0;
    const retentionMs = 70_000;
    const filter = createFinalFilter({ retentionMs, generations: 8, now: () => t });
    filter.add('call-a');
    t = retentionMs;
    expect(filter.mightHold('call-a')).toBe(true);
    // Generations are retention / 7 = 10 s long.
    t = retentionMs + 10_000;
    expect(filter.mightHold('call-a')).toBe(false);
    expect(filter.size).toBe(0);
  });

  it('survives a long pause: every generation is cleared once', () => {
    let t = 0;
    const filter = createFinalFilter({ retentionMs: 1_000, now: () => t });
    filter.add('call-a');
    t = 1_000_000;
    expect(filter.mightHold('call-a')).toBe(false);
    filter.add('call-b');
    expect(filter.mightHold('call-b')).toBe(true);
  });
});
