import { describe, expect, it } from 'vitest';
import { parseDemoArgs } from '../../../src/tools/demo/options.js';
import { DEMO_MIX, planTraffic } from '../../../src/tools/demo/traffic.js';

describe('planTraffic', () => {
  it('gives each kind its share, in a seeded order, decided 50–500 ms after ringing', () => {
    const calls = planTraffic({ calls: 1_000, rate: 200, seed: 3 });
    const counts: Record<string, number> = {};
    for (const call of calls) counts[call.kind] = (counts[call.kind] ?? 0) + 1;
    for (const [kind, { share }] of Object.entries(DEMO_MIX)) expect(counts[kind]).toBe(share * 10);
    expect(calls.map((c) => c.kind)).toEqual(
      planTraffic({ calls: 1_000, rate: 200, seed: 3 }).map((c) => c.kind),
    );
    expect(new Set(calls.map((c) => c.callId)).size).toBe(1_000);
    for (const call of calls) {
      expect(call.decideMs - call.startMs).toBeGreaterThanOrEqual(50);
      expect(call.decideMs - call.startMs).toBeLessThanOrEqual(500);
      expect(call.expected).toBe(DEMO_MIX[call.kind].state);
    }
    expect(calls.at(-1)?.startMs).toBeCloseTo(999 * 5);
  });

  it('scripts Graph per call through emulator faults', () => {
    const calls = planTraffic({ calls: 200, rate: 100, seed: 1 });
    const faults = (kind: string) => calls.find((c) => c.kind === kind)?.faults ?? [];
    expect(faults('throttled')).toMatchObject([
      { fault: { kind: 'status', status: 429, retryAfterSeconds: 1 } },
    ]);
    expect(faults('unavailable')[0]).toMatchObject({ fault: { kind: 'status', status: 503 } });
    expect([1, 2]).toContain(faults('unavailable')[0]?.times);
    expect(faults('gone')).toMatchObject([{ fault: { kind: 'notFound' } }]);
    expect(faults('forbidden')).toMatchObject([{ fault: { kind: 'forbidden' } }]);
    expect(faults('rejected')).toEqual([]);
    for (const call of calls) for (const rule of call.faults) expect(rule.callId).toBe(call.callId);
  });

  it('still sums to the number of calls when the shares do not divide it', () => {
    for (const n of [1, 7, 33, 299])
      expect(planTraffic({ calls: n, rate: 10, seed: 1 })).toHaveLength(n);
  });
});

describe('parseDemoArgs', () => {
  it('has defaults for ~1,500 calls over ~5 s', () => {
    expect(parseDemoArgs([])).toEqual({ calls: 1500, rate: 100, seed: 1, replicas: 1 });
    expect(
      parseDemoArgs(['--calls', '300', '--rate=100', '--seed', '0', '--replicas', '3']),
    ).toEqual({ calls: 300, rate: 100, seed: 0, replicas: 3 });
    expect(parseDemoArgs(['-h'])).toBe('help');
  });

  it('names the bad flag', () => {
    expect(() => parseDemoArgs(['--calls', '0'])).toThrow('--calls: must be a whole number ≥ 1');
    expect(() => parseDemoArgs(['--rate', '1.5'])).toThrow('--rate: must be a whole number ≥ 1');
    expect(() => parseDemoArgs(['--calls', ''])).toThrow('--calls');
    expect(() => parseDemoArgs(['--speed', '2'])).toThrow(/speed/);
    expect(() => parseDemoArgs(['--replicas', '6'])).toThrow(
      '--replicas: must be a whole number from 1 to 5 (got "6")',
    );
  });
});
