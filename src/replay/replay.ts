import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { SimulatedClock } from 'xstate';
import type { CallStateName } from '../../machines/types.js';
import { canonicalCallId } from '../contract/call-id.js';
import { parseEnvelope } from '../contract/events.js';
import type { InvalidRecord, LifecycleRecord } from '../contract/records.js';
import { createCallRuntime } from '../runtime/call-runtime.js';
import { parseGraphResult, ScriptedGraph, type ScriptedRequest } from './script.js';

export interface ReplayOptions {
  /** The answer window (ms). */
  readonly windowMs: number;
  /** Each line that could not be used, as the service would report it. */
  readonly onInvalid?: (record: InvalidRecord & { line: number }) => void;
  /** Called every few thousand lines with the bytes read so far. */
  readonly onProgress?: (bytes: number) => void;
  /** Keep each call's lifecycle records (default true). */
  readonly keepTransitions?: boolean;
  /** Keep every delivered event in `deliveries`, in order (default false). */
  readonly trace?: boolean;
}

export interface CallOutcome {
  state: CallStateName;
  attempts: number;
  transitions: LifecycleRecord[];
}

/** A delivered event, in the order the runtime saw it. */
export interface Delivered {
  readonly step: number;
  readonly callId: string;
  readonly type: string;
  readonly at: number;
}

export interface ReplayReport {
  calls: Record<string, CallOutcome>;
  /** Lines read (blank lines excluded). */
  lines: number;
  invalid: number;
  /** Every reject request the scripted Graph received, in order. */
  requests: ScriptedRequest[];
  /** With `trace`: every delivered event. */
  deliveries: Delivered[];
}

/**
 * Replays a recorded event log through the call machine on one
 * `SimulatedClock`, with no NATS and no Graph. Each line's `at` moves the
 * clock forward (never back); due deadlines and back-offs fire at their exact
 * times in between; after the last line the clock runs on until every call
 * is final. `graph.result` lines script reject outcomes.
 */
export async function replay(
  lines: Iterable<string> | AsyncIterable<string>,
  options: ReplayOptions,
): Promise<ReplayReport> {
  const clock = new SimulatedClock();
  const keep = options.keepTransitions ?? true;
  const calls: Record<string, CallOutcome> = {};
  const deliveries: Delivered[] = [];
  let step = 0;
  const graph = new ScriptedGraph(
    () => clock.now(),
    () => step++,
  );
  const keepRecord = (record: LifecycleRecord) => {
    const call = calls[record.callId];
    if (call) {
      call.state = record.state;
      call.attempts = record.attempts ?? call.attempts;
      if (keep) call.transitions.push(record);
    } else {
      calls[record.callId] = {
        state: record.state,
        attempts: record.attempts ?? 0,
        transitions: keep ? [record] : [],
      };
    }
  };
  const runtime = createCallRuntime({
    clock,
    windowMs: options.windowMs,
    control: graph,
    onChanges(changes) {
      for (const change of changes) for (const record of change.records) keepRecord(record);
    },
  });
  graph.attach(runtime);

  const settle = async () => {
    while (graph.takeReady()) await new Promise((resolve) => setImmediate(resolve));
  };
  /** Move the clock to `target`, firing every timer due on the way at its own time. */
  const advanceTo = async (at: number) => {
    // A line that arrives late still sees every timer due up to the clock.
    const target = Math.max(at, clock.now());
    for (;;) {
      await settle();
      const next = runtime.scheduler.nextAt();
      if (next === undefined || next > target) break;
      if (next > clock.now()) clock.set(next);
      runtime.scheduler.fireDue();
    }
    if (target > clock.now()) clock.set(target);
  };
  /** Most lines need no await: nothing to settle and no timer due before them. */
  const isQuiet = (at: number) => {
    const target = Math.max(at, clock.now());
    const next = runtime.scheduler.nextAt();
    return !graph.hasReady() && (next === undefined || next > target);
  };

  let lineNo = 0;
  let counted = 0;
  let invalid = 0;
  let bytes = 0;
  let started = false;
  const reportInvalid = (text: string, error: string, rawId: unknown) => {
    invalid++;
    const id = typeof rawId === 'string' ? canonicalCallId(rawId) : undefined;
    options.onInvalid?.({
      subject: id?.ok ? `call.events.${id.callId}` : 'call.events',
      error,
      payload: text,
      at: new Date(clock.now()).toISOString(),
      line: lineNo,
    });
  };

  for await (const raw of lines) {
    lineNo++;
    bytes += raw.length + 1;
    if (options.onProgress && lineNo % 4096 === 0) options.onProgress(bytes);
    const text = raw.trim();
    if (text === '') continue;
    counted++;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      reportInvalid(text, `(message): must be JSON (${(error as Error).message})`, undefined);
      continue;
    }
    const rawId = (value as { callId?: unknown } | null)?.callId;
    if ((value as { type?: unknown } | null)?.type === 'graph.result') {
      const parsed = parseGraphResult(value);
      if (!parsed.ok) {
        reportInvalid(text, parsed.error, rawId);
        continue;
      }
      if (!started) {
        clock.set(parsed.value.at);
        started = true;
      }
      if (isQuiet(parsed.value.at)) {
        if (parsed.value.at > clock.now()) clock.set(parsed.value.at);
      } else await advanceTo(parsed.value.at);
      graph.enqueue(parsed.value);
      continue;
    }
    const parsed = parseEnvelope(value);
    if (!parsed.ok) {
      reportInvalid(text, parsed.error, rawId);
      continue;
    }
    const envelope = parsed.value;
    if (!started) {
      clock.set(envelope.at);
      started = true;
    }
    if (isQuiet(envelope.at)) {
      if (envelope.at > clock.now()) clock.set(envelope.at);
    } else await advanceTo(envelope.at);
    if (options.trace)
      deliveries.push({
        step: step++,
        callId: envelope.callId,
        type: envelope.type,
        at: clock.now(),
      });
    runtime.deliver(envelope);
  }
  options.onProgress?.(bytes);

  for (let next = runtime.scheduler.nextAt(); next !== undefined; ) {
    await advanceTo(next);
    next = runtime.scheduler.nextAt();
  }
  await settle();
  const live = runtime.liveCount;
  runtime.stop();
  if (live > 0) {
    throw new Error(`replay ended with ${live} call(s) not final: the clock ran out of timers`);
  }
  return { calls, lines: counted, invalid, requests: graph.requests, deliveries };
}

/** {@link replay} over a JSONL file. */
export function replayFile(path: string, options: ReplayOptions): Promise<ReplayReport> {
  const input = createReadStream(path, { encoding: 'utf8' });
  return replay(createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }), options);
}
