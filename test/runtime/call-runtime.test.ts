import { describe, expect, it } from 'vitest';
import { type AnyActorRef, SimulatedClock } from 'xstate';
import { backoffDelay } from '../../machines/retry.js';
import { whyRefused } from '../../machines/states.js';
import type { RejectOutcome, RejectReason, RejectRequest } from '../../machines/types.js';
import type { CallEnvelope } from '../../src/contract/events.js';
import { LifecycleRecord } from '../../src/contract/records.js';
import {
  type CallChange,
  type CallRuntime,
  createCallRuntime,
  type PersistedCall,
} from '../../src/runtime/call-runtime.js';
import type { CallControl } from '../../src/runtime/ports.js';

const CALL_ID = '57dab8b1-894c-409a-b240-bd8beae78896';
const T0 = Date.parse('2026-11-27T09:00:00.000Z');
const WINDOW_MS = 15_000;
const DEADLINE = T0 + WINDOW_MS;

type Outcome = Omit<RejectOutcome, 'at'>;
const ACCEPTED: Outcome = { status: 202, maybeDelivered: false };

interface SentRequest {
  readonly request: RejectRequest;
  readonly signal: AbortSignal;
  readonly settle: (outcome: Outcome) => void;
}

/**
 * A runtime on a simulated clock set to `now`. Graph answers the scripted
 * outcomes in order (202 once they run out); `'pending'` leaves a request in
 * flight until the test settles it.
 */
function harness(
  options: {
    now?: number;
    outcomes?: Array<Outcome | 'pending'>;
    idleAwake?: number;
    keepAwake?: boolean;
  } = {},
) {
  const clock = new SimulatedClock();
  clock.set(options.now ?? T0);
  const script = [...(options.outcomes ?? [])];
  const records: LifecycleRecord[] = [];
  const sent: SentRequest[] = [];
  const warnings: Array<{ fields: object; message: string }> = [];
  const control: CallControl = {
    reject(request, signal) {
      const next = script.shift() ?? ACCEPTED;
      return new Promise((resolve) => {
        sent.push({ request, signal, settle: resolve });
        if (next !== 'pending') resolve(next);
      });
    },
  };
  const changes: CallChange<undefined>[] = [];
  const actors: string[] = [];
  const runtime = createCallRuntime({
    clock,
    windowMs: WINDOW_MS,
    control,
    onChanges: (step) => {
      changes.push(...step);
      for (const change of step) {
        for (const record of change.records) records.push(LifecycleRecord.parse(record));
      }
    },
    log: { warn: (fields, message) => warnings.push({ fields, message }), error: () => {} },
    idleAwake: options.idleAwake ?? 0,
    ...(options.keepAwake && { keepAwake: true }),
    // Every actor the runtime starts: a call that rests is started again when woken.
    inspect: (event) => {
      const { id } = event.actorRef as AnyActorRef;
      if (event.type === '@xstate.actor' && id !== 'reject') actors.push(id);
    },
  });
  return {
    clock,
    runtime,
    records,
    changes,
    actors,
    sent,
    warnings,
    states: () => records.map((r) => r.state),
  };
}

/** What a store would write for the call now: its snapshot. */
function snapshotOf<M>(runtime: CallRuntime<M>, callId = CALL_ID): PersistedCall | undefined {
  const form = runtime.storedFormOf(callId);
  return form && 'snapshot' in form ? form.snapshot : undefined;
}

function incoming(at = T0): CallEnvelope {
  return { type: 'call.incoming', callId: CALL_ID, at };
}

function reject(at: number, reason: RejectReason = 'busy', callbackUri?: string): CallEnvelope {
  return { type: 'call.reject', callId: CALL_ID, at, reason, ...(callbackUri && { callbackUri }) };
}

function answered(at: number): CallEnvelope {
  return { type: 'call.answered', callId: CALL_ID, at };
}

function terminated(at: number): CallEnvelope {
  return { type: 'call.terminated', callId: CALL_ID, at, code: '0', message: 'bye' };
}

/** Let settled reject requests reach their actors. */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const iso = (ms: number) => new Date(ms).toISOString();

/** What a snapshot store does to a persisted call. */
function roundTrip(snapshot: PersistedCall | undefined): PersistedCall {
  expect(snapshot).toBeDefined();
  return JSON.parse(JSON.stringify(snapshot)) as PersistedCall;
}

describe('lifecycle records', () => {
  it('publishes ringing, rejecting and rejected in order, each naming the previous state', async () => {
    const { clock, runtime, records } = harness();

    runtime.deliver(incoming());
    clock.set(T0 + 1_000);
    runtime.deliver(reject(T0 + 1_000));
    await flush();

    expect(records).toEqual([
      { callId: CALL_ID, state: 'ringing', previous: null, at: iso(T0) },
      {
        callId: CALL_ID,
        state: 'rejecting',
        previous: 'ringing',
        at: iso(T0 + 1_000),
        reason: 'busy',
        attempts: 1,
      },
      {
        callId: CALL_ID,
        state: 'rejected',
        previous: 'rejecting',
        at: iso(T0 + 1_000),
        reason: 'busy',
        attempts: 1,
      },
    ]);
    expect(runtime.stateOf(CALL_ID)).toBe('rejected');
    expect(runtime.liveCount).toBe(0);
  });

  it('sends Graph the reject with the deadline and the time left', () => {
    const { clock, runtime, sent } = harness({ outcomes: ['pending'] });
    runtime.deliver(incoming());
    clock.set(T0 + 4_000);

    runtime.deliver(reject(T0 + 4_000, 'forbidden', 'https://bot.contoso.com/cb'));

    expect(sent.map((s) => s.request)).toEqual([
      {
        callId: CALL_ID,
        reason: 'forbidden',
        callbackUri: 'https://bot.contoso.com/cb',
        attempt: 1,
        deadline: DEADLINE,
        remainingMs: WINDOW_MS - 4_000,
      },
    ]);
    expect(runtime.inFlight).toBe(1);
  });

  it('times out exactly at the deadline', () => {
    const { clock, runtime, records, states } = harness();
    runtime.deliver(incoming());

    clock.set(DEADLINE - 1);
    expect(states()).toEqual(['ringing']);

    clock.set(DEADLINE);
    expect(records.at(-1)).toEqual({
      callId: CALL_ID,
      state: 'timedOut',
      previous: 'ringing',
      at: iso(DEADLINE),
    });
  });

  it('measures the window from the incoming event, not from when it was delivered', () => {
    const { clock, runtime, records } = harness({ now: T0 + 3_000 });
    runtime.deliver(incoming(T0));

    clock.set(DEADLINE);

    expect(records.at(-1)).toMatchObject({ state: 'timedOut', at: iso(DEADLINE) });
  });

  it('publishes failed with the error Graph gave', async () => {
    const { runtime, records } = harness({
      outcomes: [{ status: 403, maybeDelivered: false, code: '7504', message: 'Forbidden' }],
    });
    runtime.deliver(incoming());

    runtime.deliver(reject(T0));
    await flush();

    expect(records.at(-1)).toMatchObject({
      state: 'failed',
      previous: 'rejecting',
      attempts: 1,
      error: 'Graph refused the reject: 403 7504 Forbidden',
    });
  });

  it('publishes ended with the resultInfo when the caller hangs up first', () => {
    const { runtime, records } = harness();
    runtime.deliver(incoming());

    expect(runtime.deliver(terminated(T0 + 500)).delivery).toBe('applied');

    expect(records.at(-1)).toMatchObject({
      state: 'ended',
      previous: 'ringing',
      error: 'the call ended (0 bye)',
    });
  });

  it('retries after a 503 at the back-off time and counts the attempts', async () => {
    const { clock, runtime, records, sent } = harness({
      outcomes: [{ status: 503, maybeDelivered: false }],
    });
    runtime.deliver(incoming());
    runtime.deliver(reject(T0));
    await flush();
    const retryAt = T0 + backoffDelay(CALL_ID, 1);
    expect(runtime.scheduler.nextAt()).toBe(retryAt);

    clock.set(retryAt - 1);
    expect(sent).toHaveLength(1);

    clock.set(retryAt);
    await flush();

    expect(sent.map((s) => s.request.attempt)).toEqual([1, 2]);
    expect(records.map((r) => [r.state, r.attempts])).toEqual([
      ['ringing', undefined],
      ['rejecting', 1],
      ['rejected', 2],
    ]);
    expect(runtime.inFlight).toBe(0);
  });
});

describe('answered while a reject is in flight', () => {
  it('aborts the request and ends answered', () => {
    const { runtime, records, sent } = harness({ outcomes: ['pending'] });
    runtime.deliver(incoming());
    runtime.deliver(reject(T0 + 1_000));

    expect(runtime.deliver(answered(T0 + 1_200)).delivery).toBe('applied');

    expect(sent[0]?.signal.aborted).toBe(true);
    expect(records.at(-1)).toMatchObject({ state: 'answered', previous: 'rejecting' });
  });

  it('does not publish rejected when the aborted request still reports 202', async () => {
    const { runtime, states, sent } = harness({ outcomes: ['pending'] });
    runtime.deliver(incoming());
    runtime.deliver(reject(T0 + 1_000));
    runtime.deliver(answered(T0 + 1_200));

    sent[0]?.settle(ACCEPTED);
    await flush();

    expect(states()).toEqual(['ringing', 'rejecting', 'answered']);
    expect(runtime.stateOf(CALL_ID)).toBe('answered');
  });
});

describe('events that arrive before their call', () => {
  it('holds them and applies them after the call.incoming', () => {
    const { runtime, states, sent } = harness();

    expect(runtime.deliver(reject(T0 + 100)).delivery).toBe('held');
    expect(states()).toEqual([]);
    expect(sent).toEqual([]);

    runtime.deliver(incoming(T0));

    expect(states()).toEqual(['ringing', 'rejecting']);
    expect(sent).toHaveLength(1);
  });

  it('drops them once the window of a call with that id could no longer be open', () => {
    const { clock, runtime, states, sent, warnings } = harness();
    runtime.deliver(reject(T0));

    clock.set(T0 + WINDOW_MS);
    runtime.deliver(incoming(T0 + WINDOW_MS));

    expect(warnings).toEqual([
      {
        fields: { callId: CALL_ID, type: 'call.reject' },
        message: 'dropped an event for a call that never came',
      },
    ]);
    expect(states()).toEqual(['ringing']);
    expect(sent).toEqual([]);
  });

  it('still applies them when the call.incoming comes just inside that window', () => {
    const { clock, runtime, states } = harness();
    runtime.deliver(answered(T0));

    clock.set(T0 + WINDOW_MS - 1);
    runtime.deliver(incoming(T0 + WINDOW_MS - 1));

    expect(states()).toEqual(['ringing', 'answered']);
  });
});

describe('repeated events and events for final calls', () => {
  it('publishes nothing for a repeated call.incoming', () => {
    const { runtime, records } = harness();
    runtime.deliver(incoming());

    expect(runtime.deliver(incoming(T0 + 10)).delivery).toBe('duplicate');

    expect(records).toHaveLength(1);
    expect(runtime.liveCount).toBe(1);
  });

  it.each([
    ['call.incoming', incoming(T0 + 2_000)],
    ['call.answered', answered(T0 + 2_000)],
    ['call.terminated', terminated(T0 + 2_000)],
  ])('publishes nothing for a %s to a call that is already final', (_, envelope) => {
    const { runtime, records } = harness();
    runtime.deliver(incoming());
    runtime.deliver(answered(T0 + 1_000));
    const before = records.length;

    expect(runtime.deliver(envelope).delivery).toBe('ignoredFinal');

    expect(records).toHaveLength(before);
  });

  it('reports a reject to an answered call as refused, with why', () => {
    const { clock, runtime, records } = harness();
    runtime.deliver(incoming());
    runtime.deliver(answered(T0 + 1_000));
    clock.set(T0 + 2_000);

    expect(runtime.deliver(reject(T0 + 2_000)).delivery).toBe('refused');

    expect(records.at(-1)).toEqual({
      callId: CALL_ID,
      state: 'answered',
      previous: 'answered',
      at: iso(T0 + 2_000),
      error: `call.reject refused: ${whyRefused('answered')}`,
      refused: { type: 'call.reject', why: whyRefused('answered') },
    });
  });

  it('reports a reject to a call that Graph has rejected as refused, before its deadline', async () => {
    const { runtime, records, sent } = harness();
    runtime.deliver(incoming());
    runtime.deliver(reject(T0 + 1_000));
    await flush();

    expect(runtime.deliver(reject(T0 + 2_000, 'none')).delivery).toBe('refused');

    expect(records.at(-1)).toMatchObject({
      state: 'rejected',
      previous: 'rejected',
      refused: { type: 'call.reject', why: whyRefused('rejected') },
    });
    expect(sent).toHaveLength(1);
    expect(runtime.liveCount).toBe(0);
  });

  it('reports a reject to a timed-out call as refused', () => {
    const { clock, runtime, records } = harness();
    runtime.deliver(incoming());
    clock.set(DEADLINE);

    expect(runtime.deliver(reject(DEADLINE)).delivery).toBe('refused');

    expect(records.at(-1)?.refused).toEqual({
      type: 'call.reject',
      why: whyRefused('timedOut'),
    });
  });

  it('reports a second reject while the first is in flight as refused, and sends nothing', () => {
    const { runtime, records, sent } = harness({ outcomes: ['pending'] });
    runtime.deliver(incoming());
    runtime.deliver(reject(T0 + 1_000));

    expect(runtime.deliver(reject(T0 + 1_500, 'none')).delivery).toBe('refused');

    expect(sent).toHaveLength(1);
    expect(records.at(-1)).toMatchObject({
      state: 'rejecting',
      previous: 'rejecting',
      reason: 'busy',
      attempts: 1,
      refused: { type: 'call.reject', why: 'a reject is already under way' },
    });
  });
});

describe('persist and restore', () => {
  it('times out a restored ringing call at its original deadline', () => {
    const first = harness();
    first.runtime.deliver(incoming(T0));
    const persisted = roundTrip(snapshotOf(first.runtime));

    const second = harness({ now: T0 + 5_000 });
    second.runtime.restore(persisted);
    expect(second.runtime.stateOf(CALL_ID)).toBe('ringing');
    expect(second.records).toEqual([]);

    second.clock.set(DEADLINE - 1);
    second.runtime.scheduler.fireDue();
    expect(second.records).toEqual([]);

    second.clock.set(DEADLINE);
    second.runtime.scheduler.fireDue();
    expect(second.records).toEqual([
      { callId: CALL_ID, state: 'timedOut', previous: 'ringing', at: iso(DEADLINE) },
    ]);

    second.clock.set(T0 + 5_000 + WINDOW_MS);
    second.runtime.scheduler.fireDue();
    expect(second.records).toHaveLength(1);
  });

  it('retries a call restored while backing off at the original retry time', async () => {
    const retryAfterMs = 8_000;
    const first = harness({
      outcomes: [{ status: 503, maybeDelivered: false, retryAfterMs }],
    });
    first.runtime.deliver(incoming(T0));
    first.clock.set(T0 + 1_000);
    first.runtime.deliver(reject(T0 + 1_000));
    await flush();
    const retryAt = T0 + 1_000 + backoffDelay(CALL_ID, 1, retryAfterMs);
    const persisted = roundTrip(snapshotOf(first.runtime));
    expect(persisted.context.retryAt).toBe(retryAt);

    const second = harness({ now: T0 + 5_000 });
    second.runtime.restore(persisted);
    second.clock.set(retryAt - 1);
    second.runtime.scheduler.fireDue();
    expect(second.sent).toEqual([]);

    second.clock.set(retryAt);
    second.runtime.scheduler.fireDue();
    await flush();

    expect(second.sent.map((s) => s.request)).toEqual([
      {
        callId: CALL_ID,
        reason: 'busy',
        callbackUri: null,
        attempt: 2,
        deadline: DEADLINE,
        remainingMs: DEADLINE - retryAt,
      },
    ]);
    expect(second.records).toEqual([
      {
        callId: CALL_ID,
        state: 'rejected',
        previous: 'rejecting',
        at: iso(retryAt),
        reason: 'busy',
        attempts: 2,
      },
    ]);
  });

  it('sends a request that was in flight again, and counts it as a new attempt', () => {
    const first = harness({ outcomes: ['pending'] });
    first.runtime.deliver(incoming(T0));
    first.clock.set(T0 + 1_000);
    first.runtime.deliver(reject(T0 + 1_000));
    const persisted = roundTrip(snapshotOf(first.runtime));
    expect(persisted.context.attempts).toBe(1);

    const second = harness({ now: T0 + 5_000, outcomes: ['pending'] });
    second.runtime.restore(persisted);

    expect(second.sent).toHaveLength(1);
    expect(second.sent[0]?.request).toEqual({
      callId: CALL_ID,
      reason: 'busy',
      callbackUri: null,
      attempt: 2,
      deadline: DEADLINE,
      remainingMs: DEADLINE - (T0 + 5_000),
    });
    expect(snapshotOf(second.runtime)?.context).toMatchObject({
      attempts: 2,
      outcomeUnknown: true,
    });
  });

  it('treats a 404 to the re-sent request as proof that the first one went through', async () => {
    const first = harness({ outcomes: ['pending'] });
    first.runtime.deliver(incoming(T0));
    first.clock.set(T0 + 1_000);
    first.runtime.deliver(reject(T0 + 1_000));
    const persisted = roundTrip(snapshotOf(first.runtime));

    const second = harness({
      now: T0 + 5_000,
      outcomes: [{ status: 404, maybeDelivered: false, code: 'NotFound' }],
    });
    second.runtime.restore(persisted);
    await flush();

    expect(second.runtime.stateOf(CALL_ID)).toBe('rejected');
    expect(second.records).toEqual([
      {
        callId: CALL_ID,
        state: 'rejected',
        previous: 'rejecting',
        at: iso(T0 + 5_000),
        reason: 'busy',
        attempts: 2,
      },
    ]);
  });

  it('fails a restored in-flight call at the original deadline when Graph never answers', () => {
    const first = harness({ outcomes: ['pending'] });
    first.runtime.deliver(incoming(T0));
    first.runtime.deliver(reject(T0 + 1_000));
    const persisted = roundTrip(snapshotOf(first.runtime));

    const second = harness({ now: T0 + 5_000, outcomes: ['pending'] });
    second.runtime.restore(persisted);
    second.clock.set(DEADLINE);
    second.runtime.scheduler.fireDue();

    expect(second.sent[0]?.signal.aborted).toBe(true);
    expect(second.records).toEqual([
      expect.objectContaining({
        state: 'failed',
        at: iso(DEADLINE),
        error: 'the answer window closed before Graph answered the reject',
      }),
    ]);
  });
});

describe('a redelivered reject', () => {
  it('counts its first attempt as possibly sent before: a 404 to it means rejected', async () => {
    const { clock, runtime, records, sent } = harness({
      outcomes: [{ status: 404, maybeDelivered: false, code: 'NotFound' }],
    });
    runtime.deliver(incoming(T0));
    clock.set(T0 + 1_000);
    expect(runtime.deliver(reject(T0 + 1_000), { redelivered: true }).delivery).toBe('applied');
    await flush();
    expect(sent).toHaveLength(1);
    expect(runtime.stateOf(CALL_ID)).toBe('rejected');
    expect(records.at(-1)).toMatchObject({ state: 'rejected', attempts: 1 });
  });
});

describe('requests left to send again later (deferResend)', () => {
  function persistedInFlight() {
    const first = harness({ outcomes: ['pending'] });
    first.runtime.deliver(incoming(T0));
    first.clock.set(T0 + 1_000);
    first.runtime.deliver(reject(T0 + 1_000));
    return roundTrip(snapshotOf(first.runtime));
  }

  it('sends nothing on restore, then the request once, when asked', () => {
    const second = harness({ now: T0 + 5_000, outcomes: ['pending'] });
    second.runtime.restore(persistedInFlight(), { deferResend: true });
    expect(second.sent).toEqual([]);
    expect(second.runtime.resendDeferred(0)).toBe(1);

    expect(second.runtime.resendDeferred(10)).toBe(0);
    expect(second.sent.map((s) => s.request.attempt)).toEqual([2]);
    expect(second.runtime.resendDeferred(10)).toBe(0);
    expect(second.sent).toHaveLength(1);
  });

  it('sends it first when an event reaches the call before its turn', async () => {
    const second = harness({
      now: T0 + 5_000,
      outcomes: [{ status: 404, maybeDelivered: false, code: 'NotFound' }],
    });
    second.runtime.restore(persistedInFlight(), { deferResend: true });
    // A second reject: refused, because the recovered request is under way.
    expect(second.runtime.deliver(reject(T0 + 5_000)).delivery).toBe('refused');
    expect(second.sent.map((s) => s.request.attempt)).toEqual([2]);
    expect(second.runtime.resendDeferred(10)).toBe(0);
    await flush();
    expect(second.runtime.stateOf(CALL_ID)).toBe('rejected');
    expect(second.sent).toHaveLength(1);
  });

  it('closes the window instead when its turn comes after the deadline', () => {
    const second = harness({ now: T0 + 5_000, outcomes: ['pending'] });
    second.runtime.restore(persistedInFlight(), { deferResend: true });
    second.clock.set(DEADLINE + 1);
    expect(second.runtime.resendDeferred(10)).toBe(0);
    expect(second.sent).toEqual([]);
    expect(second.records).toEqual([
      expect.objectContaining({ state: 'failed', previous: 'rejecting', at: iso(DEADLINE + 1) }),
    ]);
  });
});

describe('a call restored after its retry time and its deadline', () => {
  it('sends no retry and fails at once: the window closed while it was down', async () => {
    const first = harness({
      outcomes: [{ status: 503, maybeDelivered: false, retryAfterMs: 8_000 }],
    });
    first.runtime.deliver(incoming(T0));
    first.runtime.deliver(reject(T0 + 1_000));
    await flush();
    const persisted = roundTrip(snapshotOf(first.runtime));

    const second = harness({ now: DEADLINE + 5_000 });
    second.runtime.restore(persisted);
    second.runtime.scheduler.fireDue();
    await flush();

    expect(second.sent).toEqual([]);
    expect(second.records).toEqual([
      expect.objectContaining({ state: 'failed', previous: 'rejecting', attempts: 1 }),
    ]);
  });
});

describe('resting calls', () => {
  it('keeps a running actor only while a request is in flight', async () => {
    const { clock, runtime, sent, actors } = harness({ outcomes: ['pending', 'pending'] });
    runtime.deliver(incoming(T0));
    expect(actors).toEqual([CALL_ID]);

    // It rested while ringing: the reject starts its actor again from the snapshot.
    clock.set(T0 + 1_000);
    runtime.deliver(reject(T0 + 1_000));
    expect(actors).toEqual([CALL_ID, CALL_ID]);
    // While the request is in flight it keeps running.
    expect(runtime.deliver(reject(T0 + 1_100)).delivery).toBe('refused');
    expect(actors).toHaveLength(2);

    sent[0]?.settle({ status: 503, maybeDelivered: false });
    await flush();
    expect(runtime.stateOf(CALL_ID)).toBe('rejecting');
    // Backing off, it rested again: the retry wakes it once more.
    clock.set(T0 + 1_000 + backoffDelay(CALL_ID, 1));
    runtime.scheduler.fireDue();
    expect(actors).toEqual([CALL_ID, CALL_ID, CALL_ID]);
    expect(sent.map((s) => s.request.attempt)).toEqual([1, 2]);
  });

  it('persists the same snapshot whether the call rests or runs', () => {
    const resting = harness();
    resting.runtime.deliver(incoming(T0));
    const running = harness({ outcomes: ['pending'] });
    running.runtime.deliver(incoming(T0));
    running.runtime.deliver(reject(T0));

    expect(roundTrip(snapshotOf(resting.runtime))).toMatchObject({
      status: 'active',
      value: 'ringing',
      context: { callId: CALL_ID, deadline: DEADLINE, attempts: 0 },
    });
    expect(roundTrip(snapshotOf(running.runtime))).toMatchObject({
      status: 'active',
      value: { rejecting: 'sending' },
      context: { callId: CALL_ID, deadline: DEADLINE, attempts: 1, reason: 'busy' },
    });
  });
});

describe('stop', () => {
  it('publishes nothing for outcomes or deadlines that come after it, and forgets every call', async () => {
    const { clock, runtime, records, sent } = harness({ outcomes: ['pending'] });
    runtime.deliver(incoming());
    runtime.deliver(reject(T0 + 1_000));
    const before = records.length;

    runtime.stop();
    sent[0]?.settle(ACCEPTED);
    await flush();
    clock.set(DEADLINE + 1_000);

    expect(records).toHaveLength(before);
    expect(runtime.liveCount).toBe(0);
    expect(runtime.storedFormOf(CALL_ID)).toBeUndefined();
  });
});

describe('onChanges', () => {
  type Seen = [
    string,
    CallChange<string>['cause'],
    'nothing' | 'current' | 'forget' | 'final',
    string[],
  ];
  const seen = (change: CallChange<string> | undefined): Seen | undefined =>
    change && [
      change.callId,
      change.cause,
      typeof change.store === 'object' ? 'final' : change.store,
      change.records.map((record) => record.state),
    ];

  it("hands over each step's changes with their cause: before deliver returns, after an outcome, after a timer", async () => {
    const clock = new SimulatedClock();
    clock.set(T0);
    const changes: CallChange<string>[] = [];
    let settle: ((outcome: Outcome) => void) | undefined;
    const runtime = createCallRuntime<string>({
      clock,
      windowMs: WINDOW_MS,
      control: { reject: () => new Promise((resolve) => (settle = resolve)) },
      onChanges: (step) => changes.push(...step),
    });

    runtime.deliver(incoming(T0), { message: 'm1' });
    expect(changes.map(seen)).toEqual([
      [CALL_ID, { kind: 'event', message: 'm1' }, 'current', ['ringing']],
    ]);

    runtime.deliver(reject(T0 + 1_000), { message: 'm2' });
    expect(seen(changes.at(-1))).toEqual([
      CALL_ID,
      { kind: 'event', message: 'm2' },
      'current',
      ['rejecting'],
    ]);

    // A refusal: its record, and nothing to store.
    runtime.deliver(reject(T0 + 1_500), { message: 'm3' });
    expect(seen(changes.at(-1))).toEqual([
      CALL_ID,
      { kind: 'event', message: 'm3' },
      'nothing',
      ['rejecting'],
    ]);

    settle?.({ status: 503, maybeDelivered: false });
    await flush();
    expect(seen(changes.at(-1))).toEqual([CALL_ID, { kind: 'outcome' }, 'current', []]);
    expect(snapshotOf(runtime)?.value).toEqual({ rejecting: 'waiting' });

    clock.set(T0 + 14_000);
    runtime.scheduler.fireDue();
    expect(seen(changes.at(-1))).toEqual([CALL_ID, { kind: 'timer' }, 'current', []]);

    settle?.(ACCEPTED);
    await flush();
    const last = changes.at(-1);
    expect(seen(last)).toEqual([CALL_ID, { kind: 'outcome' }, 'final', ['rejected']]);
    expect(last?.store).toMatchObject({ final: { status: 'done', value: 'rejected' } });
    expect(last?.deadline).toBe(DEADLINE);
    expect(changes).toHaveLength(6);
  });
});

describe('keepAwake', () => {
  it('keeps one running actor per live call for its whole life, for an inspector to follow', async () => {
    const { clock, runtime, actors } = harness({
      keepAwake: true,
      outcomes: [{ status: 503, maybeDelivered: false }],
    });
    runtime.deliver(incoming(T0));
    clock.set(T0 + 1_000);
    runtime.deliver(reject(T0 + 1_000));
    await flush();
    clock.set(T0 + 5_000);
    runtime.scheduler.fireDue();
    await flush();
    expect(runtime.stateOf(CALL_ID)).toBe('rejected');
    expect(actors).toEqual([CALL_ID]);
  });
});

describe('storedFormOf', () => {
  it("gives a call's held events before it is seen, its snapshot whether it rests or runs, and nothing once it is final", async () => {
    const { clock, runtime, sent } = harness({ outcomes: ['pending'] });
    const other = '99999999-9999-4999-8999-999999999999';
    runtime.deliver({ ...answered(T0), callId: other });
    expect(runtime.storedFormOf(other)).toEqual({
      held: [{ ...answered(T0), callId: other }],
      intake: { floor: 0, seqs: [] },
    });

    runtime.deliver(incoming(T0));
    expect(snapshotOf(runtime)).toMatchObject({
      value: 'ringing',
      context: { callId: CALL_ID, deadline: DEADLINE },
    });
    clock.set(T0 + 1_000);
    runtime.deliver(reject(T0 + 1_000));
    expect(snapshotOf(runtime)).toMatchObject({
      value: { rejecting: 'sending' },
      context: { deadline: DEADLINE, attempts: 1 },
    });
    sent[0]?.settle(ACCEPTED);
    await flush();
    expect(runtime.stateOf(CALL_ID)).toBe('rejected');
    expect(runtime.storedFormOf(CALL_ID)).toBeUndefined();
  });
});

describe('idleAwake', () => {
  const ids = [
    '11111111-1111-4111-8111-111111111111',
    '22222222-2222-4222-8222-222222222222',
    '33333333-3333-4333-8333-333333333333',
  ] as const;
  const incomingFor = (callId: string): CallEnvelope => ({ ...incoming(T0), callId });

  it('keeps the most recently used waiting calls awake, resting the least recently used beyond the limit', () => {
    const { runtime, actors } = harness({ idleAwake: 2 });
    for (const id of ids) runtime.deliver(incomingFor(id));
    expect(actors).toEqual([...ids]);
    // The first call rested: an event starts its actor again, and it still behaves.
    expect(snapshotOf(runtime, ids[0])?.value).toBe('ringing');
    runtime.deliver({ ...reject(T0 + 500), callId: ids[0] });
    expect(runtime.stateOf(ids[0])).toBe('rejecting');
    expect(actors).toEqual([...ids, ids[0]]);
    // The last call is among the two most recently used: still awake.
    runtime.deliver({ ...answered(T0 + 600), callId: ids[2] });
    expect(runtime.stateOf(ids[2])).toBe('answered');
    expect(actors).toHaveLength(4);
  });
});
