import { describe, expect, it } from 'vitest';
import { generateTraffic, TRAFFIC_MIX } from '../../src/replay/generate.js';
import { replay } from '../../src/replay/replay.js';

describe('a generated 10,000-call mixed log', () => {
  const traffic = generateTraffic({ calls: 10_000, seed: 42 });

  it('contains every kind of traffic', () => {
    const kinds = new Set(traffic.calls.map((call) => call.kind));
    expect([...kinds].sort()).toEqual(Object.keys(TRAFFIC_MIX).sort());
  });

  it('brings every call to the state and attempt count it was built for', async () => {
    const report = await replay(traffic.lines, { windowMs: 15_000, keepTransitions: false });
    const outcomes = Object.fromEntries(
      Object.entries(report.calls).map(([id, call]) => [id, [call.state, call.attempts]]),
    );
    const planned = Object.fromEntries(
      traffic.calls.map((call) => [call.callId, [call.state, call.attempts]]),
    );
    expect(report.invalid).toBe(0);
    expect(outcomes).toEqual(planned);
  });

  it('never sends more than one request that Graph accepts for a call', async () => {
    const report = await replay(traffic.lines, { windowMs: 15_000, keepTransitions: false });
    const accepted = new Map<string, number>();
    for (const request of report.requests) {
      if (request.status === 202)
        accepted.set(request.callId, (accepted.get(request.callId) ?? 0) + 1);
    }
    expect(Math.max(...accepted.values())).toBe(1);
  });
});
