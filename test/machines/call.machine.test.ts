import { describe, expect, it } from 'vitest';
import { initialTransition, type SnapshotFrom, transition } from 'xstate';
import { callMachine } from '../../machines/call.machine.js';
import { backoffDelay, RETRY_POLICY } from '../../machines/retry.js';
import { FINAL_STATES, whyRefused } from '../../machines/states.js';
import type { CallEvent, CallInput, RejectOutcome, RejectReason } from '../../machines/types.js';

/**
 * Pure tests: `initialTransition` / `transition` compute the next snapshot and
 * the actions to run, and run nothing. The reject request is never started;
 * its outcome is delivered as the done event xstate would send.
 */

type CallSnapshot = SnapshotFrom<typeof callMachine>;
type Actions = ReturnType<typeof transition<typeof callMachine>>[1];

const CALL_ID = '57dab8b1-894c-409a-b240-bd8beae78896';
const T0 = Date.parse('2026-11-27T09:00:00.000Z');
const WINDOW_MS = 15_000;
const DEADLINE = T0 + WINDOW_MS;
const CALLBACK_URI = 'https://bot.contoso.com/api/calling';

function start(input: Partial<CallInput> = {}) {
  return initialTransition(callMachine, {
    callId: CALL_ID,
    at: T0,
    now: T0,
    windowMs: WINDOW_MS,
    ...input,
  });
}

function reject(now: number, reason: RejectReason = 'busy', callbackUri?: string): CallEvent {
  return { type: 'call.reject', now, reason, ...(callbackUri && { callbackUri }) };
}

/** What xstate sends the machine when the `reject` actor resolves. */
function done(outcome: Partial<RejectOutcome> & Pick<RejectOutcome, 'status'>): CallEvent {
  const output: RejectOutcome = { maybeDelivered: false, at: T0 + 2_000, ...outcome };
  // Done events are internal to xstate, so the machine's event type does not list them.
  return { type: 'xstate.done.actor.reject', output } as unknown as CallEvent;
}

/** What xstate sends the machine when the `reject` actor throws. */
function crashed(error: unknown): CallEvent {
  return { type: 'xstate.error.actor.reject', error } as unknown as CallEvent;
}

function send(snapshot: CallSnapshot, ...events: CallEvent[]): CallSnapshot {
  return events.reduce((current, event) => transition(callMachine, current, event)[0], snapshot);
}

function ringing(input: Partial<CallInput> = {}): CallSnapshot {
  return start(input)[0];
}

/** A call whose first reject request (attempt 1) is in flight, sent 1 s after it came in. */
function sending(input: Partial<CallInput> = {}): CallSnapshot {
  return send(ringing(input), reject(T0 + 1_000));
}

/** A call backing off after a 503 at T0 + 2 s. */
function waiting(): CallSnapshot {
  return send(sending(), done({ status: 503, at: T0 + 2_000 }));
}

function actionTypes(actions: Actions): string[] {
  return actions.map((action) => action.type);
}

/** The `state` of every `publishLifecycle` action, in order. */
function published(actions: Actions): string[] {
  return actions
    .filter((action) => action.type === 'publishLifecycle')
    .map((action) => (action.params as { state: string }).state);
}

function refusals(actions: Actions): unknown[] {
  return actions.filter((action) => action.type === 'publishRefusal').map((a) => a.params);
}

/** The input of the reject request a transition starts, if it starts one. */
function requestInput(actions: Actions): unknown {
  const spawn = actions.find((action) => action.type === 'xstate.spawnChild');
  return (spawn?.params as { input?: unknown } | undefined)?.input;
}

describe('a new call', () => {
  it('starts ringing and publishes ringing', () => {
    const [snapshot, actions] = start();

    expect(snapshot.value).toBe('ringing');
    expect(published(actions)).toEqual(['ringing']);
    expect(snapshot.context).toMatchObject({
      callId: CALL_ID,
      reason: null,
      callbackUri: null,
      attempts: 0,
      outcomeUnknown: false,
      retryAt: null,
      error: null,
    });
  });

  it('measures the deadline from the incoming event, not from when it was received', () => {
    const [snapshot] = start({ at: T0, now: T0 + 4_000 });

    expect(snapshot.context.deadline).toBe(T0 + WINDOW_MS);
  });

  it('clamps an incoming event dated in the future to now', () => {
    const [snapshot] = start({ at: T0 + 60_000, now: T0 });

    expect(snapshot.context.deadline).toBe(T0 + WINDOW_MS);
  });
});

describe('ringing', () => {
  it('starts rejecting with the reason and callback when a reject arrives inside the window', () => {
    const [snapshot, actions] = transition(
      callMachine,
      ringing(),
      reject(T0 + 1_000, 'forbidden', CALLBACK_URI),
    );

    expect(snapshot.value).toEqual({ rejecting: 'sending' });
    expect(snapshot.context).toMatchObject({
      reason: 'forbidden',
      callbackUri: CALLBACK_URI,
      attempts: 1,
    });
    expect(published(actions)).toEqual(['rejecting']);
  });

  it('sends the first request with the reason, the deadline and the time left', () => {
    const [, actions] = transition(
      callMachine,
      ringing(),
      reject(T0 + 1_000, 'busy', CALLBACK_URI),
    );

    expect(requestInput(actions)).toEqual({
      callId: CALL_ID,
      reason: 'busy',
      callbackUri: CALLBACK_URI,
      attempt: 1,
      deadline: DEADLINE,
      remainingMs: WINDOW_MS - 1_000,
    });
  });

  it('keeps callbackUri null when the reject names none', () => {
    const [snapshot, actions] = transition(callMachine, ringing(), reject(T0 + 1_000, 'none'));

    expect(snapshot.context.callbackUri).toBeNull();
    expect(requestInput(actions)).toMatchObject({ reason: 'none', callbackUri: null });
  });

  it('still accepts a reject one millisecond before the deadline', () => {
    const [snapshot] = transition(callMachine, ringing(), reject(DEADLINE - 1));

    expect(snapshot.value).toEqual({ rejecting: 'sending' });
  });

  it.each([
    ['at', DEADLINE],
    ['after', DEADLINE + 5_000],
  ])('does not reject, and reports why, when the reject arrives %s the deadline', (_, now) => {
    const before = ringing();

    const [snapshot, actions] = transition(callMachine, before, reject(now));

    expect(snapshot.value).toBe('ringing');
    expect(snapshot.context).toEqual(before.context);
    expect(actionTypes(actions)).toEqual(['publishRefusal']);
    expect(refusals(actions)).toEqual([{ why: 'the answer window has closed' }]);
  });

  it('ends as answered when someone else answers', () => {
    const [snapshot, actions] = transition(callMachine, ringing(), {
      type: 'call.answered',
      now: T0 + 1_000,
    });

    expect(snapshot.value).toBe('answered');
    expect(snapshot.status).toBe('done');
    expect(published(actions)).toEqual(['answered']);
  });

  it("ends when the call is terminated, with Graph's resultInfo in the error", () => {
    const [snapshot, actions] = transition(callMachine, ringing(), {
      type: 'call.terminated',
      now: T0 + 1_000,
      code: '0',
      subcode: '5001',
      message: 'Call ended by the caller',
    });

    expect(snapshot.value).toBe('ended');
    expect(snapshot.status).toBe('done');
    expect(snapshot.context.error).toBe('the call ended (0/5001 Call ended by the caller)');
    expect(snapshot.context.terminated).toEqual({
      code: '0',
      subcode: '5001',
      message: 'Call ended by the caller',
    });
    expect(published(actions)).toEqual(['ended']);
  });

  it('says only that the call ended when the termination carries no resultInfo', () => {
    const [snapshot] = transition(callMachine, ringing(), {
      type: 'call.terminated',
      now: T0 + 1_000,
    });

    expect(snapshot.context.error).toBe('the call ended');
  });

  it('times out when the window closes at the deadline', () => {
    const [snapshot, actions] = transition(callMachine, ringing(), {
      type: 'window.closed',
      now: DEADLINE,
    });

    expect(snapshot.value).toBe('timedOut');
    expect(snapshot.status).toBe('done');
    expect(published(actions)).toEqual(['timedOut']);
  });

  it('does not time out on a stale window.closed that comes before the deadline', () => {
    const before = ringing();

    const [snapshot, actions] = transition(callMachine, before, {
      type: 'window.closed',
      now: DEADLINE - 1,
    });

    expect(snapshot).toBe(before);
    expect(actions).toEqual([]);
  });

  it('does not react to scheduler or recovery events meant for a reject in progress', () => {
    const before = ringing();

    const afterRetry = transition(callMachine, before, { type: 'retry.due', now: T0 + 1_000 });
    const afterRecovery = transition(callMachine, before, {
      type: 'call.recovered',
      now: T0 + 1_000,
    });

    expect(afterRetry).toEqual([before, []]);
    expect(afterRecovery).toEqual([before, []]);
  });
});

describe('rejecting', () => {
  it.each([
    ['sending', sending],
    ['waiting', waiting],
  ])('does not send a second reject while %s, and reports why', (_, arrange) => {
    const before = arrange();

    const [snapshot, actions] = transition(callMachine, before, reject(T0 + 2_500, 'none'));

    expect(snapshot.value).toEqual(before.value);
    expect(snapshot.context).toEqual(before.context);
    expect(actionTypes(actions)).toEqual(['publishRefusal']);
    expect(refusals(actions)).toEqual([{ why: 'a reject is already under way' }]);
  });

  it('ends as answered when answered while the request is in flight, stopping the request', () => {
    const [snapshot, actions] = transition(callMachine, sending(), {
      type: 'call.answered',
      now: T0 + 1_500,
    });

    expect(snapshot.value).toBe('answered');
    expect(snapshot.status).toBe('done');
    expect(actionTypes(actions)).toContain('xstate.stopChild');
    expect(published(actions)).toEqual(['answered']);
  });

  it('ends as answered when answered while backing off, and sends no more requests', () => {
    const [snapshot, actions] = transition(callMachine, waiting(), {
      type: 'call.answered',
      now: T0 + 2_050,
    });

    expect(snapshot.value).toBe('answered');
    expect(published(actions)).toEqual(['answered']);
    expect(requestInput(actions)).toBeUndefined();
  });
});

describe('rejecting.sending', () => {
  describe('when Graph accepts', () => {
    it.each([200, 202, 204])('is rejected on %i', (status) => {
      const [snapshot, actions] = transition(callMachine, sending(), done({ status }));

      expect(snapshot.value).toBe('rejected');
      expect(snapshot.status).toBe('done');
      expect(published(actions)).toEqual(['rejected']);
    });

    it('is rejected even if the call was terminated while the request was in flight', () => {
      const terminated = send(sending(), { type: 'call.terminated', now: T0 + 1_500 });

      const [snapshot] = transition(callMachine, terminated, done({ status: 202 }));

      expect(snapshot.value).toBe('rejected');
    });
  });

  describe('when Graph answers 404', () => {
    it('ends, because Graph no longer knows the call', () => {
      const [snapshot, actions] = transition(
        callMachine,
        sending(),
        done({ status: 404, code: 'NotFound', message: 'Call not found' }),
      );

      expect(snapshot.value).toBe('ended');
      expect(snapshot.context.error).toBe(
        'Graph no longer knows the call (404 NotFound Call not found)',
      );
      expect(snapshot.context.lastError).toEqual({
        status: 404,
        code: 'NotFound',
        message: 'Call not found',
      });
      expect(published(actions)).toEqual(['ended']);
    });

    it('is rejected when an earlier attempt timed out after it may have been delivered', () => {
      const retried = send(
        sending(),
        done({ status: null, maybeDelivered: true, at: T0 + 2_000 }),
        { type: 'retry.due', now: T0 + 5_000 },
      );
      expect(retried.context).toMatchObject({ outcomeUnknown: true, attempts: 2 });

      const [snapshot, actions] = transition(callMachine, retried, done({ status: 404 }));

      expect(snapshot.value).toBe('rejected');
      expect(published(actions)).toEqual(['rejected']);
    });

    it('is rejected when a redelivered reject is answered 404 on its first attempt: an earlier run sent it', () => {
      const redelivered = send(ringing(), {
        type: 'call.reject',
        now: T0 + 1_000,
        reason: 'busy',
        redelivered: true,
      });
      expect(redelivered.context).toMatchObject({ outcomeUnknown: true, attempts: 1 });

      const [snapshot] = transition(callMachine, redelivered, done({ status: 404 }));

      expect(snapshot.value).toBe('rejected');
    });

    it('ends, as for any first attempt, when a reject delivered once is answered 404', () => {
      const first = send(ringing(), {
        type: 'call.reject',
        now: T0 + 1_000,
        reason: 'busy',
        redelivered: false,
      });
      expect(first.context.outcomeUnknown).toBe(false);
      expect(transition(callMachine, first, done({ status: 404 }))[0].value).toBe('ended');
    });

    it('is rejected when the request in flight at a crash is answered 404 after recovery', () => {
      const recovered = send(sending(), { type: 'call.recovered', now: T0 + 5_000 });

      const [snapshot] = transition(callMachine, recovered, done({ status: 404 }));

      expect(snapshot.value).toBe('rejected');
    });
  });

  describe('when the call is terminated while the request is in flight', () => {
    it('notes the termination and keeps waiting for the outcome', () => {
      const [snapshot, actions] = transition(callMachine, sending(), {
        type: 'call.terminated',
        now: T0 + 1_500,
        code: '0',
        message: 'bye',
      });

      expect(snapshot.value).toEqual({ rejecting: 'sending' });
      expect(snapshot.context.terminated).toEqual({
        code: '0',
        subcode: undefined,
        message: 'bye',
      });
      expect(published(actions)).toEqual([]);
    });

    it('ends instead of retrying when the outcome is a 503', () => {
      const terminated = send(sending(), {
        type: 'call.terminated',
        now: T0 + 1_500,
        code: '0',
        message: 'bye',
      });

      const [snapshot, actions] = transition(callMachine, terminated, done({ status: 503 }));

      expect(snapshot.value).toBe('ended');
      expect(snapshot.context.error).toBe('the call ended (0 bye)');
      expect(published(actions)).toEqual(['ended']);
    });
  });

  describe('when the outcome is retryable', () => {
    it.each([429, 500, 502, 503, 504, null])(
      'backs off after %s and schedules the retry',
      (status) => {
        const at = T0 + 2_000;

        const [snapshot, actions] = transition(callMachine, sending(), done({ status, at }));

        expect(snapshot.value).toEqual({ rejecting: 'waiting' });
        expect(snapshot.context.retryAt).toBe(at + backoffDelay(CALL_ID, 1));
        expect(snapshot.context.attempts).toBe(1);
        expect(snapshot.context.lastError?.status).toBe(status);
        expect(actionTypes(actions)).toContain('scheduleRetry');
        expect(published(actions)).toEqual([]);
      },
    );

    it('waits at least as long as Retry-After asks', () => {
      const at = T0 + 2_000;

      const [snapshot] = transition(
        callMachine,
        sending(),
        done({ status: 429, retryAfterMs: 5_000, at }),
      );

      expect(snapshot.context.retryAt).toBe(at + backoffDelay(CALL_ID, 1, 5_000));
      expect(snapshot.context.retryAt).toBeGreaterThanOrEqual(at + 5_000);
    });

    it('counts an outcome as unknown after a time-out that may have reached Graph', () => {
      const [snapshot] = transition(
        callMachine,
        sending(),
        done({ status: null, maybeDelivered: true, message: 'timed out' }),
      );

      expect(snapshot.context.outcomeUnknown).toBe(true);
      expect(snapshot.context.lastError).toEqual({
        status: null,
        code: null,
        message: 'timed out',
      });
    });

    it('does not count an outcome as unknown after a network error before sending', () => {
      const [snapshot] = transition(
        callMachine,
        sending(),
        done({ status: null, maybeDelivered: false, message: 'ECONNREFUSED' }),
      );

      expect(snapshot.context.outcomeUnknown).toBe(false);
    });

    it('does not forget an unknown outcome when a later attempt gets a 503', () => {
      const retried = send(
        sending(),
        done({ status: null, maybeDelivered: true, at: T0 + 2_000 }),
        { type: 'retry.due', now: T0 + 5_000 },
      );

      const [snapshot] = transition(callMachine, retried, done({ status: 503, at: T0 + 5_500 }));

      expect(snapshot.context.outcomeUnknown).toBe(true);
    });

    it('fails when the next attempt would start exactly at the deadline', () => {
      const at = DEADLINE - backoffDelay(CALL_ID, 1);

      const [snapshot, actions] = transition(callMachine, sending(), done({ status: 503, at }));

      expect(snapshot.value).toBe('failed');
      expect(snapshot.context.error).toBe(
        'retries ran out inside the answer window after 1 attempt(s); last: 503',
      );
      expect(published(actions)).toEqual(['failed']);
    });

    it('still retries when the next attempt starts a millisecond before the deadline', () => {
      const at = DEADLINE - backoffDelay(CALL_ID, 1) - 1;

      const [snapshot] = transition(callMachine, sending(), done({ status: 503, at }));

      expect(snapshot.value).toEqual({ rejecting: 'waiting' });
      expect(snapshot.context.retryAt).toBe(DEADLINE - 1);
    });

    it('fails when Retry-After reaches past the deadline', () => {
      const [snapshot] = transition(
        callMachine,
        sending(),
        done({ status: 429, retryAfterMs: WINDOW_MS, at: T0 + 2_000, message: 'Too many' }),
      );

      expect(snapshot.value).toBe('failed');
      expect(snapshot.context.error).toMatch(/^retries ran out inside the answer window/);
      expect(snapshot.context.error).toContain('last: 429 Too many');
    });

    it(`fails after ${RETRY_POLICY.maxAttempts} attempts even with time left`, () => {
      let snapshot = sending({ windowMs: 600_000 });
      let now = T0 + 2_000;
      while (snapshot.context.attempts < RETRY_POLICY.maxAttempts) {
        snapshot = send(snapshot, done({ status: 503, at: now }));
        expect(snapshot.value).toEqual({ rejecting: 'waiting' });
        now = snapshot.context.retryAt ?? Number.NaN;
        snapshot = send(snapshot, { type: 'retry.due', now });
      }
      expect(snapshot.value).toEqual({ rejecting: 'sending' });

      const [final, actions] = transition(callMachine, snapshot, done({ status: 503, at: now }));

      expect(final.value).toBe('failed');
      expect(final.context.attempts).toBe(RETRY_POLICY.maxAttempts);
      expect(final.context.error).toBe(
        `retries ran out inside the answer window after ${RETRY_POLICY.maxAttempts} attempt(s); last: 503`,
      );
      expect(published(actions)).toEqual(['failed']);
    });
  });

  describe('when Graph refuses for good', () => {
    it("fails with Graph's error code and message on 403", () => {
      const message = 'Insufficient enterprise tenant permissions';

      const [snapshot, actions] = transition(
        callMachine,
        sending(),
        done({ status: 403, code: '7504', message }),
      );

      expect(snapshot.value).toBe('failed');
      expect(snapshot.context.error).toBe(`Graph refused the reject: 403 7504 ${message}`);
      expect(snapshot.context.lastError).toEqual({ status: 403, code: '7504', message });
      expect(published(actions)).toEqual(['failed']);
    });

    it('fails on 400 without retrying', () => {
      const [snapshot, actions] = transition(
        callMachine,
        sending(),
        done({ status: 400, message: 'Bad request' }),
      );

      expect(snapshot.value).toBe('failed');
      expect(snapshot.context.error).toBe('Graph refused the reject: 400 Bad request');
      expect(actionTypes(actions)).not.toContain('scheduleRetry');
    });

    it('fails when the request itself throws instead of reporting an outcome', () => {
      const [snapshot, actions] = transition(callMachine, sending(), crashed(new Error('boom')));

      expect(snapshot.value).toBe('failed');
      expect(snapshot.context.error).toBe('the reject request failed unexpectedly: boom');
      expect(published(actions)).toEqual(['failed']);
    });
  });

  describe('when the window closes', () => {
    it('fails and stops the request when no outcome came by the deadline', () => {
      const [snapshot, actions] = transition(callMachine, sending(), {
        type: 'window.closed',
        now: DEADLINE,
      });

      expect(snapshot.value).toBe('failed');
      expect(snapshot.context.error).toBe(
        'the answer window closed before Graph answered the reject',
      );
      expect(actionTypes(actions)).toContain('xstate.stopChild');
      expect(published(actions)).toEqual(['failed']);
    });

    it('does not fail on a stale window.closed before the deadline', () => {
      const before = sending();

      const [snapshot, actions] = transition(callMachine, before, {
        type: 'window.closed',
        now: DEADLINE - 1,
      });

      expect(snapshot).toBe(before);
      expect(actions).toEqual([]);
    });
  });

  describe('after a crash', () => {
    it('counts the repeated request and marks the first outcome unknown', () => {
      const [snapshot, actions] = transition(callMachine, sending(), {
        type: 'call.recovered',
        now: T0 + 5_000,
      });

      expect(snapshot.value).toEqual({ rejecting: 'sending' });
      expect(snapshot.context).toMatchObject({ outcomeUnknown: true, attempts: 2 });
      expect(published(actions)).toEqual([]);
    });
  });
});

describe('rejecting.waiting', () => {
  it('does not retry before retryAt', () => {
    const before = waiting();
    const retryAt = before.context.retryAt ?? Number.NaN;

    const [snapshot, actions] = transition(callMachine, before, {
      type: 'retry.due',
      now: retryAt - 1,
    });

    expect(snapshot).toBe(before);
    expect(actions).toEqual([]);
  });

  it('sends the next attempt at retryAt, without publishing rejecting again', () => {
    const before = waiting();
    const retryAt = before.context.retryAt ?? Number.NaN;

    const [snapshot, actions] = transition(callMachine, before, {
      type: 'retry.due',
      now: retryAt,
    });

    expect(snapshot.value).toEqual({ rejecting: 'sending' });
    expect(snapshot.context).toMatchObject({ attempts: 2, retryAt: null });
    expect(published(actions)).toEqual([]);
    expect(requestInput(actions)).toEqual({
      callId: CALL_ID,
      reason: 'busy',
      callbackUri: null,
      attempt: 2,
      deadline: DEADLINE,
      remainingMs: DEADLINE - retryAt,
    });
  });

  it('sends no retry at or after the deadline, even when the retry timer fires late', () => {
    const before = waiting();

    const [snapshot, actions] = transition(callMachine, before, {
      type: 'retry.due',
      now: DEADLINE,
    });

    expect(snapshot).toBe(before);
    expect(actions).toEqual([]);
  });

  it('fails when the window closes before the next attempt', () => {
    const [snapshot, actions] = transition(callMachine, waiting(), {
      type: 'window.closed',
      now: DEADLINE,
    });

    expect(snapshot.value).toBe('failed');
    expect(snapshot.context.retryAt).toBeNull();
    expect(snapshot.context.error).toBe(
      'the answer window closed before the next attempt; last: 503',
    );
    expect(published(actions)).toEqual(['failed']);
  });

  it('does not fail on a stale window.closed before the deadline', () => {
    const before = waiting();

    const [snapshot, actions] = transition(callMachine, before, {
      type: 'window.closed',
      now: DEADLINE - 1,
    });

    expect(snapshot).toBe(before);
    expect(actions).toEqual([]);
  });

  it('ends when the call is terminated while backing off', () => {
    const [snapshot, actions] = transition(callMachine, waiting(), {
      type: 'call.terminated',
      now: T0 + 2_050,
      code: '0',
      subcode: '540000',
      message: 'Call ended by the caller',
    });

    expect(snapshot.value).toBe('ended');
    expect(snapshot.context.error).toBe('the call ended (0/540000 Call ended by the caller)');
    expect(published(actions)).toEqual(['ended']);
  });
});

describe('final states', () => {
  const finals: Record<(typeof FINAL_STATES)[number], () => CallSnapshot> = {
    rejected: () => send(sending(), done({ status: 202 })),
    answered: () => send(ringing(), { type: 'call.answered', now: T0 + 1_000 }),
    timedOut: () => send(ringing(), { type: 'window.closed', now: DEADLINE }),
    ended: () => send(ringing(), { type: 'call.terminated', now: T0 + 1_000 }),
    failed: () => send(sending(), done({ status: 403 })),
  };

  it.each(FINAL_STATES)('%s is final and takes no further events', (state) => {
    const snapshot = finals[state]();

    expect(snapshot.value).toBe(state);
    expect(snapshot.status).toBe('done');
    expect(transition(callMachine, snapshot, reject(T0 + 3_000))).toEqual([snapshot, []]);
    expect(transition(callMachine, snapshot, { type: 'call.answered', now: T0 + 3_000 })).toEqual([
      snapshot,
      [],
    ]);
  });

  it.each([
    ['rejected', 'the call was already rejected'],
    ['answered', 'the call was answered'],
    ['timedOut', 'the answer window has closed'],
    ['ended', 'the call has ended'],
    ['failed', 'the reject was already tried and failed'],
  ] as const)('explains that a command to a %s call cannot apply', (state, why) => {
    expect(whyRefused(state)).toBe(why);
  });
});
