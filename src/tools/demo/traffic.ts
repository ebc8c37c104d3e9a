import { randomUUID } from 'node:crypto';
import { FINAL_STATES, type FinalStateName } from '../../../machines/states.js';
import { seeded, type TrafficKind } from '../../replay/generate.js';
import type { FaultRule } from '../emulator/emulator.js';

/** The final states a demo call is planned to reach. */
export { FINAL_STATES };
export type FinalState = FinalStateName;

/** The replay generator's kinds, less the two the demo does not plan. */
export type DemoKind = Exclude<TrafficKind, 'answeredWhileRejecting' | 'rejectBeforeIncoming'>;

/** Share of each kind in parts per 100, and the final state it is built to reach. */
export const DEMO_MIX: Readonly<Record<DemoKind, { share: number; state: FinalState }>> = {
  rejected: { share: 45, state: 'rejected' },
  answered: { share: 15, state: 'answered' },
  timedOut: { share: 10, state: 'timedOut' },
  throttled: { share: 10, state: 'rejected' },
  unavailable: { share: 8, state: 'rejected' },
  gone: { share: 4, state: 'ended' },
  forbidden: { share: 3, state: 'failed' },
  hungUp: { share: 3, state: 'ended' },
  duplicated: { share: 2, state: 'rejected' },
};

export interface DemoCall {
  readonly n: number;
  readonly callId: string;
  readonly kind: DemoKind;
  readonly expected: FinalState;
  /** When `call.incoming` goes out, from the start of the traffic (ms). */
  readonly startMs: number;
  /** When the decision goes out, from the start of the traffic (ms). */
  readonly decideMs: number;
  readonly reason: 'none' | 'busy' | 'forbidden';
  /** What the Graph emulator does to this call's reject requests. */
  readonly faults: FaultRule[];
}

/** Exactly `calls × share` of each kind (largest remainders), in a seeded random order. */
function kindsFor(calls: number, rand: () => number): DemoKind[] {
  const entries = Object.entries(DEMO_MIX) as [DemoKind, { share: number }][];
  const exact = entries.map(([kind, { share }]) => ({ kind, x: (calls * share) / 100 }));
  const counts = new Map(exact.map(({ kind, x }) => [kind, Math.floor(x)]));
  let left = calls - [...counts.values()].reduce((a, b) => a + b, 0);
  for (const { kind } of [...exact].sort((a, b) => (b.x % 1) - (a.x % 1))) {
    if (left-- <= 0) break;
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  const kinds = [...counts].flatMap(([kind, count]) => Array<DemoKind>(count).fill(kind));
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j] as DemoKind, kinds[i] as DemoKind];
  }
  return kinds;
}

function faultsFor(kind: DemoKind, callId: string, rand: () => number): FaultRule[] {
  switch (kind) {
    case 'throttled':
      return [{ callId, fault: { kind: 'status', status: 429, retryAfterSeconds: 1 } }];
    case 'unavailable':
      return [{ callId, times: rand() < 0.5 ? 1 : 2, fault: { kind: 'status', status: 503 } }];
    case 'gone':
      return [{ callId, fault: { kind: 'notFound' } }];
    case 'forbidden':
      return [{ callId, fault: { kind: 'forbidden' } }];
    default:
      return [];
  }
}

const REASONS = ['busy', 'none', 'forbidden'] as const;

/** `calls` calls at `rate` a second, each decided 50–500 ms after it rings. */
export function planTraffic(options: { calls: number; rate: number; seed: number }): DemoCall[] {
  const rand = seeded(options.seed);
  return kindsFor(options.calls, rand).map((kind, n) => {
    const callId = randomUUID();
    const startMs = (n * 1000) / options.rate;
    return {
      n,
      callId,
      kind,
      expected: DEMO_MIX[kind].state,
      startMs,
      decideMs: startMs + 50 + Math.floor(rand() * 451),
      reason: REASONS[Math.floor(rand() * REASONS.length)] ?? 'busy',
      faults: faultsFor(kind, callId, rand),
    };
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
