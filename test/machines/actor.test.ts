import { describe, expect, it } from 'vitest';
import { createActor, fromPromise } from 'xstate';
import { callMachine } from '../../machines/call.machine.js';
import type {
  CallContext,
  CallInput,
  CallStateName,
  RejectOutcome,
  RejectRequest,
} from '../../machines/types.js';

/**
 * The machine run by a real actor, with the host's effects replaced by fakes:
 * what the reject request receives, how leaving `rejecting` aborts it, and
 * which records the actions are asked to publish.
 */

const CALL_ID = '57dab8b1-894c-409a-b240-bd8beae78896';
const T0 = Date.parse('2026-11-27T09:00:00.000Z');
const WINDOW_MS = 15_000;
const DEADLINE = T0 + WINDOW_MS;
const INPUT: CallInput = { callId: CALL_ID, at: T0, now: T0, windowMs: WINDOW_MS };

interface Request {
  readonly input: RejectRequest;
  readonly signal: AbortSignal;
  readonly settle: (outcome: RejectOutcome) => void;
}

/** A call actor whose reject requests wait until the test settles them. */
function harness() {
  const requests: Request[] = [];
  const lifecycle: CallStateName[] = [];
  const refusals: string[] = [];
  const retries: Array<number | null> = [];
  const machine = callMachine.provide({
    actors: {
      rejectCall: fromPromise<RejectOutcome, RejectRequest>(
        ({ input, signal }) =>
          new Promise((resolve) => {
            requests.push({ input, signal, settle: resolve });
          }),
      ),
    },
    actions: {
      publishLifecycle: (_, { state }) => {
        lifecycle.push(state);
      },
      publishRefusal: (_, { why }) => {
        refusals.push(why);
      },
      scheduleRetry: ({ context }: { context: CallContext }) => {
        retries.push(context.retryAt);
      },
    },
  });
  const actor = createActor(machine, { input: INPUT });
  actor.start();
  return { actor, requests, lifecycle, refusals, retries };
}

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('a call actor', () => {
  it('gives the reject request its input and an abort signal', () => {
    const { actor, requests } = harness();

    actor.send({
      type: 'call.reject',
      now: T0 + 2_000,
      reason: 'forbidden',
      callbackUri: 'https://bot.contoso.com/api/calling',
    });

    expect(requests).toHaveLength(1);
    expect(requests[0]?.input).toEqual({
      callId: CALL_ID,
      reason: 'forbidden',
      callbackUri: 'https://bot.contoso.com/api/calling',
      attempt: 1,
      deadline: DEADLINE,
      remainingMs: WINDOW_MS - 2_000,
    });
    expect(requests[0]?.signal).toBeInstanceOf(AbortSignal);
    expect(requests[0]?.signal.aborted).toBe(false);
  });

  it('aborts the request in flight when the call is answered meanwhile', () => {
    const { actor, requests } = harness();
    actor.send({ type: 'call.reject', now: T0 + 1_000, reason: 'busy' });

    actor.send({ type: 'call.answered', now: T0 + 1_200 });

    expect(actor.getSnapshot().value).toBe('answered');
    expect(requests[0]?.signal.aborted).toBe(true);
  });

  it('aborts the request in flight when the window closes before Graph answers', () => {
    const { actor, requests } = harness();
    actor.send({ type: 'call.reject', now: T0 + 1_000, reason: 'busy' });

    actor.send({ type: 'window.closed', now: DEADLINE });

    expect(actor.getSnapshot().value).toBe('failed');
    expect(requests[0]?.signal.aborted).toBe(true);
  });

  it('does not abort a request that Graph has accepted', async () => {
    const { actor, requests } = harness();
    actor.send({ type: 'call.reject', now: T0 + 1_000, reason: 'busy' });

    requests[0]?.settle({ status: 202, maybeDelivered: false, at: T0 + 1_100 });
    await flush();

    expect(actor.getSnapshot().value).toBe('rejected');
    expect(actor.getSnapshot().status).toBe('done');
    expect(requests[0]?.signal.aborted).toBe(false);
  });

  it('publishes each top-level state once, in order, across a retry', async () => {
    const { actor, requests, lifecycle, retries } = harness();
    actor.send({ type: 'call.reject', now: T0 + 1_000, reason: 'busy' });
    requests[0]?.settle({ status: 503, maybeDelivered: false, at: T0 + 1_100 });
    await flush();
    const retryAt = actor.getSnapshot().context.retryAt ?? Number.NaN;

    actor.send({ type: 'retry.due', now: retryAt });
    requests[1]?.settle({ status: 202, maybeDelivered: false, at: retryAt + 50 });
    await flush();

    expect(lifecycle).toEqual(['ringing', 'rejecting', 'rejected']);
    expect(retries).toEqual([retryAt]);
    expect(requests.map((request) => request.input.attempt)).toEqual([1, 2]);
    expect(actor.getSnapshot().context.attempts).toBe(2);
  });

  it('publishes ringing then answered when answered before any decision', () => {
    const { actor, lifecycle, requests } = harness();

    actor.send({ type: 'call.answered', now: T0 + 3_000 });

    expect(lifecycle).toEqual(['ringing', 'answered']);
    expect(requests).toEqual([]);
  });

  it('does not send a second request for a second reject, and reports it instead', () => {
    const { actor, requests, refusals, lifecycle } = harness();
    actor.send({ type: 'call.reject', now: T0 + 1_000, reason: 'busy' });

    actor.send({ type: 'call.reject', now: T0 + 1_500, reason: 'none' });

    expect(requests).toHaveLength(1);
    expect(refusals).toEqual(['a reject is already under way']);
    expect(lifecycle).toEqual(['ringing', 'rejecting']);
  });

  it('fails with the error when the request rejects instead of reporting an outcome', async () => {
    const machine = callMachine.provide({
      actors: {
        rejectCall: fromPromise<RejectOutcome, RejectRequest>(() =>
          Promise.reject(new Error('socket hang up')),
        ),
      },
    });
    const actor = createActor(machine, { input: INPUT });
    actor.start();

    actor.send({ type: 'call.reject', now: T0 + 1_000, reason: 'busy' });
    await flush();

    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().context.error).toBe(
      'the reject request failed unexpectedly: socket hang up',
    );
  });
});
