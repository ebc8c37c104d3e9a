import type { Snapshot } from 'xstate';
import type { CallContext } from '../../machines/types.js';
import type { CallEnvelope } from '../contract/events.js';
import type { LifecycleRecord } from '../contract/records.js';
import type { Intake } from './intake.js';

/** xstate's persisted snapshot of one call (JSON-safe): what a store keeps of a live or final call. */
export type PersistedCall = Snapshot<unknown> & {
  readonly value: unknown;
  readonly context: CallContext;
  readonly children?: Readonly<Record<string, unknown>>;
};

/**
 * What a store writes for a call: its snapshot, or the events held for it
 * before it was seen; and the messages whose effects that holds.
 */
export type StoredForm = { readonly intake: Intake } & (
  | { readonly snapshot: PersistedCall }
  | { readonly held: readonly CallEnvelope[] }
);

/**
 * Why a call changed: a delivered event carrying the host's message `M`, a
 * timer (deadline, back-off), a reject request's outcome, or a restore that
 * sent a crashed request again.
 */
export type Cause<M> =
  /** `mark`: the message's stream sequence, taken into the call's intake with the change (and stored with it). */
  | { readonly kind: 'event'; readonly message: M; readonly mark: number | undefined }
  | { readonly kind: 'timer' }
  | { readonly kind: 'outcome' }
  | { readonly kind: 'recovery' };

/**
 * What the host stores for a change: nothing (a refusal), the call as it is
 * when written, its last form, or (`forget`) nothing any more: the events
 * held for a call that never came have expired, and its key goes.
 */
export type StoreOp =
  | 'nothing'
  | 'current'
  | 'forget'
  | { readonly final: PersistedCall; readonly intake: Intake };

/**
 * What one step did to one call. The host stores it (reading the call when
 * it writes, so several changes make one write), then publishes its records.
 */
export interface CallChange<M> {
  readonly callId: string;
  readonly cause: Cause<M>;
  /** The lifecycle records the step made for the call (transitions and refusals), in order. */
  readonly records: readonly LifecycleRecord[];
  readonly store: StoreOp;
  /** The end of the call's answer window (epoch ms), when the call is known. */
  readonly deadline: number | undefined;
}

/**
 * What the runtime did with one delivered event. `notHeld`: the call, not
 * seen yet, holds as many early events as it may; this one was dropped.
 */
export type Delivery =
  | 'applied'
  | 'refused'
  | 'held'
  | 'notHeld'
  | 'duplicate'
  | 'ignoredFinal'
  | 'ignored';

/** A valid command that could not apply: the refused event's type and why. */
export interface Refusal {
  readonly type: string;
  readonly why: string;
}

/** The result of delivering one event. */
export interface StepResult {
  readonly delivery: Delivery;
  /** Set when `delivery` is `refused`. */
  readonly refusal?: Refusal;
}

/** What the runtime knows of a call id. */
export type CallKnowledge =
  /** A live call, running or at rest. */
  | 'live'
  /** Events are held for it; its `call.incoming` has not come. */
  | 'held'
  /** Final, and remembered whole. */
  | 'final'
  /** Perhaps a final call that left memory and is still kept by the store. */
  | 'maybeStored'
  | 'unknown';
