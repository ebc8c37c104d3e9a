import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/service/metrics.js';
import { createRecordObserver, RejectLatency } from '../../src/service/observers.js';
import { rejected, rejecting, ringing, T0 } from '../support/records.js';

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
