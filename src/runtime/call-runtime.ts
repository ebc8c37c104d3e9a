import {
  Actor,
  createActor,
  fromPromise,
  type InspectionEvent,
  type Observer,
  type Snapshot,
} from 'xstate';
import { callMachine } from '../../machines/call.machine.js';
import { type FinalStateName, isFinalState, whyRefused } from '../../machines/states.js';
import type {
  CallContext,
  CallEvent,
  CallStateName,
  RejectOutcome,
  RejectRequest,
} from '../../machines/types.js';
import type { CallEnvelope } from '../contract/events.js';
import type { LifecycleRecord } from '../contract/records.js';
import type { Clock } from './clock.js';
import type { CallControl, RecordSink, RuntimeLog } from './ports.js';
import { createScheduler, type Scheduler } from './scheduler.js';

/** What the runtime did with one delivered event. */
export type Delivery = 'applied' | 'refused' | 'held' | 'duplicate' | 'ignoredFinal' | 'ignored';

/**
 * What a timer is for: one heap holds every call's deadline and back-off,
 * the expiry of early events, and (in replays) simulated request latency.
 */
export type TimerKind = 'deadline' | 'retry' | 'hold' | 'evict' | 'callback';
/** A call id, or for `callback` the function to run. */
export type TimerValue = string | (() => void);

type CallActor = Actor<typeof callMachine>;

/** What {@link CallRuntime.persist} returns: xstate's persisted snapshot of one call. */
export type PersistedCall = Snapshot<unknown> & {
  readonly value: unknown;
  readonly context: CallContext;
  readonly children?: Readonly<Record<string, unknown>>;
};

interface Held {
  readonly envelope: CallEnvelope;
  readonly expiresAt: number;
}

export interface CallRuntimeOptions {
  readonly clock: Clock;
  /** The answer window (ms). */
  readonly windowMs: number;
  readonly control: CallControl;
  readonly sink: RecordSink;
  readonly log?: RuntimeLog;
  /** Receives every actor's inspection events (the Stately inspector). */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /**
   * Called once per changed call after each step (a delivered event, a timer,
   * a request's outcome) with a function that reads the call's persisted
   * snapshot when it is called, so a host that writes later reads once what
   * several steps changed. A final call's reader gives its last snapshot
   * (`status: 'done'`); an earlier reader of it, and any reader once the
   * runtime has stopped, gives `undefined`. During `deliver()` it is called
   * before `deliver()` returns, so a host can persist a message's effects
   * before acknowledging it.
   */
  readonly onChange?: (callId: string, read: () => PersistedCall | undefined) => void;
  /**
   * How many waiting calls keep their actor running after a step, the least
   * recently used resting first when there are more (default 0: every
   * waiting call rests at once). A few hundred awake calls cost a few
   * kilobytes each and spare the next event to each of them a restore: a
   * call's reject usually comes soon after its incoming.
   */
  readonly idleAwake?: number;
  /** How long a final call is remembered, so late commands are refused (default: for ever). */
  readonly retentionMs?: number;
  /**
   * Keep every live call's actor running instead of letting it rest as a
   * snapshot between steps (default false). For inspection: an inspector then
   * sees one actor per call for its whole life, at about 4 KB a call.
   */
  readonly keepAwake?: boolean;
}

export interface CallRuntime {
  /**
   * Route one valid event to its call. Synchronous; a reject request runs on.
   * `redelivered`: the message carrying it was delivered before, so an
   * earlier run may have sent a reject for it (see the machine's `call.reject`).
   */
  deliver(envelope: CallEnvelope, options?: { redelivered?: boolean }): Delivery;
  /** The earliest-deadline-first timer shared by all calls. */
  readonly scheduler: Scheduler<TimerKind, TimerValue>;
  /** Live (non-final) calls. */
  readonly liveCount: number;
  /** Live calls with a running actor (a request in flight); the rest rest as snapshots. */
  readonly awakeCount: number;
  /** Reject requests started and not yet settled. */
  readonly inFlight: number;
  /** A live call's persisted snapshot (JSON-safe), for a snapshot store. */
  persist(callId: string): PersistedCall | undefined;
  /**
   * Bring back a call persisted by {@link persist} (or reported by `onChange`;
   * a final one becomes a tombstone): its deadline and back-off
   * are re-armed from context alone (xstate keeps no pending timers in a
   * snapshot, statelyai/xstate#4860), and a request that was in flight is sent
   * again with its outcome counted as unknown.
   */
  restore(snapshot: PersistedCall, options?: { deferResend?: boolean }): void;
  /**
   * Send again up to `max` of the requests that restores with `deferResend`
   * left for later, earliest restored first; returns how many are left. A
   * call left for later is recovered first anyway when an event or timer
   * reaches it.
   */
  resendDeferred(max: number): number;
  /** A live call's context, without persisting it (cheap; `undefined` once final). */
  contextOf(callId: string): Readonly<CallContext> | undefined;
  /** The state of a call: live, final, or unknown (`undefined`). */
  stateOf(callId: string): CallStateName | undefined;
  /** Disarm the timer and drop every call; outcomes that settle later publish nothing. */
  stop(): void;
}

/** What is kept of a final call, so late commands are refused with its facts. */
interface Tombstone {
  readonly state: FinalStateName;
  readonly reason: CallContext['reason'];
  readonly attempts: number;
}

const NO_LOG: RuntimeLog = { warn: () => {}, error: () => {} };

/**
 * The per-call host: one xstate actor per call, keyed by call id; a buffer for
 * events that arrive before their call; tombstones for final calls; and one
 * scheduler for every deadline and back-off. It owns no I/O of its own: Graph
 * is reached through `control` and records leave through `sink`.
 *
 * A call is a durable keyed actor: while it waits for nothing but an event or
 * a timer (`ringing`, `rejecting.waiting`) it rests as its persisted snapshot,
 * and the next event or timer restores its actor, which runs the step and
 * rests again. Only a call with a reject request in flight keeps a running
 * actor. A resting call costs a few hundred bytes instead of a few kilobytes,
 * and resting and restoring after a crash are the same code path.
 */
export function createCallRuntime(options: CallRuntimeOptions): CallRuntime {
  const { clock, windowMs, control, sink } = options;
  const log = options.log ?? NO_LOG;
  /** Every live call: a running actor, or its persisted snapshot at rest. */
  const calls = new Map<string, CallActor | PersistedCall>();
  const finals = new Map<string, Tombstone>();
  const held = new Map<string, Held[]>();
  let inFlight = 0;
  let refusedNow = false;
  let stopped = false;
  let awake = 0;
  /** Calls changed by the current step; settled (rested, reported) at its end. */
  const touched = new Set<string>();
  /** Actors that reached a final state in the current step, until it settles. */
  const finishing = new Map<string, CallActor>();
  let depth = 0;
  let settleQueued = false;
  /** Calls restored with a request in flight at the crash, not sent again yet. */
  const toRecover = new Set<string>();
  /** Waiting calls whose actor still runs, least recently used first. */
  const idle = new Set<string>();
  const idleAwake = options.keepAwake ? 0 : Math.max(0, options.idleAwake ?? 0);

  // Records made in the same millisecond share one timestamp string.
  let isoMs = Number.NaN;
  let isoText = '';
  const iso = (ms: number) => {
    if (ms !== isoMs) {
      isoMs = ms;
      isoText = new Date(ms).toISOString();
    }
    return isoText;
  };

  const scheduler = createScheduler<TimerKind, TimerValue>({
    clock,
    onDue: (kind, value) => {
      if (typeof value === 'function') value();
      else if (kind === 'hold') expireHeld(value);
      else if (kind === 'evict') finals.delete(value);
      else
        step(() => {
          const now = clock.now();
          const actor = wake(value);
          if (!actor || closeIfDue(actor, now) || kind !== 'retry') return;
          actor.send({ type: 'retry.due', now });
          touch(value);
        });
    },
  });

  const machine = callMachine.provide({
    actors: {
      rejectCall: fromPromise<RejectOutcome, RejectRequest>(async ({ input, signal }) => {
        inFlight++;
        try {
          const outcome = await control.reject(input, signal);
          return { ...outcome, at: clock.now() };
        } finally {
          inFlight--;
        }
      }),
    },
    actions: {
      publishLifecycle: ({ context, self }, { state }) => {
        if (stopped) return;
        touch(context.callId);
        // Actions run before xstate commits the step, so `self` still shows
        // the state being left; `ringing` is only ever entered first.
        const previous = state === 'ringing' ? null : stateName(self.getSnapshot());
        if (isFinalState(state)) {
          // The actor stops itself at the end of this step; keep only a tombstone.
          const actor = calls.get(context.callId);
          if (actor instanceof Actor) {
            awake--;
            finishing.set(context.callId, actor);
          }
          calls.delete(context.callId);
          remember(context.callId, {
            state,
            reason: context.reason,
            attempts: context.attempts,
          });
        }
        sink.lifecycle({
          callId: context.callId,
          state,
          previous,
          at: iso(clock.now()),
          ...(context.reason !== null && { reason: context.reason, attempts: context.attempts }),
          ...(context.error !== null &&
            (state === 'failed' || state === 'ended') && {
              error: context.error,
            }),
        });
      },
      publishRefusal: ({ context, event, self }, { why }) => {
        if (stopped) return;
        const state = stateName(self.getSnapshot());
        refusedNow = true;
        sink.lifecycle(refusal(context.callId, state, event.type, why, context));
      },
      scheduleRetry: ({ context }) => {
        if (context.retryAt !== null) {
          scheduler.schedule(context.retryAt, 'retry', context.callId);
        }
        touch(context.callId);
      },
    },
  });

  function remember(callId: string, tombstone: Tombstone): void {
    finals.set(callId, tombstone);
    if (options.retentionMs !== undefined) {
      scheduler.schedule(clock.now() + options.retentionMs, 'evict', callId);
    }
  }

  function actorOptions(callId: string) {
    return { id: callId, clock, ...(options.inspect && { inspect: options.inspect }) };
  }

  /** The call's running actor, restoring it from its snapshot when it rests. */
  function wake(callId: string): CallActor | undefined {
    const value = calls.get(callId);
    if (value === undefined || value instanceof Actor) return value;
    const actor = createActor(machine, {
      ...actorOptions(callId),
      snapshot: value,
      // Ignored when a snapshot is given; the machine's input type requires one.
      input: { callId, at: value.context.deadline - windowMs, now: clock.now(), windowMs },
    });
    calls.set(callId, actor);
    awake++;
    // Rests again at the end of the step unless the step changes it.
    if (!options.keepAwake) idle.add(callId);
    actor.start();
    if (toRecover.delete(callId)) recover(actor);
    return actor;
  }

  /** Wake a call restored with a request in flight, which sends it again (or closes its window). */
  function resendNow(callId: string): void {
    step(() => {
      const actor = wake(callId);
      toRecover.delete(callId);
      if (actor) closeIfDue(actor, clock.now());
    });
  }

  /**
   * The request in flight at a crash: send it again. Past the deadline the
   * caller closes the window instead (every caller of `wake` checks).
   */
  function recover(actor: CallActor): void {
    const now = clock.now();
    const { context } = actor.getSnapshot();
    if (now >= context.deadline) return;
    actor.send({ type: 'call.recovered', now });
    touch(context.callId);
  }

  /** Note a changed call; outside a step (a request's outcome) settle once xstate commits. */
  function touch(callId: string): void {
    touched.add(callId);
    idle.delete(callId);
    if (depth === 0 && !settleQueued) {
      settleQueued = true;
      queueMicrotask(settle);
    }
  }

  /** Run one step (a delivery, a timer, a restore), then settle what it changed. */
  function step<T>(run: () => T): T {
    depth++;
    try {
      return run();
    } finally {
      depth--;
      if (depth === 0) settle();
    }
  }

  /**
   * Let each changed call rest (unless a request is in flight) and report its
   * snapshot. A final actor has stopped itself; its snapshot is reported once.
   */
  function settle(): void {
    settleQueued = false;
    if (stopped) {
      touched.clear();
      finishing.clear();
      return;
    }
    for (const callId of touched) {
      const final = finishing.get(callId);
      const value = final ?? calls.get(callId);
      if (value === undefined) continue;
      if (value instanceof Actor && final === undefined) {
        const live = value.getSnapshot();
        const resting = live.status === 'active' && !live.matches({ rejecting: 'sending' });
        if (resting && !options.keepAwake) idle.add(callId);
      }
      // The readers are made outside this loop: a closure made here would
      // share the loop's scope, and keep the actor alive as long as the host
      // keeps the reader.
      if (!(value instanceof Actor)) options.onChange?.(callId, constant(value));
      else if (final !== undefined) {
        options.onChange?.(callId, constant(final.getPersistedSnapshot() as PersistedCall));
      } else options.onChange?.(callId, reader(callId));
    }
    touched.clear();
    finishing.clear();
    while (idle.size > idleAwake) restOldest();
  }

  function constant(snapshot: PersistedCall): () => PersistedCall {
    return () => snapshot;
  }

  function reader(callId: string): () => PersistedCall | undefined {
    return () => read(callId);
  }

  /** A live call's snapshot now; `undefined` once it is final (its last change carries its own). */
  function read(callId: string): PersistedCall | undefined {
    const value = calls.get(callId);
    if (value instanceof Actor) return value.getPersistedSnapshot() as PersistedCall;
    return value;
  }

  /** Let the least recently used waiting call rest as its snapshot. */
  function restOldest(): void {
    for (const callId of idle) {
      idle.delete(callId);
      const actor = calls.get(callId);
      if (actor instanceof Actor) {
        calls.set(callId, actor.getPersistedSnapshot() as PersistedCall);
        awake--;
        actor.stop();
      }
      return;
    }
  }

  function refusal(
    callId: string,
    state: CallStateName,
    type: string,
    why: string,
    context?: { reason: LifecycleRecord['reason'] | null; attempts: number },
  ): LifecycleRecord {
    return {
      callId,
      state,
      previous: state,
      at: iso(clock.now()),
      ...(context?.reason != null && { reason: context.reason, attempts: context.attempts }),
      error: `${type} refused: ${why}`,
      refused: { type, why },
    };
  }

  function start(envelope: CallEnvelope & { type: 'call.incoming' }): void {
    const now = clock.now();
    const actor = createActor(machine, {
      ...actorOptions(envelope.callId),
      input: { callId: envelope.callId, at: envelope.at, now, windowMs },
    });
    calls.set(envelope.callId, actor);
    awake++;
    actor.start();
    const { deadline } = actor.getSnapshot().context;
    if (deadline <= now) actor.send({ type: 'window.closed', now });
    else scheduler.schedule(deadline, 'deadline', envelope.callId);
    touch(envelope.callId);
    const early = held.get(envelope.callId);
    if (early) {
      held.delete(envelope.callId);
      for (const item of early) {
        if (item.expiresAt > now) deliver(item.envelope);
      }
    }
  }

  function toMachineEvent(
    envelope: CallEnvelope,
    now: number,
    redelivered: boolean,
  ): CallEvent | undefined {
    switch (envelope.type) {
      case 'call.reject':
        return {
          type: 'call.reject',
          now,
          reason: envelope.reason,
          callbackUri: envelope.callbackUri,
          ...(redelivered && { redelivered }),
        };
      case 'call.answered':
        return { type: 'call.answered', now };
      case 'call.terminated':
        return {
          type: 'call.terminated',
          now,
          code: envelope.code,
          subcode: envelope.subcode,
          message: envelope.message,
        };
      default:
        return undefined;
    }
  }

  /**
   * The deadline passed but its timer has not fired yet (it fires on the next
   * turn, or a replay line arrived late): close the window first, so an event
   * never lands on a call whose window is already closed.
   */
  function closeIfDue(actor: CallActor, now: number): boolean {
    const snapshot = actor.getSnapshot();
    if (snapshot.status !== 'active') return true;
    if (now < snapshot.context.deadline) return false;
    actor.send({ type: 'window.closed', now });
    touch(actor.getSnapshot().context.callId);
    return true;
  }

  function hold(envelope: CallEnvelope): void {
    const now = clock.now();
    const expiresAt = Math.min(envelope.at, now) + windowMs;
    const list = held.get(envelope.callId);
    if (list) list.push({ envelope, expiresAt });
    else held.set(envelope.callId, [{ envelope, expiresAt }]);
    scheduler.schedule(expiresAt, 'hold', envelope.callId);
  }

  function expireHeld(callId: string): void {
    const list = held.get(callId);
    if (!list) return;
    const now = clock.now();
    const kept = list.filter((item) => item.expiresAt > now);
    for (const item of list) {
      if (item.expiresAt <= now) {
        log.warn(
          { callId, type: item.envelope.type },
          'dropped an event for a call that never came',
        );
      }
    }
    if (kept.length > 0) held.set(callId, kept);
    else held.delete(callId);
  }

  function deliver(envelope: CallEnvelope, deliverOptions?: { redelivered?: boolean }): Delivery {
    if (stopped) throw new Error('the call runtime was stopped');
    return step(() => apply(envelope, deliverOptions?.redelivered === true));
  }

  function apply(envelope: CallEnvelope, redelivered = false): Delivery {
    const { callId } = envelope;
    const final = finals.get(callId);
    if (final) {
      if (envelope.type !== 'call.reject') return 'ignoredFinal';
      sink.lifecycle(refusal(callId, final.state, envelope.type, whyRefused(final.state), final));
      return 'refused';
    }
    if (envelope.type === 'call.incoming') {
      if (calls.has(callId)) return 'duplicate';
      start(envelope);
      return 'applied';
    }
    const now = clock.now();
    const event = toMachineEvent(envelope, now, redelivered);
    const actor = wake(callId);
    if (!actor) {
      hold(envelope);
      return 'held';
    }
    if (!event) return 'ignored';
    if (closeIfDue(actor, now)) return apply(envelope, redelivered);
    const before = actor.getSnapshot();
    refusedNow = false;
    actor.send(event);
    const after = actor.getSnapshot();
    if (refusedNow) return 'refused';
    if (after === before) return 'ignored';
    touch(callId);
    return 'applied';
  }

  return {
    deliver,
    scheduler,
    get liveCount() {
      return calls.size;
    },
    get awakeCount() {
      return awake;
    },
    get inFlight() {
      return inFlight;
    },
    persist(callId) {
      const value = calls.get(callId);
      return value instanceof Actor ? (value.getPersistedSnapshot() as PersistedCall) : value;
    },
    restore(persisted, restoreOptions) {
      const { callId, deadline, retryAt, reason, attempts } = persisted.context;
      if (persisted.status === 'done') {
        remember(callId, { state: stateName(persisted) as FinalStateName, reason, attempts });
        return;
      }
      const inFlightAtCrash = isSending(persisted);
      // The request in flight at the crash died with the process: drop its
      // child so that `call.recovered` sends it again with fresh input.
      calls.set(callId, inFlightAtCrash ? { ...persisted, children: {} } : persisted);
      scheduler.schedule(deadline, 'deadline', callId);
      if (retryAt !== null) scheduler.schedule(retryAt, 'retry', callId);
      if (inFlightAtCrash) {
        toRecover.add(callId);
        // Waking it sends the request again.
        if (!restoreOptions?.deferResend) resendNow(callId);
      }
    },
    resendDeferred(max) {
      let sent = 0;
      for (const callId of toRecover) {
        if (sent >= max) break;
        sent++;
        resendNow(callId);
      }
      return toRecover.size;
    },
    contextOf(callId) {
      const value = calls.get(callId);
      return value instanceof Actor ? value.getSnapshot().context : value?.context;
    },
    stateOf(callId) {
      const value = calls.get(callId);
      if (value) return stateName(value instanceof Actor ? value.getSnapshot() : value);
      return finals.get(callId)?.state;
    },
    stop() {
      stopped = true;
      scheduler.stop();
      for (const value of calls.values()) if (value instanceof Actor) value.stop();
      calls.clear();
      idle.clear();
      toRecover.clear();
      held.clear();
    },
  };
}

function isSending(snapshot: { value?: unknown }): boolean {
  const value = snapshot.value;
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { rejecting?: unknown }).rejecting === 'sending'
  );
}

function stateName(snapshot: Snapshot<unknown> & { value?: unknown }): CallStateName {
  const value = snapshot.value;
  return (typeof value === 'string' ? value : Object.keys(value as object)[0]) as CallStateName;
}
