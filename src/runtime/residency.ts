import { Actor, createActor, type InspectionEvent, type Observer } from 'xstate';
import { isSending, type StateValue, stateNameOf } from '../../machines/states.js';
import type { CallInput, CallStateName } from '../../machines/types.js';
import type { Clock } from './clock.js';
import type { CallLogic } from './logic.js';
import type { PersistedCall } from './types.js';

export type CallActor = Actor<CallLogic>;

export interface ResidencyOptions {
  readonly logic: CallLogic;
  readonly clock: Clock;
  readonly windowMs: number;
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** How many waiting calls keep a running actor, the least recently used resting first. */
  readonly idleAwake: number;
  /** Every live call keeps its actor running (for an inspector). */
  readonly keepAwake: boolean;
}

/**
 * Where each live call lives: a running actor, or its persisted snapshot at
 * rest. A call that waits for nothing but an event or a timer (`ringing`,
 * `rejecting.waiting`) rests, costing a few hundred bytes instead of a few
 * kilobytes; waking it restores its actor from the snapshot. Only a call with
 * a request in flight must stay awake, and the `idleAwake` most recently used
 * waiting calls may (a call's reject usually follows its incoming soon).
 */
export class Residency {
  readonly #options: ResidencyOptions;
  readonly #calls = new Map<string, CallActor | PersistedCall>();
  /** Waiting calls whose actor still runs, least recently used first. */
  readonly #idle = new Set<string>();
  readonly #limit: number;

  constructor(options: ResidencyOptions) {
    this.#options = options;
    this.#limit = Math.max(0, options.idleAwake);
  }

  get size(): number {
    return this.#calls.size;
  }

  has(callId: string): boolean {
    return this.#calls.has(callId);
  }

  /** A new call's actor, started (its entry actions run). */
  start(input: CallInput): CallActor {
    const actor = createActor(this.#options.logic, { ...this.#actorOptions(input.callId), input });
    this.#calls.set(input.callId, actor);
    actor.start();
    return actor;
  }

  /** A call restored from a store, at rest until an event or a timer wakes it. */
  admit(callId: string, snapshot: PersistedCall): void {
    this.#calls.set(callId, restingForm(snapshot));
  }

  /** The call's running actor, restored from its snapshot if it rests. */
  wake(callId: string): CallActor | undefined {
    const value = this.#calls.get(callId);
    if (value === undefined || value instanceof Actor) return value;
    const { windowMs, clock } = this.#options;
    const actor = createActor(this.#options.logic, {
      ...this.#actorOptions(callId),
      snapshot: value,
      // Ignored when a snapshot is given; the machine's input type requires one.
      input: { callId, at: value.context.deadline - windowMs, now: clock.now(), windowMs },
    });
    this.#calls.set(callId, actor);
    // It rests again after the step unless the step changes it.
    if (!this.#options.keepAwake) this.#idle.add(callId);
    actor.start();
    return actor;
  }

  /** The call was used by a step: it is no longer a candidate to rest first. */
  used(callId: string): void {
    this.#idle.delete(callId);
  }

  /** After a step: a running actor that waits for nothing may rest. */
  settled(callId: string): void {
    const value = this.#calls.get(callId);
    if (!(value instanceof Actor) || this.#options.keepAwake) return;
    const snapshot = value.getSnapshot();
    if (snapshot.status === 'active' && !isSending(snapshot.value as StateValue)) {
      this.#idle.add(callId);
    }
  }

  /** Let the least recently used waiting calls rest, down to the limit. */
  restExcess(): void {
    for (const callId of this.#idle) {
      if (this.#idle.size <= this.#limit) return;
      this.#idle.delete(callId);
      const actor = this.#calls.get(callId);
      if (actor instanceof Actor) {
        this.#calls.set(callId, restingForm(actor.getPersistedSnapshot() as PersistedCall));
        actor.stop();
      }
    }
  }

  /** The call's actor, if it runs. */
  actorOf(callId: string): CallActor | undefined {
    const value = this.#calls.get(callId);
    return value instanceof Actor ? value : undefined;
  }

  /** The call became final: it leaves; its actor (if it ran) stops itself. */
  release(callId: string): void {
    this.#calls.delete(callId);
    this.#idle.delete(callId);
  }

  /** A live call's persisted snapshot, read now. */
  snapshotOf(callId: string): PersistedCall | undefined {
    const value = this.#calls.get(callId);
    return value instanceof Actor ? (value.getPersistedSnapshot() as PersistedCall) : value;
  }

  stateOf(callId: string): CallStateName | undefined {
    const value = this.#calls.get(callId);
    if (value === undefined) return undefined;
    const snapshot = value instanceof Actor ? value.getSnapshot() : value;
    return stateNameOf(snapshot.value as StateValue);
  }

  /** Stop every running actor and forget every call. */
  clear(): void {
    for (const value of this.#calls.values()) if (value instanceof Actor) value.stop();
    this.#calls.clear();
    this.#idle.clear();
  }

  #actorOptions(callId: string) {
    const { clock, inspect } = this.#options;
    return { id: callId, clock, ...(inspect && { inspect }) };
  }
}

/**
 * The snapshot a resting call keeps, as one object literal: every resting
 * call then shares one hidden class, where xstate's copy of a snapshot comes
 * out with a hidden class (its map, descriptors and property array) of its
 * own per call. Empty children and history share one object.
 */
export function restingForm(snapshot: PersistedCall): PersistedCall {
  const { status, output, error, value, historyValue, context, children } =
    snapshot as PersistedCall & { readonly historyValue?: unknown };
  return {
    status,
    output,
    error,
    value,
    historyValue: orEmpty(historyValue),
    context,
    children: orEmpty(children),
  } as PersistedCall;
}

/** One empty object for every resting call without children or history (xstate copies them on restore). */
const EMPTY = Object.freeze({});
const orEmpty = <T>(value: T): T | typeof EMPTY =>
  value !== null && typeof value === 'object' && Object.keys(value).length === 0 ? EMPTY : value;
