import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { SingleBar } from 'cli-progress';
import { LifecycleRecord } from '../../contract/records.js';
import type { Outcome } from './report.js';
import type { DemoCall } from './traffic.js';

const NOT_FINAL = new Set(['ringing', 'rejecting']);

/** What the lifecycle records said, per planned call. */
export interface Tracker {
  /** Final state and `performance.now()` of its arrival, per call id. */
  readonly finals: ReadonlyMap<string, { state: string; receivedPerf: number }>;
  /** How many records (refusals included) arrived for the call. */
  records(callId: string): number;
  isFinal(callId: string): boolean;
  /** How many planned calls have a final record. */
  readonly finished: number;
  /** Refused `call.reject`s seen. */
  readonly refusedRejects: number;
  /** Records for call ids the demo did not plan (none expected). */
  readonly strangers: number;
  /** Calls with final records of two different states (none expected). */
  readonly conflicting: ReadonlySet<string>;
  stop(): void;
}

/**
 * Follow `<prefix>.lifecycle.>`. Flushes, so the subscription is in place on
 * the server before the caller publishes anything.
 */
export async function trackLifecycle(
  nc: NatsConnection,
  prefix: string,
  planned: ReadonlySet<string>,
): Promise<Tracker> {
  const finals = new Map<string, { state: string; receivedPerf: number }>();
  const counts = new Map<string, number>();
  const conflicting = new Set<string>();
  let refusedRejects = 0;
  let strangers = 0;
  const sub: Subscription = nc.subscribe(`${prefix}.lifecycle.>`, {
    callback: (error, msg) => {
      if (error) return;
      const receivedPerf = performance.now();
      let parsed: ReturnType<typeof LifecycleRecord.safeParse>;
      try {
        parsed = LifecycleRecord.safeParse(msg.json());
      } catch {
        return;
      }
      if (!parsed.success) return;
      const record = parsed.data;
      if (!planned.has(record.callId)) {
        strangers++;
        return;
      }
      counts.set(record.callId, (counts.get(record.callId) ?? 0) + 1);
      if (record.refused) {
        if (record.refused.type === 'call.reject') refusedRejects++;
        return;
      }
      if (NOT_FINAL.has(record.state)) return;
      const first = finals.get(record.callId);
      if (!first) finals.set(record.callId, { state: record.state, receivedPerf });
      else if (first.state !== record.state) conflicting.add(record.callId);
    },
  });
  await nc.flush();
  return {
    finals,
    records: (callId) => counts.get(callId) ?? 0,
    isFinal: (callId) => finals.has(callId),
    get finished() {
      return finals.size;
    },
    get refusedRejects() {
      return refusedRejects;
    },
    conflicting,
    get strangers() {
      return strangers;
    },
    stop: () => sub.unsubscribe(),
  };
}

/**
 * Each planned call's outcome: its final state, and the latencies from its
 * `call.reject` (published at `rejectPublished`, `performance.now()`) to its
 * final record and to its first request at the Graph emulator (`received`,
 * on the same clock).
 */
export function outcomesOf(
  calls: readonly DemoCall[],
  tracker: Tracker,
  rejectPublished: ReadonlyMap<string, number>,
  received: ReadonlyArray<{ readonly callId: string; readonly receivedPerf: number }>,
): Outcome[] {
  const firstRequest = new Map<string, number>();
  for (const request of received) {
    if (!firstRequest.has(request.callId)) firstRequest.set(request.callId, request.receivedPerf);
  }
  return calls.map((call) => {
    const final = tracker.finals.get(call.callId);
    const sent = rejectPublished.get(call.callId);
    const requested = firstRequest.get(call.callId);
    return {
      callId: call.callId,
      kind: call.kind,
      expected: call.expected,
      ...(final && { actual: final.state }),
      ...(final && sent !== undefined && { rejectLatencyMs: final.receivedPerf - sent }),
      ...(requested !== undefined && sent !== undefined && { graphLatencyMs: requested - sent }),
    };
  });
}

/** A progress bar on a terminal, a line about every second otherwise (both on stderr). */
export function progress(total: number, label: string): { update(n: number): void; stop(): void } {
  if (process.stderr.isTTY) {
    const bar = new SingleBar({
      format: `${label} [{bar}] {percentage}% | {value}/{total} calls final | {duration}s`,
      stream: process.stderr,
      hideCursor: true,
    });
    bar.start(total, 0);
    return { update: (n) => bar.update(n), stop: () => bar.stop() };
  }
  let last = 0;
  let shown = -1;
  return {
    update(n) {
      const now = Date.now();
      if (n === shown && n === total) return;
      if (now - last < 1_000 && n < total) return;
      last = now;
      shown = n;
      process.stderr.write(`${label}: ${n}/${total} calls final\n`);
    },
    stop() {},
  };
}
