import { describe, expect, it } from 'vitest';
import type { AnyStateNode, AnyTransitionDefinition, SnapshotFrom, StateValue } from 'xstate';
import {
  adjacencyMapToArray,
  getAdjacencyMap,
  getShortestPaths,
  getSimplePaths,
  type StatePath,
  serializeSnapshot,
} from 'xstate/graph';
import { callMachine } from '../../machines/call.machine.js';
import { isRetryableStatus, RETRY_POLICY } from '../../machines/retry.js';
import type { CallEvent, CallInput, RejectOutcome } from '../../machines/types.js';

/**
 * Path search over the real machine: every state node is reachable and every
 * transition (each guarded branch on its own) is taken, with events that carry
 * times before and after the deadline and one done event per outcome class.
 */

type CallSnapshot = SnapshotFrom<typeof callMachine>;
type CallPath = StatePath<CallSnapshot, CallEvent>;

const INPUT: CallInput = { callId: 'c1', at: 0, now: 0, windowMs: 10_000 };
const DEADLINE = INPUT.at + INPUT.windowMs;
/** When a reject request comes back: early enough for any back-off to fit before the deadline. */
const OUTCOME_AT = 1_000;

function done(outcome: Partial<RejectOutcome> & Pick<RejectOutcome, 'status'>): CallEvent {
  const output: RejectOutcome = { maybeDelivered: false, at: OUTCOME_AT, ...outcome };
  // Done events are internal to xstate, so the machine's event type does not list them.
  return { type: 'xstate.done.actor.reject', output } as unknown as CallEvent;
}

const EVENTS: CallEvent[] = [
  { type: 'call.reject', now: 1_000, reason: 'busy' },
  { type: 'call.reject', now: DEADLINE, reason: 'busy' },
  { type: 'call.answered', now: 1_000 },
  { type: 'call.terminated', now: 1_000, code: '0', message: 'bye' },
  { type: 'window.closed', now: DEADLINE - 1 },
  { type: 'window.closed', now: DEADLINE },
  { type: 'retry.due', now: OUTCOME_AT },
  // Later than any back-off after OUTCOME_AT (the cap is 3 s), still inside the window.
  { type: 'retry.due', now: DEADLINE - 1 },
  { type: 'call.recovered', now: 2_000 },
  done({ status: 202 }),
  done({ status: 404 }),
  done({ status: 403, code: '7504', message: 'Insufficient permissions' }),
  done({ status: 400 }),
  done({ status: 503 }),
  done({ status: 429, retryAfterMs: DEADLINE }),
  done({ status: null, maybeDelivered: true, message: 'timed out' }),
  done({ status: null, maybeDelivered: false, message: 'ECONNRESET' }),
  { type: 'xstate.error.actor.reject', error: 'boom' } as unknown as CallEvent,
];

const TRAVERSAL = {
  input: INPUT,
  events: EVENTS,
  // A final state takes no events. A recovery happens once per restore; repeating it
  // would count attempts for ever.
  filterEvents: (snapshot: CallSnapshot, event: CallEvent) =>
    snapshot.status !== 'done' &&
    (event.type !== 'call.recovered' || !snapshot.context.outcomeUnknown),
  // Final states with equal context are told apart by the event that reached them,
  // so that each guarded branch into the same final state gets a path of its own.
  serializeState: (snapshot: CallSnapshot, event: CallEvent | undefined) =>
    snapshot.status === 'done'
      ? `${serializeSnapshot(snapshot)} via ${JSON.stringify(event)}`
      : serializeSnapshot(snapshot),
};

function stateNodes(node: AnyStateNode = callMachine.root): AnyStateNode[] {
  return [node, ...Object.values(node.states).flatMap((child) => stateNodes(child))];
}

function transitionsOf(node: AnyStateNode): AnyTransitionDefinition[] {
  return [...node.transitions.values()].flat();
}

const ALL_TRANSITIONS = stateNodes().flatMap(transitionsOf);

function describeTransition(t: AnyTransitionDefinition): string {
  const guard = t.guard === undefined ? '' : ` [${JSON.stringify(t.guard)}]`;
  const target = t.target?.map((node) => node.id).join(',') ?? '(stays)';
  return `${t.source.id} --${t.eventType}--> ${target}${guard}`;
}

/** The ids of the state nodes a state value is in: `{ rejecting: 'sending' }` → `call.rejecting`, `call.rejecting.sending`. */
function activeIds(value: StateValue | undefined, prefix = callMachine.root.id): string[] {
  if (value === undefined) return [];
  if (typeof value === 'string') return [`${prefix}.${value}`];
  return Object.entries(value).flatMap(([key, child]) => [
    `${prefix}.${key}`,
    ...activeIds(child, `${prefix}.${key}`),
  ]);
}

/** The transitions the machine selected for each step of a path. */
function transitionsTaken(path: CallPath): AnyTransitionDefinition[] {
  return path.steps
    .slice(1)
    .flatMap((step, i) =>
      callMachine.getTransitionData(
        (path.steps[i] as (typeof path.steps)[number]).state,
        step.event,
      ),
    );
}

/** The reject outcome of the path's last step, when that step is a done event. */
function outputOf(path: CallPath): RejectOutcome | undefined {
  const event = path.steps.at(-1)?.event as { type: string; output?: RejectOutcome } | undefined;
  return event?.type === 'xstate.done.actor.reject' ? event.output : undefined;
}

describe('path coverage of the call machine', () => {
  const paths = getShortestPaths(callMachine, TRAVERSAL);

  it('reaches every state node', () => {
    const reached = new Set([
      callMachine.root.id,
      ...paths.flatMap((p) => activeIds(p.state.value)),
    ]);
    const unreached = stateNodes()
      .map((node) => node.id)
      .filter((id) => !reached.has(id));

    expect(stateNodes().map((node) => node.id)).toEqual([
      'call',
      'call.ringing',
      'call.rejecting',
      'call.rejecting.sending',
      'call.rejecting.waiting',
      'call.rejected',
      'call.answered',
      'call.timedOut',
      'call.ended',
      'call.failed',
    ]);
    expect(unreached).toEqual([]);
  });

  it('takes every transition that has a target, each guarded branch on its own', () => {
    const taken = new Set(paths.flatMap(transitionsTaken));
    const targeted = ALL_TRANSITIONS.filter((t) => t.target !== undefined);

    const untaken = targeted.filter((t) => !taken.has(t)).map(describeTransition);

    expect(targeted).not.toEqual([]);
    expect(untaken).toEqual([]);
  });

  it('enters the target of each taken transition in the next step', () => {
    const mismatches = paths.flatMap((path) =>
      path.steps.slice(1).flatMap((step, i) => {
        const from = (path.steps[i] as (typeof path.steps)[number]).state;
        return callMachine
          .getTransitionData(from, step.event)
          .flatMap((t) => t.target ?? [])
          .filter((target) => !activeIds(step.state.value).includes(target.id))
          .map(
            (target) =>
              `${step.event.type}: expected ${target.id}, got ${JSON.stringify(step.state.value)}`,
          );
      }),
    );

    expect(mismatches).toEqual([]);
  });

  it('exercises every transition, targetless ones included, somewhere in the state graph', () => {
    const edges = adjacencyMapToArray(getAdjacencyMap(callMachine, TRAVERSAL));
    const exercised = new Set(
      edges.flatMap(({ state, event }) => callMachine.getTransitionData(state, event)),
    );

    const unexercised = ALL_TRANSITIONS.filter((t) => !exercised.has(t)).map(describeTransition);

    expect(unexercised).toEqual([]);
  });

  it('ends every path that leaves the machine in a final state with status done', () => {
    const finals = paths.filter((path) => path.state.status === 'done');

    expect(new Set(finals.map((path) => path.state.value))).toEqual(
      new Set(['rejected', 'answered', 'timedOut', 'ended', 'failed']),
    );
    for (const path of finals) {
      expect(callMachine.getStateNodeById(`call.${String(path.state.value)}`).type).toBe('final');
    }
  });

  it('reaches the attempt limit inside the window and fails there on a retryable outcome', () => {
    const exhausted = paths.filter((path) => {
      const output = outputOf(path);
      return (
        path.state.value === 'failed' &&
        path.state.context.attempts === RETRY_POLICY.maxAttempts &&
        output !== undefined &&
        isRetryableStatus(output.status)
      );
    });

    expect(exhausted.length).toBeGreaterThan(0);
    for (const path of exhausted) {
      expect(path.state.context.error).toMatch(/^retries ran out inside the answer window/);
    }
  });

  it('never reaches rejected without a 2xx, or a 404 after an attempt whose outcome is unknown', () => {
    const rejected = paths.filter((path) => path.state.value === 'rejected');

    expect(rejected.length).toBeGreaterThan(0);
    for (const path of rejected) {
      const before = path.steps.at(-2)?.state;
      const output = outputOf(path) as RejectOutcome;
      const accepted = output.status !== null && output.status >= 200 && output.status < 300;
      expect(accepted || (output.status === 404 && before?.context.outcomeUnknown)).toBe(true);
    }
  });
});

describe('simple paths to answered', () => {
  it('lets a call be answered from ringing, while sending and while backing off', () => {
    const paths = getSimplePaths(callMachine, {
      input: INPUT,
      events: [
        { type: 'call.reject', now: 1_000, reason: 'busy' },
        { type: 'call.answered', now: 1_500 },
        done({ status: 503 }),
        { type: 'retry.due', now: DEADLINE - 1 },
      ],
      toState: (snapshot) => snapshot.value === 'answered',
    });

    const answeredFrom = new Set(
      paths
        .filter((path) => path.state.value === 'answered')
        .map((path) => JSON.stringify(path.steps.at(-2)?.state.value)),
    );

    expect(answeredFrom).toEqual(
      new Set([
        JSON.stringify('ringing'),
        JSON.stringify({ rejecting: 'sending' }),
        JSON.stringify({ rejecting: 'waiting' }),
      ]),
    );
  });
});
