import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { SimulatedClock } from 'xstate';
import type { CallStateName } from '../../machines/types.js';
import { canonicalCallId } from '../contract/call-id.js';
import { type CallEnvelope, parseEnvelope } from '../contract/events.js';
import type { Parsed } from '../contract/json.js';
import { parseJson } from '../contract/json.js';
import type { InvalidRecord, LifecycleRecord } from '../contract/records.js';
import { type CallRuntime, createCallRuntime } from '../runtime/call-runtime.js';
import {
  type GraphResult,
  parseGraphResult,
  ScriptedGraph,
  type ScriptedRequest,
} from './script.js';

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
  const replayer = new Replayer(options);
  for await (const raw of lines) {
    const waiting = replayer.line(raw);
    // Most lines need no await: nothing to settle and no timer due before them.
    if (waiting) await waiting;
  }
  return replayer.finish();
}

/** One replay: the runtime on a simulated clock, the scripted Graph, and what came out. */
class Replayer {
  readonly #options: ReplayOptions;
  readonly #clock = new SimulatedClock();
  readonly #graph: ScriptedGraph;
  readonly #runtime: CallRuntime;
  readonly #calls: Record<string, CallOutcome> = {};
  readonly #deliveries: Delivered[] = [];
  #step = 0;
  #lineNo = 0;
  #counted = 0;
  #invalid = 0;
  #bytes = 0;
  #started = false;

  constructor(options: ReplayOptions) {
    this.#options = options;
    this.#graph = new ScriptedGraph(
      () => this.#clock.now(),
      () => this.#step++,
    );
    this.#runtime = createCallRuntime({
      clock: this.#clock,
      windowMs: options.windowMs,
      control: this.#graph,
      onChanges: (changes) => {
        for (const change of changes) for (const record of change.records) this.#keep(record);
      },
    });
    this.#graph.attach(this.#runtime);
  }

  /** Read one line; returns a promise when the clock had to move through due timers first. */
  line(raw: string): Promise<void> | undefined {
    this.#lineNo++;
    this.#bytes += raw.length + 1;
    if (this.#options.onProgress && this.#lineNo % 4096 === 0)
      this.#options.onProgress(this.#bytes);
    const text = raw.trim();
    if (text === '') return undefined;
    this.#counted++;
    const item = this.#parse(text);
    if (!item) return undefined;
    if (!this.#started) {
      this.#clock.set(item.at);
      this.#started = true;
    }
    if (!this.#isQuiet(item.at)) return this.#advanceTo(item.at).then(() => this.#apply(item));
    if (item.at > this.#clock.now()) this.#clock.set(item.at);
    this.#apply(item);
    return undefined;
  }

  /** Run the clock on until every call is final. */
  async finish(): Promise<ReplayReport> {
    this.#options.onProgress?.(this.#bytes);
    const { scheduler } = this.#runtime;
    for (let next = scheduler.nextAt(); next !== undefined; next = scheduler.nextAt()) {
      await this.#advanceTo(next);
    }
    await this.#settle();
    const live = this.#runtime.liveCount;
    this.#runtime.stop();
    if (live > 0) {
      throw new Error(`replay ended with ${live} call(s) not final: the clock ran out of timers`);
    }
    return {
      calls: this.#calls,
      lines: this.#counted,
      invalid: this.#invalid,
      requests: this.#graph.requests,
      deliveries: this.#deliveries,
    };
  }

  #parse(text: string): Line | undefined {
    const json = parseJson(text);
    if (!json.ok) {
      this.#reportInvalid(text, json.error, undefined);
      return undefined;
    }
    const value = json.value;
    const fields = value as { callId?: unknown; type?: unknown } | null;
    const parsed =
      fields?.type === 'graph.result'
        ? mapOk(parseGraphResult(value), (result) => ({
            kind: 'result' as const,
            at: result.at,
            result,
          }))
        : mapOk(parseEnvelope(value), (envelope) => ({
            kind: 'event' as const,
            at: envelope.at,
            envelope,
          }));
    if (parsed.ok) return parsed.value;
    this.#reportInvalid(text, parsed.error, fields?.callId);
    return undefined;
  }

  #apply(item: Line): void {
    if (item.kind === 'result') {
      this.#graph.enqueue(item.result);
      return;
    }
    const { envelope } = item;
    if (this.#options.trace) {
      const { callId, type } = envelope;
      this.#deliveries.push({ step: this.#step++, callId, type, at: this.#clock.now() });
    }
    this.#runtime.deliver(envelope);
  }

  /** Let settled reject requests reach their actors. */
  async #settle(): Promise<void> {
    while (this.#graph.takeReady()) await new Promise((resolve) => setImmediate(resolve));
  }

  /** Move the clock to `at`, firing every timer due on the way at its own time. */
  async #advanceTo(at: number): Promise<void> {
    const clock = this.#clock;
    // A line that arrives late still sees every timer due up to the clock.
    const target = Math.max(at, clock.now());
    for (;;) {
      await this.#settle();
      const next = this.#runtime.scheduler.nextAt();
      if (next === undefined || next > target) break;
      if (next > clock.now()) clock.set(next);
      this.#runtime.scheduler.fireDue();
    }
    if (target > clock.now()) clock.set(target);
  }

  /** Nothing to settle and no timer due up to `at`. */
  #isQuiet(at: number): boolean {
    const target = Math.max(at, this.#clock.now());
    const next = this.#runtime.scheduler.nextAt();
    return !this.#graph.hasReady() && (next === undefined || next > target);
  }

  #keep(record: LifecycleRecord): void {
    const call = this.#calls[record.callId];
    const keep = this.#options.keepTransitions ?? true;
    if (call) {
      call.state = record.state;
      call.attempts = record.attempts ?? call.attempts;
      if (keep) call.transitions.push(record);
    } else {
      this.#calls[record.callId] = {
        state: record.state,
        attempts: record.attempts ?? 0,
        transitions: keep ? [record] : [],
      };
    }
  }

  #reportInvalid(text: string, error: string, rawId: unknown): void {
    this.#invalid++;
    const id = typeof rawId === 'string' ? canonicalCallId(rawId) : undefined;
    this.#options.onInvalid?.({
      subject: id?.ok ? `call.events.${id.callId}` : 'call.events',
      error,
      payload: text,
      at: new Date(this.#clock.now()).toISOString(),
      line: this.#lineNo,
    });
  }
}

/** One usable line: an event to deliver, or a scripted Graph outcome. */
type Line =
  | { readonly kind: 'event'; readonly at: number; readonly envelope: CallEnvelope }
  | { readonly kind: 'result'; readonly at: number; readonly result: GraphResult };

function mapOk<T, U>(parsed: Parsed<T>, map: (value: T) => U): Parsed<U> {
  return parsed.ok ? { ok: true, value: map(parsed.value) } : parsed;
}

/** {@link replay} over a JSONL file. */
export function replayFile(path: string, options: ReplayOptions): Promise<ReplayReport> {
  const input = createReadStream(path, { encoding: 'utf8' });
  return replay(createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }), options);
}
