import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { callMachine } from '../machines/call.machine.js';
import type { RejectOutcome, RejectRequest } from '../machines/types.js';
import { type CallEnvelope, parseEnvelopeText } from '../src/contract/events.js';
import { generateTraffic } from '../src/replay/generate.js';
import { replayFile } from '../src/replay/replay.js';
import { createCallRuntime } from '../src/runtime/call-runtime.js';
import { createFinalFilter } from '../src/runtime/final-filter.js';

const CALLS = 100_000;
const WINDOW_MS = 15_000;

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('run with node --expose-gc (npm run bench does)');
  collect();
  collect();
}

/** Replays a generated 100,000-call mixed log from a file, as `callgate replay` does. */
export async function replayRate(): Promise<Record<string, string | number>> {
  const traffic = generateTraffic({ calls: CALLS, seed: 2026 });
  const dir = mkdtempSync(join(tmpdir(), 'callgate-bench-'));
  const file = join(dir, 'traffic.jsonl');
  writeFileSync(file, `${traffic.lines.join('\n')}\n`);
  try {
    const started = performance.now();
    const report = await replayFile(file, { windowMs: WINDOW_MS, keepTransitions: false });
    const seconds = (performance.now() - started) / 1000;
    const lost = traffic.calls.filter((c) => report.calls[c.callId]?.state !== c.state).length;
    return {
      calls: CALLS,
      lines: report.lines,
      seconds: Number(seconds.toFixed(2)),
      'events/s': Math.round(report.lines / seconds),
      'calls/s': Math.round(CALLS / seconds),
      'calls not as planned': lost,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Heap per live ringing call: 100,000 calls delivered and none decided. */
export function heapPerRingingCall(): Record<string, string | number> {
  const clock = new SimulatedClock();
  const start = Date.UTC(2026, 10, 27, 9);
  clock.set(start);
  const envelopes: CallEnvelope[] = generateTraffic({ calls: CALLS, seed: 7 }).calls.map(
    (call) => ({ type: 'call.incoming', callId: call.callId, at: start }),
  );
  gc();
  const before = process.memoryUsage().heapUsed;
  const runtime = createCallRuntime({
    clock,
    windowMs: WINDOW_MS,
    control: { reject: () => Promise.resolve({ status: 202, maybeDelivered: false }) },
  });
  for (const envelope of envelopes) runtime.deliver(envelope);
  gc();
  const after = process.memoryUsage().heapUsed;
  const live = runtime.liveCount;
  runtime.stop();
  return {
    'live ringing calls': live,
    'heap per call (bytes)': Math.round((after - before) / live),
    'heap total (MB)': Number(((after - before) / 2 ** 20).toFixed(1)),
  };
}

/**
 * What remembering a final call costs: a whole tombstone in the runtime (its
 * call id, the tombstone and when it was made; the call's deadline timer has
 * fired), against the 32-bit hash of its id the service keeps once the
 * tombstone has left memory. Call ids are made inside each measurement, as
 * parsing a message makes them.
 */
export function heapPerFinalCall(): Record<string, string | number> {
  const start = Date.UTC(2026, 10, 27, 9);
  const settle = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };

  const beforeFilter = settle();
  const filter = createFinalFilter({ retentionMs: 3_600_000, now: () => start });
  for (let i = 0; i < CALLS; i++) filter.add(randomUUID());
  const hashes = settle() - beforeFilter;
  const hashed = filter.size;

  const clock = new SimulatedClock();
  clock.set(start);
  const before = settle();
  const runtime = createCallRuntime({
    clock,
    windowMs: WINDOW_MS,
    tombstoneMemoryMs: 3_600_000,
    control: { reject: () => Promise.resolve({ status: 202, maybeDelivered: false }) },
  });
  for (let i = 0; i < CALLS; i++) {
    const callId = randomUUID();
    runtime.deliver({ type: 'call.incoming', callId, at: start });
    runtime.deliver({ type: 'call.answered', callId, at: start });
  }
  clock.set(start + WINDOW_MS);
  runtime.scheduler.fireDue();
  const tombstones = settle() - before;
  const remembered = CALLS - runtime.liveCount;
  runtime.stop();
  return {
    'final calls': remembered,
    'heap per whole tombstone (bytes)': Math.round(tombstones / remembered),
    'heap per id in the final-call filter (bytes)': Math.round(hashes / hashed),
  };
}

/**
 * What xstate alone costs per call, for comparison: create an actor, send a
 * reject, let the promise answer 202, reach `rejected` (three events a call).
 * No parsing, no runtime, no records.
 */
export async function xstateFloor(): Promise<Record<string, string | number>> {
  const calls = 50_000;
  const clock = new SimulatedClock();
  const machine = callMachine.provide({
    actors: {
      rejectCall: fromPromise<RejectOutcome, RejectRequest>(() =>
        Promise.resolve({ status: 202, maybeDelivered: false, at: clock.now() }),
      ),
    },
  });
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const actor = createActor(machine, {
        clock,
        input: { callId: `c${i}`, at: 0, now: 0, windowMs: WINDOW_MS },
      });
      actor.start();
      actor.send({ type: 'call.reject', now: 1, reason: 'busy' });
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setImmediate(resolve));
  };
  await run(5_000);
  const started = performance.now();
  await run(calls);
  const seconds = (performance.now() - started) / 1000;
  return {
    'xstate alone: calls': calls,
    'calls/s': Math.round(calls / seconds),
    'µs per call': Number(((seconds * 1e6) / calls).toFixed(1)),
    'events/s at 3 events a call': Math.round((3 * calls) / seconds),
  };
}

/** Where a call's time goes in the runtime: parse, incoming, reject, outcome. */
export async function runtimePhases(): Promise<Record<string, string | number>> {
  const calls = 30_000;
  const start = Date.UTC(2026, 10, 27, 9);
  const measure = async () => {
    const clock = new SimulatedClock();
    clock.set(start);
    const runtime = createCallRuntime({
      clock,
      windowMs: WINDOW_MS,
      control: { reject: () => Promise.resolve({ status: 202, maybeDelivered: false }) },
    });
    const ids = Array.from({ length: calls }, (_, i) => `c${i}`);
    const texts = ids.map((callId) =>
      JSON.stringify({ type: 'call.incoming', callId, at: new Date(start).toISOString() }),
    );
    const µs = (from: number) => Number((((performance.now() - from) * 1000) / calls).toFixed(1));
    let t = performance.now();
    const envelopes = texts.map((text) => {
      const parsed = parseEnvelopeText(text);
      if (!parsed.ok) throw new Error(parsed.error);
      return parsed.value;
    });
    const parse = µs(t);
    t = performance.now();
    for (const envelope of envelopes) runtime.deliver(envelope);
    const incoming = µs(t);
    t = performance.now();
    for (const callId of ids)
      runtime.deliver({ type: 'call.reject', callId, at: start, reason: 'busy' });
    const reject = µs(t);
    t = performance.now();
    await new Promise((resolve) => setImmediate(resolve));
    const outcome = µs(t);
    runtime.stop();
    return { parse, incoming, reject, outcome };
  };
  await measure();
  const { parse, incoming, reject, outcome } = await measure();
  return {
    'runtime, µs per call: parse a line': parse,
    'call.incoming (create, rest)': incoming,
    'call.reject (restore, send)': reject,
    '202 → rejected': outcome,
  };
}

/** Heap of 100,000 running call actors, each on its own, for comparison with resting calls. */
export function heapPerRunningActor(): Record<string, string | number> {
  const n = 100_000;
  const clock = new SimulatedClock();
  gc();
  const before = process.memoryUsage().heapUsed;
  const actors = [];
  for (let i = 0; i < n; i++) {
    const actor = createActor(callMachine, {
      clock,
      input: { callId: `c${i}`, at: 0, now: 0, windowMs: WINDOW_MS },
    });
    actor.start();
    actors.push(actor);
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  const bytes = Math.round((after - before) / actors.length);
  for (const actor of actors) actor.stop();
  return { 'running actors (no runtime)': n, 'heap per actor (bytes)': bytes };
}
