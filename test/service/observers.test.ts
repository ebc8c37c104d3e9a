import { describe, expect, it } from 'vitest';
import type { LifecycleRecord } from '../../src/contract/records.js';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/service/metrics.js';
import { createRecordObserver, RejectLatency } from '../../src/service/observers.js';

const T0 = Date.parse('2026-01-01T10:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const ID = '2f1a1100-726e-4c1e-b6f2-a1b2c3d4e5f6';

const ringing: LifecycleRecord = { callId: ID, state: 'ringing', previous: null, at: at(0) };
const rejecting: LifecycleRecord = {
  callId: ID,
  state: 'rejecting',
  previous: 'ringing',
  at: at(100),
  reason: 'busy',
  attempts: 1,
};
const rejected: LifecycleRecord = {
  ...rejecting,
  state: 'rejected',
  previous: 'rejecting',
  at: at(350),
};

describe('reject latency', () => {
  it('runs from the record entering rejecting to the rejected record, by their times', () => {
    const latency = new RejectLatency();
    expect([ringing, rejecting, rejected].map((record) => latency.observe(record))).toEqual([
      undefined,
      undefined,
      250,
    ]);
  });

  it('has no figure for a call that ended otherwise, or whose rejecting it never saw', () => {
    const latency = new RejectLatency();
    latency.observe(rejecting);
    expect(latency.observe({ ...rejected, state: 'failed' })).toBeUndefined();
    expect(latency.observe(rejected)).toBeUndefined();
  });

  it('is the figure both the metric and the live page get', async () => {
    const metrics = createMetrics();
    const seen: Array<number | undefined> = [];
    const observe = createRecordObserver({
      log: createLogger({ level: 'silent' }),
      metrics,
      onRecord: (_record, facts) => seen.push(facts.rejectLatencyMs),
    });
    for (const record of [ringing, rejecting, rejected]) observe(record, T0 + 15_000);
    expect(seen).toEqual([undefined, undefined, 250]);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/callgate_reject_latency_seconds_sum 0\.25\n/);
    expect(text).toMatch(/callgate_calls_total\{state="rejected"\} 1\n/);
  });
});
