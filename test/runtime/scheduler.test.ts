import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { Clock } from '../../src/runtime/clock.js';
import { createScheduler } from '../../src/runtime/scheduler.js';

const T0 = Date.parse('2026-11-27T09:00:00.000Z');

/** xstate's SimulatedClock, with a count of the timers armed on it. */
function countedClock() {
  const clock = new SimulatedClock();
  clock.set(T0);
  const armed = new Set<number>();
  let mostArmed = 0;
  let timersSet = 0;
  const counted: Clock = {
    now: () => clock.now(),
    setTimeout: (fn, ms) => {
      timersSet++;
      const handle = clock.setTimeout(() => {
        armed.delete(handle);
        fn();
      }, ms);
      armed.add(handle);
      mostArmed = Math.max(mostArmed, armed.size);
      return handle;
    },
    clearTimeout: (handle) => {
      armed.delete(handle as number);
      clock.clearTimeout(handle as number);
    },
  };
  return {
    clock,
    counted,
    armed: () => armed.size,
    mostArmed: () => mostArmed,
    timersSet: () => timersSet,
  };
}

type Kind = 'deadline' | 'retry';

/** A scheduler whose due entries are collected with the clock's time when they fired. */
function scheduled<V>(clock: Clock) {
  const fired: Array<{ kind: Kind; value: V; at: number; now: number }> = [];
  const scheduler = createScheduler<Kind, V>({
    clock,
    onDue: (kind, value, at) => fired.push({ kind, value, at, now: clock.now() }),
  });
  return { scheduler, fired, values: () => fired.map((f) => f.value) };
}

describe('scheduler', () => {
  it('fires entries in time order, whatever order they were scheduled in', () => {
    const { clock, counted } = countedClock();
    const { scheduler, values } = scheduled<string>(counted);

    scheduler.schedule(T0 + 300, 'deadline', 'third');
    scheduler.schedule(T0 + 100, 'deadline', 'first');
    scheduler.schedule(T0 + 200, 'deadline', 'second');
    clock.set(T0 + 1_000);

    expect(values()).toEqual(['first', 'second', 'third']);
    expect(scheduler.size).toBe(0);
  });

  it('fires entries due at the same time in the order they were scheduled', () => {
    const { clock, counted } = countedClock();
    const { scheduler, values } = scheduled<string>(counted);

    for (const name of ['a', 'b', 'c', 'd', 'e']) scheduler.schedule(T0 + 500, 'deadline', name);
    clock.set(T0 + 500);

    expect(values()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('fires an entry exactly at its time and not a millisecond before', () => {
    const { clock, counted } = countedClock();
    const { scheduler, fired } = scheduled<string>(counted);
    scheduler.schedule(T0 + 250, 'deadline', 'c1');

    clock.set(T0 + 249);
    expect(fired).toEqual([]);

    clock.set(T0 + 250);
    expect(fired).toEqual([{ kind: 'deadline', value: 'c1', at: T0 + 250, now: T0 + 250 }]);
  });

  it('passes each entry its kind, value and own due time when the clock jumps past several', () => {
    const { clock, counted } = countedClock();
    const { scheduler, fired } = scheduled<string>(counted);
    scheduler.schedule(T0 + 100, 'deadline', 'a');
    scheduler.schedule(T0 + 200, 'retry', 'b');

    clock.set(T0 + 5_000);

    expect(fired).toEqual([
      { kind: 'deadline', value: 'a', at: T0 + 100, now: T0 + 5_000 },
      { kind: 'retry', value: 'b', at: T0 + 200, now: T0 + 5_000 },
    ]);
  });

  it('re-arms for an entry that arrives earlier than the one it waits for', () => {
    const { clock, counted, armed } = countedClock();
    const { scheduler, values } = scheduled<string>(counted);
    scheduler.schedule(T0 + 2_000, 'deadline', 'late');

    scheduler.schedule(T0 + 1_000, 'deadline', 'early');
    clock.set(T0 + 1_000);

    expect(values()).toEqual(['early']);
    expect(armed()).toBe(1);
    expect(scheduler.nextAt()).toBe(T0 + 2_000);

    clock.set(T0 + 2_000);
    expect(values()).toEqual(['early', 'late']);
    expect(armed()).toBe(0);
  });

  it('does not re-arm for an entry later than the one it waits for', () => {
    const { counted, timersSet } = countedClock();
    const { scheduler } = scheduled<string>(counted);
    scheduler.schedule(T0 + 1_000, 'deadline', 'early');

    scheduler.schedule(T0 + 2_000, 'deadline', 'late');
    scheduler.schedule(T0 + 1_000, 'deadline', 'also early');

    expect(timersSet()).toBe(1);
  });

  it('fires an entry scheduled for a time already past, on the next tick of the clock', () => {
    const { clock, counted } = countedClock();
    const { scheduler, fired } = scheduled<string>(counted);

    scheduler.schedule(T0 - 5_000, 'deadline', 'overdue');
    clock.increment(0);

    expect(fired).toEqual([{ kind: 'deadline', value: 'overdue', at: T0 - 5_000, now: T0 }]);
  });

  it('fires, in the same pass, an overdue entry scheduled while firing', () => {
    const { clock, counted } = countedClock();
    const fired: string[] = [];
    const scheduler = createScheduler<Kind, string>({
      clock: counted,
      onDue: (_, value) => {
        fired.push(value);
        if (value === 'first') scheduler.schedule(T0 + 50, 'deadline', 'follow-up');
      },
    });
    scheduler.schedule(T0 + 100, 'deadline', 'first');
    scheduler.schedule(T0 + 200, 'deadline', 'second');

    clock.set(T0 + 300);

    expect(fired).toEqual(['first', 'follow-up', 'second']);
  });

  it('reports the earliest due time and the number of entries', () => {
    const { counted } = countedClock();
    const { scheduler } = scheduled<string>(counted);

    expect(scheduler.nextAt()).toBeUndefined();
    scheduler.schedule(T0 + 700, 'deadline', 'a');
    scheduler.schedule(T0 + 300, 'deadline', 'b');

    expect(scheduler.nextAt()).toBe(T0 + 300);
    expect(scheduler.size).toBe(2);
  });

  describe('fireDue', () => {
    /** A clock whose timers never fire: only fireDue delivers. */
    function frozenTimers() {
      let now = T0;
      const clock: Clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {} };
      return { clock, setNow: (ms: number) => (now = ms) };
    }

    it('fires only the entries due at or before now', () => {
      const { clock, setNow } = frozenTimers();
      const { scheduler, values } = scheduled<string>(clock);
      scheduler.schedule(T0 + 100, 'deadline', 'due');
      scheduler.schedule(T0 + 200, 'deadline', 'due at now');
      scheduler.schedule(T0 + 201, 'deadline', 'not yet');

      setNow(T0 + 200);
      scheduler.fireDue();

      expect(values()).toEqual(['due', 'due at now']);
      expect(scheduler.size).toBe(1);
      expect(scheduler.nextAt()).toBe(T0 + 201);
    });

    it('fires nothing when nothing is due', () => {
      const { clock } = frozenTimers();
      const { scheduler, fired } = scheduled<string>(clock);
      scheduler.schedule(T0 + 100, 'deadline', 'later');

      scheduler.fireDue();

      expect(fired).toEqual([]);
      expect(scheduler.size).toBe(1);
    });
  });

  describe('stop', () => {
    it('disarms the clock timer and fires nothing when the time comes', () => {
      const { clock, counted, armed } = countedClock();
      const { scheduler, fired } = scheduled<string>(counted);
      scheduler.schedule(T0 + 100, 'deadline', 'a');

      scheduler.stop();
      clock.set(T0 + 1_000);

      expect(armed()).toBe(0);
      expect(fired).toEqual([]);
    });

    it('keeps the entries, so fireDue can still deliver them', () => {
      const { clock, counted } = countedClock();
      const { scheduler, values } = scheduled<string>(counted);
      scheduler.schedule(T0 + 100, 'deadline', 'a');
      scheduler.stop();
      clock.set(T0 + 1_000);

      expect(scheduler.size).toBe(1);
      scheduler.fireDue();

      expect(values()).toEqual(['a']);
    });

    it('does not arm a timer for entries scheduled after it stopped', () => {
      const { clock, counted, timersSet } = countedClock();
      const { scheduler, fired } = scheduled<string>(counted);
      scheduler.stop();

      scheduler.schedule(T0 + 100, 'deadline', 'a');
      clock.set(T0 + 1_000);

      expect(timersSet()).toBe(0);
      expect(fired).toEqual([]);
    });
  });

  it('fires everything in (time, arrival) order with never more than one clock timer', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -100, max: 5_000 }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.nat(400), { maxLength: 30 }),
        (delays, steps) => {
          const { clock, counted, armed, mostArmed } = countedClock();
          const { scheduler, values } = scheduled<number>(counted);

          delays.forEach((delay, seq) => {
            scheduler.schedule(T0 + delay, 'deadline', seq);
            expect(armed()).toBe(1);
          });
          for (const step of steps) {
            clock.increment(step);
            expect(armed()).toBeLessThanOrEqual(1);
          }
          clock.increment(10_000);

          const expected = delays
            .map((delay, seq) => ({ delay, seq }))
            .sort((a, b) => a.delay - b.delay || a.seq - b.seq)
            .map((entry) => entry.seq);
          expect(values()).toEqual(expected);
          expect(mostArmed()).toBe(1);
          expect(armed()).toBe(0);
        },
      ),
    );
  });

  it('fires each entry once and never early, however scheduling and time interleave', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ delay: fc.integer({ min: -100, max: 5_000 }), step: fc.nat(400) }), {
          minLength: 1,
          maxLength: 60,
        }),
        (plan) => {
          const { clock, counted, armed } = countedClock();
          const { scheduler, fired } = scheduled<number>(counted);

          plan.forEach(({ delay, step }, seq) => {
            scheduler.schedule(clock.now() + delay, 'deadline', seq);
            clock.increment(step);
            expect(armed()).toBeLessThanOrEqual(1);
          });
          clock.increment(10_000);

          expect(fired.map((f) => f.value).sort((a, b) => a - b)).toEqual(plan.map((_, i) => i));
          expect(fired.every((f) => f.now >= f.at)).toBe(true);
          expect(scheduler.size).toBe(0);
          expect(armed()).toBe(0);
        },
      ),
    );
  });
});
