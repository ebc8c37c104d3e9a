/**
 * The call's states in the contract's words: their names, which are final,
 * how to read one off a snapshot, and the version of the machine that made a
 * snapshot. Every other part of callgate asks here.
 */

/** The contract's state names, in the order of a call's life. */
export const STATE_NAMES = [
  'ringing',
  'rejecting',
  'rejected',
  'answered',
  'timedOut',
  'ended',
  'failed',
] as const;

export type StateName = (typeof STATE_NAMES)[number];

/** Final states: a call that reaches one never changes again. */
export const FINAL_STATES = [
  'rejected',
  'answered',
  'timedOut',
  'ended',
  'failed',
] as const satisfies readonly StateName[];

export type FinalStateName = (typeof FINAL_STATES)[number];

const FINAL: ReadonlySet<string> = new Set(FINAL_STATES);

/** Whether a state of the contract is final. */
export function isFinalState(state: string): state is FinalStateName {
  return FINAL.has(state);
}

/**
 * The version of the statechart that a stored snapshot was made by. Raise it
 * whenever a state is added, renamed or removed, or the context changes
 * shape, and say in `src/persistence/codec.ts` what becomes of snapshots of
 * the version before (test/machines/version.test.ts fails when the shape
 * pinned for this version no longer matches).
 */
export const MACHINE_VERSION = 1;

/** A snapshot's `value`: a state name, or `{ rejecting: 'sending' | 'waiting' }`. */
export type StateValue = string | Readonly<Record<string, unknown>>;

/**
 * The contract's state of a snapshot value (its top-level state).
 *
 * @example
 * stateNameOf('ringing')                 // 'ringing'
 * stateNameOf({ rejecting: 'waiting' })  // 'rejecting'
 */
export function stateNameOf(value: StateValue): StateName {
  return (typeof value === 'string' ? value : Object.keys(value)[0]) as StateName;
}

/** Whether a snapshot value has a reject request in flight (`rejecting.sending`). */
export function isSending(value: StateValue): boolean {
  return typeof value === 'object' && value.rejecting === 'sending';
}

const REFUSALS: Readonly<Record<FinalStateName, string>> = {
  rejected: 'the call was already rejected',
  answered: 'the call was answered',
  timedOut: 'the answer window has closed',
  ended: 'the call has ended',
  failed: 'the reject was already tried and failed',
};

/**
 * Why a command to a call that is already final cannot apply. A final actor
 * takes no events, so the host asks here instead.
 */
export function whyRefused(state: FinalStateName): string {
  return REFUSALS[state];
}
