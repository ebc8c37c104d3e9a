import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FINAL_STATES } from '../../machines/states.js';
import { replay } from '../../src/replay/replay.js';

const WINDOW_MS = 2_000;
const START = Date.UTC(2026, 10, 27, 9);
const CALL_IDS = ['c1', 'c2', 'c3'] as const;
const FINAL = new Set<string>(FINAL_STATES);

type Step =
  | { kind: 'event'; type: 'call.reject' | 'call.answered' | 'call.terminated' | 'call.incoming' }
  | {
      kind: 'result';
      status: number | 'timeout' | 'network';
      retryAfterMs: number;
      latencyMs: number;
    };

const stepArb: fc.Arbitrary<{ callId: string; gap: number; step: Step }> = fc.record({
  callId: fc.constantFrom(...CALL_IDS),
  gap: fc.integer({ min: 0, max: 200 }),
  step: fc.oneof(
    fc.record({
      kind: fc.constant('event' as const),
      type: fc.constantFrom(
        'call.reject' as const,
        'call.reject' as const,
        'call.answered' as const,
        'call.terminated' as const,
        'call.incoming' as const,
      ),
    }),
    fc.record({
      kind: fc.constant('result' as const),
      status: fc.constantFrom(
        202,
        404,
        429,
        500,
        503,
        504,
        403,
        400,
        'timeout' as const,
        'network' as const,
      ),
      retryAfterMs: fc.integer({ min: 0, max: 1_500 }),
      latencyMs: fc.constantFrom(0, 0, 50, 400, 2_500),
    }),
  ),
});

/** Every call starts with its incoming event; then anything, in any order. */
function toLog(steps: { callId: string; gap: number; step: Step }[]) {
  let t = START;
  const lines: string[] = [];
  const incomingAt = new Map<string, number>();
  for (const callId of CALL_IDS) {
    incomingAt.set(callId, t);
    lines.push(JSON.stringify({ type: 'call.incoming', callId, at: new Date(t).toISOString() }));
  }
  for (const { callId, gap, step } of steps) {
    t += gap;
    const at = new Date(t).toISOString();
    lines.push(
      JSON.stringify(
        step.kind === 'event'
          ? { type: step.type, callId, at, ...(step.type === 'call.reject' && { reason: 'busy' }) }
          : {
              type: 'graph.result',
              callId,
              at,
              status: step.status,
              retryAfterMs: step.retryAfterMs,
              latencyMs: step.latencyMs,
            },
      ),
    );
  }
  return { lines, incomingAt };
}

describe('for any sequence of events and Graph outcomes', () => {
  it('accepts at most one reject per call, starts none after answered or past the deadline, and never changes a final state', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { maxLength: 60 }), async (steps) => {
        const { lines, incomingAt } = toLog(steps);
        const report = await replay(lines, { windowMs: WINDOW_MS, trace: true });

        for (const callId of CALL_IDS) {
          const requests = report.requests.filter((r) => r.callId === callId);
          const deadline = (incomingAt.get(callId) ?? 0) + WINDOW_MS;
          expect(requests.filter((r) => r.status === 202).length).toBeLessThanOrEqual(1);
          for (const request of requests) {
            expect(request.startedAt).toBeLessThan(deadline);
            expect(request.deadline).toBe(deadline);
          }
          const answeredStep = report.deliveries.find(
            (d) => d.callId === callId && d.type === 'call.answered',
          )?.step;
          if (answeredStep !== undefined) {
            expect(requests.every((r) => r.step < answeredStep)).toBe(true);
          }
          const states = report.calls[callId]?.transitions.map((t) => t.state) ?? [];
          const firstFinal = states.findIndex((s) => FINAL.has(s));
          expect(firstFinal).toBeGreaterThanOrEqual(0);
          expect(new Set(states.slice(firstFinal)).size).toBe(1);
        }
      }),
      { numRuns: 300 },
    );
  });
});
