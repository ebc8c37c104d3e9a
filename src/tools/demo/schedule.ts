import type { DemoCall } from './traffic.js';

/** The generator's time: `performance.now()` and `setTimeout`, or a test's own. */
export interface Clock {
  now(): number;
  /** Run `fn` once, `ms` from now; returns what cancels it. */
  after(ms: number, fn: () => void): () => void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(timer);
  },
};

/** The messages that follow a call's announcement. */
export type FollowUp = 'decision' | 'incomingAgain' | 'rejectAgain';

export interface ScheduleHooks {
  readonly clock: Clock;
  /**
   * Announce a call (Graph's notification to the webhook, or `call.incoming`
   * on NATS). Resolves once it was accepted: the webhook's 202, JetStream's ack.
   */
  announce(call: DemoCall): Promise<void>;
  /** Send one of a call's later messages. */
  follow(call: DemoCall, what: FollowUp): Promise<void>;
  /** How far behind the service is at `now` (ms). */
  lag(now: number): number;
  /** New calls wait while `lag` is over this (ms). */
  readonly maxLagMs: number;
  readonly signal: AbortSignal;
}

export interface ScheduleResult {
  /** Calls announced. */
  readonly started: number;
  /** Calls a second as planned, and as started: (calls − 1) over the span of their starts. */
  readonly offeredPerSecond: number | undefined;
  readonly sustainedPerSecond: number | undefined;
  /** First start → every message sent and accepted (ms). */
  readonly elapsedMs: number;
  /** How long new calls waited for the service (ms, in all). */
  readonly heldBackMs: number;
  /** The latest start, past its planned time (ms; held-back time included). */
  readonly maxLateMs: number;
  /** The service's lag, sampled every {@link LAG_SAMPLE_MS} while calls were placed. */
  readonly lagSamples: readonly number[];
}

/** While held back, how often the service's lag is looked at again (ms). */
const HOLD_POLL_MS = 5;
export const LAG_SAMPLE_MS = 10;

/** When each of a call's later messages is due, from the moment its announcement was accepted. */
export function followUpsOf(
  call: DemoCall,
  acceptedAt: number,
): Array<{ at: number; what: FollowUp }> {
  if (call.kind === 'timedOut') return [];
  const decideAt = acceptedAt + (call.decideMs - call.startMs);
  const due: Array<{ at: number; what: FollowUp }> = [{ at: decideAt, what: 'decision' }];
  if (call.kind === 'duplicated') {
    due.push(
      { at: acceptedAt + 10, what: 'incomingAgain' },
      { at: decideAt + 5, what: 'rejectAgain' },
    );
  }
  return due.sort((a, b) => a.at - b.at);
}

const perSecond = (count: number, spanMs: number) =>
  count > 1 && spanMs > 0 ? ((count - 1) * 1000) / spanMs : undefined;

/**
 * Run the traffic as a bot and Graph would: each call announced at its
 * planned time on the plan's clock (whatever earlier announcements are
 * still waiting for), and each call's decision its planned delay after
 * that call's announcement was accepted. New calls wait while the service
 * lags by more than `maxLagMs`, then go on at the planned pace. Resolves
 * once every message was sent and accepted (or at once on abort); rejects
 * with the first failure.
 *
 * @example
 * const result = await runSchedule(planTraffic({ calls: 10, rate: 100, seed: 1 }), {
 *   clock: realClock, maxLagMs: 250, signal, lag: () => 0,
 *   announce: (call) => webhook.place(call), follow: (call, what) => bus.send(call, what),
 * });
 */
export function runSchedule(
  calls: readonly DemoCall[],
  hooks: ScheduleHooks,
): Promise<ScheduleResult> {
  return new Promise((resolve, reject) => new TrafficRun(calls, hooks, resolve, reject).begin());
}

class TrafficRun {
  readonly #origin: number;
  /** Cancels of the pending timers. */
  readonly #timers = new Set<() => void>();
  /** When each call started, in order. */
  readonly #starts: number[] = [];
  readonly #lagSamples: number[] = [];
  /** How far the plan's clock was pushed back by holds. */
  #shift = 0;
  #heldSince: number | undefined;
  #heldBackMs = 0;
  #maxLateMs = 0;
  /** The next call to start. */
  #next = 0;
  /** Messages sent and not accepted yet, and follow-ups not sent yet. */
  #inFlight = 0;
  #done = false;
  readonly #finish = () => this.#end();

  constructor(
    private readonly calls: readonly DemoCall[],
    private readonly hooks: ScheduleHooks,
    private readonly resolve: (result: ScheduleResult) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.#origin = hooks.clock.now();
  }

  begin(): void {
    if (this.hooks.signal.aborted || this.calls.length === 0) {
      this.#end();
      return;
    }
    this.hooks.signal.addEventListener('abort', this.#finish, { once: true });
    this.#sample();
    this.#tick();
  }

  /** Start the calls that are due, unless the service lags; then wait for the next. */
  #tick(): void {
    const now = this.hooks.clock.now();
    if (this.hooks.lag(now) > this.hooks.maxLagMs) {
      this.#heldSince ??= now;
      this.#later(HOLD_POLL_MS, () => this.#tick());
      return;
    }
    if (this.#heldSince !== undefined) {
      // Go on at the planned pace from here, with no burst to catch up.
      this.#shift += now - this.#heldSince;
      this.#heldBackMs += now - this.#heldSince;
      this.#heldSince = undefined;
    }
    const dueAt = (call: DemoCall) => this.#origin + this.#shift + call.startMs;
    for (let call = this.calls[this.#next]; call && dueAt(call) <= now; ) {
      this.#start(call, now);
      call = this.calls[++this.#next];
    }
    const upcoming = this.calls[this.#next];
    if (upcoming) this.#later(dueAt(upcoming) - now, () => this.#tick());
    else if (this.#inFlight === 0) this.#end();
  }

  /** Announce the call, not waiting for it; its follow-ups are timed from its acceptance. */
  #start(call: DemoCall, now: number): void {
    this.#starts.push(now);
    this.#maxLateMs = Math.max(this.#maxLateMs, now - (this.#origin + call.startMs));
    this.#track(
      () => this.hooks.announce(call),
      () => {
        const acceptedAt = this.hooks.clock.now();
        for (const { at, what } of followUpsOf(call, acceptedAt)) {
          this.#inFlight++;
          this.#later(at - acceptedAt, () => {
            this.#track(() => this.hooks.follow(call, what));
            this.#settled();
          });
        }
      },
    );
  }

  /** Count `sending` in flight until it resolves; the first failure ends the run. */
  #track(sending: () => Promise<void>, accepted?: () => void): void {
    this.#inFlight++;
    let sent: Promise<void>;
    try {
      sent = sending();
    } catch (error) {
      sent = Promise.reject(error);
    }
    sent.then(
      () => {
        if (this.#done) return;
        accepted?.();
        this.#settled();
      },
      (error: unknown) => this.#fail(error),
    );
  }

  #settled(): void {
    if (--this.#inFlight === 0 && this.#next >= this.calls.length) this.#end();
  }

  #sample(): void {
    if (this.#next >= this.calls.length) return;
    this.#lagSamples.push(this.hooks.lag(this.hooks.clock.now()));
    this.#later(LAG_SAMPLE_MS, () => this.#sample());
  }

  #later(ms: number, fn: () => void): void {
    const cancel = this.hooks.clock.after(ms, () => {
      this.#timers.delete(cancel);
      fn();
    });
    this.#timers.add(cancel);
  }

  #stop(): void {
    this.#done = true;
    for (const cancel of this.#timers) cancel();
    this.#timers.clear();
    this.hooks.signal.removeEventListener('abort', this.#finish);
  }

  #fail(error: unknown): void {
    if (this.#done) return;
    this.#stop();
    this.reject(error);
  }

  #end(): void {
    if (this.#done) return;
    this.#stop();
    const now = this.hooks.clock.now();
    if (this.#heldSince !== undefined) this.#heldBackMs += now - this.#heldSince;
    const starts = this.#starts;
    const planned = this.calls.slice(0, starts.length).map((call) => call.startMs);
    this.resolve({
      started: starts.length,
      offeredPerSecond: perSecond(planned.length, (planned.at(-1) ?? 0) - (planned[0] ?? 0)),
      sustainedPerSecond: perSecond(starts.length, (starts.at(-1) ?? 0) - (starts[0] ?? 0)),
      elapsedMs: now - this.#origin,
      heldBackMs: this.#heldBackMs,
      maxLateMs: this.#maxLateMs,
      lagSamples: this.#lagSamples,
    });
  }
}
