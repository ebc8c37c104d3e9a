import { describe, expect, it } from 'vitest';
import {
  type Outcome,
  percentile,
  renderReport,
  summarize,
} from '../../../src/tools/demo/report.js';

describe('percentile', () => {
  it('is the nearest rank', () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile(hundred, 0)).toBe(1);
    expect(percentile([7], 99)).toBe(7);
  });

  it('is undefined for no values', () => {
    expect(percentile([], 50)).toBeUndefined();
  });
});

const base = {
  refusedRejects: 1,
  plannedRefusals: 1,
  duplicatesDropped: 1,
  plannedDrops: 1,
  graphByStatus: { '429': 1, '202': 2 },
  windowMs: 4_000,
  traffic: {
    offeredPerSecond: 100,
    sustainedPerSecond: 99.96,
    elapsedMs: 15_420,
    heldBackMs: 0,
    maxLateMs: 2.4,
    lagSamples: [3, 1, 4, 1, 5, 9, 2, 6, 40],
    maxLagMs: 250,
  },
  decidedTwice: 0,
};

describe('summarize and renderReport', () => {
  const outcomes: Outcome[] = [
    {
      callId: 'a',
      kind: 'rejected',
      expected: 'rejected',
      actual: 'rejected',
      rejectLatencyMs: 10,
      graphLatencyMs: 4,
    },
    {
      callId: 'b',
      kind: 'throttled',
      expected: 'rejected',
      actual: 'rejected',
      rejectLatencyMs: 1_010,
    },
    { callId: 'c', kind: 'answered', expected: 'answered', actual: 'answered' },
    { callId: 'd', kind: 'timedOut', expected: 'timedOut', actual: 'timedOut' },
    { callId: 'e', kind: 'hungUp', expected: 'ended', actual: 'ended' },
    { callId: 'f', kind: 'forbidden', expected: 'failed', actual: 'failed' },
  ];

  it('counts planned and actual states and computes the latencies', () => {
    const summary = summarize({ ...base, outcomes });
    expect(summary.planned).toEqual({ rejected: 2, answered: 1, timedOut: 1, ended: 1, failed: 1 });
    expect(summary.actual).toEqual(summary.planned);
    expect(summary).toMatchObject({ lost: 0, different: 0, ok: true });
    expect(summary.rejectLatency).toEqual({ count: 2, p50: 10, p99: 1_010 });
    expect(summary.firstTryLatency).toEqual({ count: 1, p50: 10, p99: 10 });
    expect(summary.graphLatency).toEqual({ count: 1, p50: 4, p99: 4 });
  });

  it('renders a row per final state, the latencies and calls lost', () => {
    const text = renderReport({ ...base, outcomes });
    for (const state of ['rejected', 'answered', 'timedOut', 'ended', 'failed']) {
      expect(text).toMatch(new RegExp(`^${state}\\s+\\d+\\s+\\d+$`, 'm'));
    }
    expect(text).toMatch(/^rejected\s+2\s+2$/m);
    expect(text).toMatch(/^total\s+6\s+6$/m);
    expect(text).toMatch(/p50\s+10 ms\s+p99\s+1010 ms\s+\(2 calls\)/);
    expect(text).toContain('Graph emulator answers: 202: 2, 429: 1');
    expect(text).toMatch(/^calls lost: 0$/m);
    expect(text).toMatch(/^calls decided twice: 0$/m);
  });

  it('shows the rate asked for and the rate achieved, the time held back and the service lag', () => {
    const text = renderReport({ ...base, outcomes });

    expect(text).toMatch(/^offered rate \(calls planned a second\)\s+100\.0 calls\/s$/m);
    expect(text).toMatch(
      /^sustained rate \(calls started a second\)\s+100\.0 calls\/s {3}\(6 calls, all sent in 15\.4 s\)$/m,
    );
    expect(text).toMatch(
      /^time held back \(service lag over 250 ms\)\s+0\.0 s {3}\(latest start 2 ms behind plan\)$/m,
    );
    expect(text).toMatch(
      /^service lag \(oldest event not acted on\)\s+p50\s+4 ms\s+p99\s+40 ms\s+max 40 ms$/m,
    );
    expect(text).not.toContain('did not keep up');
    expect(text.indexOf('offered rate')).toBeLessThan(text.indexOf('reject latency'));
  });

  it('says so when the service did not keep up with the rate asked for', () => {
    const traffic = { ...base.traffic, sustainedPerSecond: 212.4, heldBackMs: 3_300 };
    const text = renderReport({
      ...base,
      outcomes,
      traffic: { ...traffic, offeredPerSecond: 300 },
    });

    expect(text).toMatch(/^offered rate .*\s300\.0 calls\/s$/m);
    expect(text).toMatch(/^sustained rate .*\s212\.4 calls\/s/m);
    expect(text).toMatch(/^time held back .*\s3\.3 s/m);
    expect(text).toContain('The service did not keep up with 300 calls/s here');
    expect(summarize({ ...base, outcomes, traffic }).ok).toBe(true);
  });

  it('puts calls held back during a failover down to the takeover, not to the rate', () => {
    const traffic = { ...base.traffic, sustainedPerSecond: 88.1, heldBackMs: 2_000 };
    const killed = 'instance 3 killed (SIGKILL) 7.5 s into the traffic';
    const text = renderReport({ ...base, outcomes, traffic, replicas: { count: 3, killed } });

    expect(text).toContain('New calls waited while the other instances took over');
    expect(text).not.toContain('did not keep up');
    expect(text).toContain(`instances: 3 identical replicas; ${killed}`);
  });

  it('is not ok when a call was decided twice, and says how many', () => {
    const summary = summarize({ ...base, outcomes, decidedTwice: 1 });
    expect(summary.ok).toBe(false);
    expect(renderReport({ ...base, outcomes, decidedTwice: 1 })).toMatch(
      /^calls decided twice: 1$/m,
    );
  });

  it('tells lost calls from calls that ended differently, and lists them', () => {
    const bad: Outcome[] = [
      ...outcomes.slice(0, 4),
      { callId: 'e', kind: 'hungUp', expected: 'ended' },
      { callId: 'f', kind: 'forbidden', expected: 'failed', actual: 'rejected' },
    ];
    const summary = summarize({ ...base, outcomes: bad });
    expect(summary).toMatchObject({ lost: 1, different: 1, ok: false });
    expect(summary.actual).toMatchObject({ ended: 0, failed: 0, rejected: 3 });
    const text = renderReport({ ...base, outcomes: bad });
    expect(text).toMatch(/^calls lost: 1$/m);
    expect(text).toMatch(/^calls ended in another state than planned: 1$/m);
    expect(text).toContain('e (hungUp): planned ended, got no final record');
    expect(text).toContain('f (forbidden): planned failed, got rejected');
    const none = renderReport({ ...base, outcomes: outcomes.slice(2) });
    expect(none).toMatch(/p50\s+–\s+p99\s+–\s+\(0 calls\)/);
  });
});
