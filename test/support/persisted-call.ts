import { createActor } from 'xstate';
import { callMachine } from '../../machines/call.machine.js';
import { isFinalState } from '../../machines/states.js';
import type { PersistedCall } from '../../src/runtime/types.js';

/**
 * A call as a store holds it: the machine's own first snapshot for `callId`
 * with its deadline at `deadline`, moved to `value` (final states done), as a
 * run before a restart would have left it.
 */
export function persistedCall(callId: string, value: string, deadline: number): PersistedCall {
  const input = { callId, at: deadline, now: deadline, windowMs: 0 };
  const first = createActor(callMachine, { input }).getPersistedSnapshot();
  const status = isFinalState(value) ? 'done' : 'active';
  return { ...first, value, status } as PersistedCall;
}
