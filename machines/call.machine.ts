import { and, assign, fromPromise, setup } from 'xstate';
import { backoffDelay, isRetryableStatus, RETRY_POLICY } from './retry.js';
import type {
  CallContext,
  CallEvent,
  CallInput,
  CallStateName,
  RejectOutcome,
  RejectRequest,
  TerminationInfo,
} from './types.js';

function describeTermination(info: TerminationInfo): string {
  const code = [info.code, info.subcode].filter(Boolean).join('/');
  const detail = [code, info.message].filter(Boolean).join(' ');
  return detail ? `the call ended (${detail})` : 'the call ended';
}

function describeOutcome(outcome: RejectOutcome): string {
  if (outcome.status === null) {
    return outcome.message ? `no response (${outcome.message})` : 'no response';
  }
  return [outcome.status, outcome.code, outcome.message].filter(Boolean).join(' ');
}

function isSuccess(outcome: RejectOutcome): boolean {
  return outcome.status !== null && outcome.status >= 200 && outcome.status < 300;
}

/**
 * One incoming Teams call, from `ringing` to a final state.
 *
 * The machine is pure: no I/O, no clock, no logger. Time arrives as data (every
 * event carries the host's `now`; the deadline and the next retry are absolute
 * times in context), so a host can persist a snapshot, restore it, and re-arm
 * its timers from context alone. The reject request is the `rejectCall` actor
 * and the records are the `publishLifecycle` / `publishRefusal` actions: the
 * host supplies all three with `callMachine.provide(...)`.
 *
 * @example
 * const machine = callMachine.provide({
 *   actors: { rejectCall: fromPromise(({ input, signal }) => graph.reject(input, signal)) },
 *   actions: { publishLifecycle: ({ context }, { state }) => publish(context.callId, state) },
 * });
 */
export const callMachine = setup({
  types: {
    context: {} as CallContext,
    events: {} as CallEvent,
    input: {} as CallInput,
  },
  actors: {
    rejectCall: fromPromise<RejectOutcome, RejectRequest>(() =>
      Promise.reject(new Error('rejectCall is supplied by the host through machine.provide()')),
    ),
  },
  actions: {
    publishLifecycle: (_, _params: { state: CallStateName }) => {},
    publishRefusal: (_, _params: { why: string }) => {},
    scheduleRetry: () => {},
    assignRejectRequest: assign(({ event }) =>
      event.type === 'call.reject'
        ? {
            reason: event.reason,
            callbackUri: event.callbackUri ?? null,
            outcomeUnknown: event.redelivered === true,
          }
        : {},
    ),
    countAttempt: assign({ attempts: ({ context }) => context.attempts + 1, retryAt: null }),
    assignTermination: assign(({ event }) =>
      event.type === 'call.terminated'
        ? {
            terminated: { code: event.code, subcode: event.subcode, message: event.message },
            error: describeTermination(event),
          }
        : {},
    ),
    assignRecovered: assign({
      outcomeUnknown: true,
      attempts: ({ context }) => context.attempts + 1,
    }),
    assignRetry: assign(({ context }, outcome: RejectOutcome) => ({
      lastError: toGraphError(outcome),
      outcomeUnknown: context.outcomeUnknown || (outcome.status === null && outcome.maybeDelivered),
      retryAt: outcome.at + backoffDelay(context.callId, context.attempts, outcome.retryAfterMs),
    })),
    assignCallGone: assign((_, outcome: RejectOutcome) => ({
      lastError: toGraphError(outcome),
      error: `Graph no longer knows the call (${describeOutcome(outcome)})`,
    })),
    assignRetriesExhausted: assign(({ context }, outcome: RejectOutcome) => ({
      lastError: toGraphError(outcome),
      error: `retries ran out inside the answer window after ${context.attempts} attempt(s); last: ${describeOutcome(outcome)}`,
    })),
    assignRefusedByGraph: assign((_, outcome: RejectOutcome) => ({
      lastError: toGraphError(outcome),
      error: `Graph refused the reject: ${describeOutcome(outcome)}`,
    })),
    assignRejectActorError: assign((_, params: { error: unknown }) => ({
      error: `the reject request failed unexpectedly: ${errorText(params.error)}`,
    })),
    assignClosedWhileSending: assign({
      error: 'the answer window closed before Graph answered the reject',
    }),
    assignClosedWhileWaiting: assign(({ context }) => ({
      retryAt: null,
      error: `the answer window closed before the next attempt; last: ${
        context.lastError ? describeGraphError(context.lastError) : 'none'
      }`,
    })),
  },
  guards: {
    isWindowOpen: ({ context, event }) => event.now < context.deadline,
    isWindowClosed: ({ context, event }) => event.now >= context.deadline,
    isRetryDue: ({ context, event }) => context.retryAt !== null && event.now >= context.retryAt,
    isAccepted: (_, outcome: RejectOutcome) => isSuccess(outcome),
    isGoneAfterUnknownAttempt: ({ context }, outcome: RejectOutcome) =>
      outcome.status === 404 && context.outcomeUnknown,
    isGone: (_, outcome: RejectOutcome) => outcome.status === 404,
    wasTerminatedMeanwhile: ({ context }) => context.terminated !== null,
    canRetryInWindow: ({ context }, outcome: RejectOutcome) =>
      isRetryableStatus(outcome.status) &&
      context.attempts < RETRY_POLICY.maxAttempts &&
      outcome.at + backoffDelay(context.callId, context.attempts, outcome.retryAfterMs) <
        context.deadline,
    isRetryable: (_, outcome: RejectOutcome) => isRetryableStatus(outcome.status),
  },
}).createMachine({
  id: 'call',
  description:
    'One incoming Teams call. callgate owns the reject side of the answer-or-reject decision: it rejects when told to, never after the call was answered, never twice, and never past the deadline.',
  context: ({ input }) => ({
    callId: input.callId,
    deadline: Math.min(input.at, input.now) + input.windowMs,
    reason: null,
    callbackUri: null,
    attempts: 0,
    outcomeUnknown: false,
    lastError: null,
    retryAt: null,
    terminated: null,
    error: null,
  }),
  initial: 'ringing',
  states: {
    ringing: {
      description: 'The incoming call is known and no decision has been made yet.',
      entry: { type: 'publishLifecycle', params: { state: 'ringing' } },
      on: {
        'call.reject': [
          {
            guard: 'isWindowOpen',
            target: 'rejecting',
            actions: ['assignRejectRequest', 'countAttempt'],
            description: 'Reject while the answer window is open.',
          },
          {
            actions: { type: 'publishRefusal', params: { why: 'the answer window has closed' } },
            description: 'Refuse a reject that comes after the deadline.',
          },
        ],
        'call.answered': {
          target: 'answered',
          description: 'Someone else answered the call.',
        },
        'call.terminated': {
          target: 'ended',
          actions: 'assignTermination',
          description: 'The caller hung up or Graph deleted the call.',
        },
        'window.closed': {
          guard: 'isWindowClosed',
          target: 'timedOut',
          description: 'The answer window passed with no decision.',
        },
      },
    },
    rejecting: {
      description:
        'A reject request to Graph is in flight, or waiting to be retried inside the answer window.',
      entry: { type: 'publishLifecycle', params: { state: 'rejecting' } },
      initial: 'sending',
      on: {
        'call.reject': {
          actions: { type: 'publishRefusal', params: { why: 'a reject is already under way' } },
          description: 'Refuse a second reject.',
        },
        'call.answered': {
          target: 'answered',
          description: 'Answered first: leaving aborts the request in flight.',
        },
      },
      states: {
        sending: {
          description: 'One reject request is in flight.',
          invoke: {
            id: 'reject',
            src: 'rejectCall',
            input: ({ context, event }) => ({
              callId: context.callId,
              reason: context.reason ?? 'none',
              callbackUri: context.callbackUri,
              attempt: context.attempts,
              deadline: context.deadline,
              remainingMs: context.deadline - event.now,
            }),
            onDone: [
              {
                guard: { type: 'isAccepted', params: ({ event }) => event.output },
                target: '#call.rejected',
                description: 'Graph answered 202 Accepted.',
              },
              {
                guard: { type: 'isGoneAfterUnknownAttempt', params: ({ event }) => event.output },
                target: '#call.rejected',
                description:
                  '404 after an attempt whose outcome is unknown: that attempt went through.',
              },
              {
                guard: { type: 'isGone', params: ({ event }) => event.output },
                target: '#call.ended',
                actions: { type: 'assignCallGone', params: ({ event }) => event.output },
                description: '404: the call no longer exists.',
              },
              {
                guard: 'wasTerminatedMeanwhile',
                target: '#call.ended',
                description: 'Graph ended the call while the request was in flight.',
              },
              {
                guard: { type: 'canRetryInWindow', params: ({ event }) => event.output },
                target: 'waiting',
                actions: { type: 'assignRetry', params: ({ event }) => event.output },
                description:
                  '429, 5xx, network error or time-out: back off, if the retry still fits in the window.',
              },
              {
                guard: { type: 'isRetryable', params: ({ event }) => event.output },
                target: '#call.failed',
                actions: { type: 'assignRetriesExhausted', params: ({ event }) => event.output },
                description: 'Retryable, but no retry fits in the window any more.',
              },
              {
                target: '#call.failed',
                actions: { type: 'assignRefusedByGraph', params: ({ event }) => event.output },
                description: 'Any other 4xx is permanent.',
              },
            ],
            onError: {
              target: '#call.failed',
              actions: {
                type: 'assignRejectActorError',
                params: ({ event }) => ({ error: event.error }),
              },
              description: 'The host could not even report an outcome.',
            },
          },
          on: {
            'call.terminated': {
              actions: 'assignTermination',
              description: 'Note it, and let the outcome of the request decide.',
            },
            'window.closed': [
              {
                guard: and(['isWindowClosed', 'wasTerminatedMeanwhile']),
                target: '#call.ended',
                description: 'The call ended while the request was in flight, and no outcome came.',
              },
              {
                guard: 'isWindowClosed',
                target: '#call.failed',
                actions: 'assignClosedWhileSending',
                description: 'No outcome by the deadline.',
              },
            ],
            'call.recovered': {
              target: 'sending',
              reenter: true,
              actions: 'assignRecovered',
              description:
                'Restored after a crash with a request in flight: its outcome is unknown, so send it again.',
            },
          },
        },
        waiting: {
          description: 'Backing off before the next attempt (Retry-After or exponential).',
          entry: 'scheduleRetry',
          on: {
            'retry.due': {
              guard: and(['isRetryDue', 'isWindowOpen']),
              target: 'sending',
              actions: 'countAttempt',
              description: 'The back-off has elapsed.',
            },
            'window.closed': {
              guard: 'isWindowClosed',
              target: '#call.failed',
              actions: 'assignClosedWhileWaiting',
              description: 'The window closed before the next attempt.',
            },
            'call.terminated': {
              target: '#call.ended',
              actions: 'assignTermination',
              description: 'The call ended while we were backing off.',
            },
          },
        },
      },
    },
    rejected: {
      type: 'final',
      description: 'Graph accepted the reject (202).',
      entry: { type: 'publishLifecycle', params: { state: 'rejected' } },
    },
    answered: {
      type: 'final',
      description: 'The call was answered by someone else before a reject went through.',
      entry: { type: 'publishLifecycle', params: { state: 'answered' } },
    },
    timedOut: {
      type: 'final',
      description: 'The answer window passed with no decision.',
      entry: { type: 'publishLifecycle', params: { state: 'timedOut' } },
    },
    ended: {
      type: 'final',
      description: 'The caller hung up, or Graph deleted the call, before a decision.',
      entry: { type: 'publishLifecycle', params: { state: 'ended' } },
    },
    failed: {
      type: 'final',
      description:
        'The reject could not be done: a permanent Graph error, or retries ran out inside the window.',
      entry: { type: 'publishLifecycle', params: { state: 'failed' } },
    },
  },
});

export type CallMachine = typeof callMachine;

function toGraphError(outcome: RejectOutcome) {
  return {
    status: outcome.status,
    code: outcome.code ?? null,
    message:
      outcome.message ?? (outcome.status === null ? 'no response' : `HTTP ${outcome.status}`),
  };
}

function describeGraphError(error: CallContext['lastError'] & object): string {
  if (error.status === null) return `no response (${error.message})`;
  const message = error.message === `HTTP ${error.status}` ? null : error.message;
  return [error.status, error.code, message].filter(Boolean).join(' ');
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
