import { describe, expect, it } from 'vitest';
import { type FollowUp, followUpsOf, runSchedule } from '../../../src/tools/demo/schedule.js';
import type { DemoCall, DemoKind } from '../../../src/tools/demo/traffic.js';
import { deferred, ManualClock } from './manual-clock.js';

function call(n: number, startMs: number, delayMs: number, kind: DemoKind = 'rejected'): DemoCall {
  return {
    n,
    callId: `call-${n}`,
    kind,
    expected: 'rejected',
    startMs,
    decideMs: startMs + delayMs,
    reason: 'busy',
    faults: [],
  };
}

/** A webhook that answers each notification only when the test says so. */
function scripted(calls: readonly DemoCall[], options: { lag?: () => number } = {}) {
  const clock = new ManualClock();
  const pending = new Map(calls.map((c) => [c.callId, deferred()]));
  const announced = new Map<string, number>();
  const sent: Array<{ callId: string; what: FollowUp; at: number }> = [];
  const run = runSchedule(calls, {
    clock,
    maxLagMs: 250,
    signal: new AbortController().signal,
    lag: options.lag ?? (() => 0),
    announce(c) {
      announced.set(c.callId, clock.now());
      return pending.get(c.callId)?.promise ?? Promise.resolve();
    },
    async follow(c, what) {
      sent.push({ callId: c.callId, what, at: clock.now() });
    },
  });
  const accept = (callId: string) => pending.get(callId)?.resolve();
  return { clock, run, announced, sent, accept };
}

describe('runSchedule', () => {
  it("times each call's decision from the moment its notification was accepted, not from its start", async () => {
    const calls = [call(0, 0, 100), call(1, 10, 50)];
    const { clock, run, sent, accept } = scripted(calls);

    await clock.advance(300);
    accept('call-0');
    await clock.advance(99);
    expect(sent).toEqual([]);
    await clock.advance(1);
    expect(sent).toEqual([{ callId: 'call-0', what: 'decision', at: 400 }]);

    await clock.advance(200);
    accept('call-1');
    await clock.advance(60);
    expect(sent.at(-1)).toEqual({ callId: 'call-1', what: 'decision', at: 650 });
    await expect(run).resolves.toMatchObject({ started: 2, elapsedMs: 650 });
  });

  it('announces every call at its planned time while earlier notifications are still unanswered', async () => {
    const calls = Array.from({ length: 50 }, (_, n) => call(n, n * 10, 100));
    const { clock, run, announced, sent, accept } = scripted(calls);

    await clock.advance(490);

    expect([...announced.values()]).toEqual(calls.map((c) => c.startMs));
    expect(sent).toEqual([]);
    for (const c of calls) accept(c.callId);
    await clock.advance(100);
    const result = await run;
    expect(result).toMatchObject({ started: 50, heldBackMs: 0, maxLateMs: 0 });
    expect(result.offeredPerSecond).toBeCloseTo(100);
    expect(result.sustainedPerSecond).toBeCloseTo(100);
    expect(sent.map((s) => s.at)).toEqual(calls.map(() => 590));
  });

  it('holds new calls while the service lags, then goes on at the planned pace without a burst', async () => {
    let lag = 0;
    const calls = Array.from({ length: 6 }, (_, n) => call(n, n * 100, 50, 'timedOut'));
    const { clock, run, announced, accept } = scripted(calls, { lag: () => lag });
    for (const c of calls) accept(c.callId);

    await clock.advance(150);
    lag = 300;
    await clock.advance(250);
    expect(announced.size).toBe(2);
    lag = 0;
    await clock.advance(500);

    // Held from 200 until the first look at the lag after 400 (every 5 ms):
    // the third call starts at 405, the rest 100 ms apart.
    expect([...announced.values()]).toEqual([0, 100, 405, 505, 605, 705]);
    const result = await run;
    expect(result.heldBackMs).toBe(205);
    expect(result.maxLateMs).toBe(205);
    expect(result.offeredPerSecond).toBeCloseTo(10);
    expect(result.sustainedPerSecond).toBeCloseTo(5_000 / 705);
    expect(result.lagSamples).toContain(300);
    expect(Math.max(...result.lagSamples)).toBe(300);
  });

  it('repeats a duplicated call 10 ms after its acceptance and its reject 5 ms after its decision', () => {
    const duplicated = call(0, 0, 200, 'duplicated');

    expect(followUpsOf(duplicated, 1_000)).toEqual([
      { at: 1_010, what: 'incomingAgain' },
      { at: 1_200, what: 'decision' },
      { at: 1_205, what: 'rejectAgain' },
    ]);
    expect(followUpsOf(call(1, 0, 200, 'timedOut'), 1_000)).toEqual([]);
  });

  it('fails with the first notification that was not accepted, and starts no more calls', async () => {
    const calls = [call(0, 0, 100), call(1, 10, 100), call(2, 20, 100)];
    const clock = new ManualClock();
    const announced: string[] = [];
    const run = runSchedule(calls, {
      clock,
      maxLagMs: 250,
      signal: new AbortController().signal,
      lag: () => 0,
      async announce(c) {
        announced.push(c.callId);
        if (c.n === 1) throw new Error('the webhook answered 503 for call-1');
      },
      follow: async () => {},
    });
    const failed = expect(run).rejects.toThrow('the webhook answered 503 for call-1');

    await clock.advance(100);

    await failed;
    expect(announced).toEqual(['call-0', 'call-1']);
  });

  it('stops at once when aborted, with what it did so far', async () => {
    const abort = new AbortController();
    const clock = new ManualClock();
    const calls = Array.from({ length: 10 }, (_, n) => call(n, n * 10, 100));
    const run = runSchedule(calls, {
      clock,
      maxLagMs: 250,
      signal: abort.signal,
      lag: () => 0,
      announce: () => new Promise(() => {}),
      follow: async () => {},
    });

    await clock.advance(35);
    abort.abort();

    await expect(run).resolves.toMatchObject({ started: 4 });
  });
});
