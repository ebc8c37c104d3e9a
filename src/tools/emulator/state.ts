import { callKey, type FaultBook, type FaultKind } from './faults.js';

/** One reject request as the emulator received and answered it. */
export interface ReceivedReject {
  /** 1, 2, … in arrival order. */
  readonly seq: number;
  readonly apiVersion: 'v1.0' | 'beta';
  /** As it appeared in the path. */
  readonly callId: string;
  readonly reason: string | null;
  readonly callbackUri: string | null;
  readonly clientRequestId: string | null;
  /** The bearer token it carried (this is a test double: it keeps what it saw). */
  readonly token: string | null;
  readonly contentType: string | null;
  /** The body as received. */
  readonly body: string;
  /** The `request-id` the emulator answered with. */
  readonly requestId: string;
  /** `Date.now()` on arrival. */
  readonly receivedAt: number;
  /** `performance.now()` on arrival; add `stats().timeOrigin` to compare across processes. */
  readonly receivedPerf: number;
  readonly fault: FaultKind | null;
  /** The status answered; `null` while held, or when dropped. */
  status: number | null;
  dropped: boolean;
  answeredAt: number | null;
  answeredPerf: number | null;
}

export interface EmulatorStats {
  readonly requests: number;
  /** Answers by status, plus `dropped` and `pending`. */
  readonly byStatus: Record<string, number>;
  /** Accepted rejects per call (canonical id): never more than 1. */
  readonly accepted: Record<string, number>;
  /** Queued faults left per call. */
  readonly queuedFaults: Record<string, number>;
  readonly held: number;
  readonly tokensIssued: number;
  /** `performance.timeOrigin` of the emulator's process. */
  readonly timeOrigin: number;
}

/** Everything the routes share; one per emulator. */
export interface EmulatorState {
  readonly records: ReceivedReject[];
  readonly accepted: Map<string, number>;
  readonly faults: FaultBook;
  /** Responses held by `slow` + `hold: true` faults, per call key. */
  readonly holds: Map<string, Set<() => void>>;
  tokensIssued: number;
}

export function createState(faults: FaultBook): EmulatorState {
  return { records: [], accepted: new Map(), faults, holds: new Map(), tokensIssued: 0 };
}

/** Graph's view of a reject: the first for a call is accepted, later ones find no call. */
export function acceptReject(state: EmulatorState, callId: string): 202 | 404 {
  const key = callKey(callId);
  if (state.accepted.has(key)) return 404;
  state.accepted.set(key, 1);
  return 202;
}

/** Wait until `release` is called for this call (or for all calls). */
export function hold(state: EmulatorState, callId: string): Promise<void> {
  const key = callKey(callId);
  return new Promise((resolve) => {
    const set = state.holds.get(key) ?? new Set();
    set.add(resolve);
    state.holds.set(key, set);
  });
}

/** Let held responses go: one call's, or every call's. Returns how many were released. */
export function release(state: EmulatorState, callId?: string): number {
  const keys = callId === undefined ? [...state.holds.keys()] : [callKey(callId)];
  let count = 0;
  for (const key of keys) {
    const set = state.holds.get(key);
    state.holds.delete(key);
    for (const resolve of set ?? []) {
      resolve();
      count++;
    }
  }
  return count;
}

export function stats(state: EmulatorState): EmulatorStats {
  const byStatus: Record<string, number> = {};
  for (const record of state.records) {
    const key = record.dropped
      ? 'dropped'
      : record.status === null
        ? 'pending'
        : String(record.status);
    byStatus[key] = (byStatus[key] ?? 0) + 1;
  }
  let held = 0;
  for (const set of state.holds.values()) held += set.size;
  return {
    requests: state.records.length,
    byStatus,
    accepted: Object.fromEntries(state.accepted),
    queuedFaults: state.faults.queued(),
    held,
    tokensIssued: state.tokensIssued,
    timeOrigin: performance.timeOrigin,
  };
}

/** Forget requests, acceptances, faults and tokens; release held responses. */
export function reset(state: EmulatorState): void {
  release(state);
  state.records.length = 0;
  state.accepted.clear();
  state.faults.clear();
  state.tokensIssued = 0;
}
