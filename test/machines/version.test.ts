import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { callMachine } from '../../machines/call.machine.js';
import { MACHINE_VERSION } from '../../machines/states.js';

/**
 * What a stored snapshot depends on: the machine's state ids and its context
 * keys. A snapshot made by one shape cannot be restored blindly into another,
 * so each shape has its own MACHINE_VERSION.
 */
const SHAPES: Readonly<Record<number, string>> = {
  1: [
    'states: call, call.answered, call.ended, call.failed, call.rejected, call.rejecting,',
    'call.rejecting.sending, call.rejecting.waiting, call.ringing, call.timedOut;',
    'context: attempts, callId, callbackUri, deadline, error, lastError, outcomeUnknown,',
    'reason, retryAt, terminated',
  ].join(' '),
};

interface Node {
  readonly id: string;
  readonly states: Readonly<Record<string, Node>>;
}

function stateIds(node: Node): string[] {
  return [node.id, ...Object.values(node.states).flatMap(stateIds)];
}

function shapeOf(machine: typeof callMachine): string {
  const states = stateIds(machine.root).sort().join(', ');
  const input = { callId: 'c', at: 0, now: 0, windowMs: 100 };
  const context = Object.keys(createActor(machine, { input }).getSnapshot().context)
    .sort()
    .join(', ');
  return `states: ${states}; context: ${context}`;
}

describe('the machine version', () => {
  it('names the shape of the machine that stored snapshots depend on (raise it when the shape changes)', () => {
    expect(shapeOf(callMachine)).toBe(SHAPES[MACHINE_VERSION]);
  });
});
