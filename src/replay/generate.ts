import type { CallStateName } from '../../machines/types.js';

/**
 * A realistic, reproducible mix of call traffic as a replay log, with the
 * outcome each call is built to reach. Used by the demo's sample log, the
 * 10,000-call replay test and the replay benchmark.
 */

export type TrafficKind =
  | 'rejected'
  | 'answered'
  | 'timedOut'
  | 'throttled'
  | 'unavailable'
  | 'gone'
  | 'forbidden'
  | 'hungUp'
  | 'answeredWhileRejecting'
  | 'duplicated'
  | 'rejectBeforeIncoming';

/** How often each kind appears, in parts per 100. */
export const TRAFFIC_MIX: Readonly<Record<TrafficKind, number>> = {
  rejected: 40,
  answered: 14,
  timedOut: 8,
  throttled: 10,
  unavailable: 6,
  gone: 4,
  forbidden: 3,
  hungUp: 5,
  answeredWhileRejecting: 3,
  duplicated: 4,
  rejectBeforeIncoming: 3,
};

export interface PlannedCall {
  readonly callId: string;
  readonly kind: TrafficKind;
  readonly state: CallStateName;
  readonly attempts: number;
}

export interface Traffic {
  /** JSONL lines in arrival order. */
  readonly lines: string[];
  readonly calls: PlannedCall[];
}

export interface TrafficOptions {
  readonly calls: number;
  readonly seed?: number;
  /** First incoming call (epoch ms). */
  readonly start?: number;
  /** Gap between two incoming calls (ms). */
  readonly intervalMs?: number;
}

/** mulberry32: a small seeded PRNG, so a seed always gives the same traffic. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickKind(r: number): TrafficKind {
  let sum = 0;
  for (const [kind, share] of Object.entries(TRAFFIC_MIX) as [TrafficKind, number][]) {
    sum += share / 100;
    if (r < sum) return kind;
  }
  return 'rejected';
}

function callIdOf(n: number, rand: () => number): string {
  const hex = Math.floor(rand() * 0xffffffff)
    .toString(16)
    .padStart(8, '0');
  const tail = n.toString(16).padStart(12, '0');
  return `${hex}-${tail.slice(0, 4)}-4${tail.slice(4, 7)}-a${tail.slice(7, 10)}-${tail.slice(10)}${hex}${hex.slice(0, 2)}`;
}

const REASONS = ['busy', 'none', 'forbidden'] as const;

/**
 * Every call starts ringing; its decision comes 0.2–3 s later, well inside a
 * 15 s window, so each kind's outcome does not depend on back-off jitter.
 *
 * @example
 * const { lines, calls } = generateTraffic({ calls: 100, seed: 7 });
 */
export function generateTraffic(options: TrafficOptions): Traffic {
  const rand = seeded(options.seed ?? 1);
  const start = options.start ?? Date.UTC(2026, 10, 27, 9, 0, 0);
  const interval = options.intervalMs ?? 2;
  const events: { at: number; seq: number; line: object }[] = [];
  const calls: PlannedCall[] = [];
  let seq = 0;
  const push = (at: number, line: object) => events.push({ at, seq: seq++, line });
  const iso = (ms: number) => new Date(ms).toISOString();

  for (let n = 0; n < options.calls; n++) {
    const callId = callIdOf(n, rand);
    const kind = pickKind(rand());
    const t0 = start + n * interval;
    const decideAt = t0 + 200 + Math.floor(rand() * 2800);
    const reason = REASONS[Math.floor(rand() * REASONS.length)] ?? 'busy';
    const incoming = {
      type: 'call.incoming',
      callId,
      at: iso(t0),
      tenantId: '8f7d9c1e-7b4a-4d2f-9c3e-1a2b3c4d5e6f',
      direction: 'incoming',
      source: { identity: { user: { id: `u${n}`, displayName: `Caller ${n}` } } },
    };
    const reject = { type: 'call.reject', callId, at: iso(decideAt), reason };
    const result = (status: number | 'timeout', extra: object = {}) =>
      push(t0, { type: 'graph.result', callId, at: iso(t0), status, ...extra });
    let state: CallStateName = 'rejected';
    let attempts = 1;

    if (kind === 'rejectBeforeIncoming') {
      push(t0 - 50, { ...reject, at: iso(t0 - 50) });
      push(t0, incoming);
      calls.push({ callId, kind, state, attempts });
      continue;
    }
    push(t0, incoming);
    switch (kind) {
      case 'rejected':
        push(decideAt, reject);
        break;
      case 'answered':
        push(decideAt, { type: 'call.answered', callId, at: iso(decideAt) });
        state = 'answered';
        attempts = 0;
        break;
      case 'timedOut':
        state = 'timedOut';
        attempts = 0;
        break;
      case 'throttled':
        result(429, { retryAfterMs: 500 + Math.floor(rand() * 1500) });
        push(decideAt, reject);
        attempts = 2;
        break;
      case 'unavailable':
        result(503);
        result(rand() < 0.5 ? 'timeout' : 502);
        push(decideAt, reject);
        attempts = 3;
        break;
      case 'gone':
        result(404, { code: '8522', message: 'Call not found.' });
        push(decideAt, reject);
        state = 'ended';
        break;
      case 'forbidden':
        result(403, { code: '7504', message: 'Insufficient enterprise tenant permissions' });
        push(decideAt, reject);
        state = 'failed';
        break;
      case 'hungUp':
        push(decideAt, { type: 'call.terminated', callId, at: iso(decideAt), code: 0 });
        state = 'ended';
        attempts = 0;
        break;
      case 'answeredWhileRejecting':
        result(202, { latencyMs: 800 });
        push(decideAt, reject);
        push(decideAt + 300, { type: 'call.answered', callId, at: iso(decideAt + 300) });
        state = 'answered';
        break;
      case 'duplicated':
        push(t0 + 10, { ...incoming, at: iso(t0) });
        push(decideAt, reject);
        push(decideAt + 5, { ...reject, at: iso(decideAt + 5) });
        break;
    }
    calls.push({ callId, kind, state, attempts });
  }
  events.sort((a, b) => a.at - b.at || a.seq - b.seq);
  return { lines: events.map((e) => JSON.stringify(e.line)), calls };
}
