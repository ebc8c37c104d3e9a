import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { callMachine } from '../../machines/call.machine.js';
import { restingForm } from '../../src/runtime/residency.js';
import type { PersistedCall } from '../../src/runtime/types.js';

const T0 = Date.parse('2026-11-27T09:00:00.000Z');
const input = (callId: string) => ({ callId, at: T0, now: T0, windowMs: 15_000 });

function persisted(callId: string): PersistedCall {
  const actor = createActor(callMachine, { input: input(callId) });
  actor.start();
  const snapshot = actor.getPersistedSnapshot() as PersistedCall;
  actor.stop();
  return snapshot;
}

describe('the resting form of a call', () => {
  it('keeps every field xstate persists, with the same values', () => {
    const snapshot = persisted('a');
    const rest = restingForm(snapshot);
    expect(Object.keys(rest).sort()).toEqual(Object.keys(snapshot).sort());
    expect(JSON.parse(JSON.stringify(rest))).toEqual(JSON.parse(JSON.stringify(snapshot)));
  });

  it('shares one empty object for the children and history of calls that have none', () => {
    const [a, b] = [restingForm(persisted('a')), restingForm(persisted('b'))];
    expect(a.children).toBe(b.children);
    expect(Object.isFrozen(a.children)).toBe(true);
  });

  it('can be woken and taken through a reject, leaving the shared empty object empty', () => {
    const rest = restingForm(persisted('a'));
    const actor = createActor(callMachine, { snapshot: rest, input: input('a') });
    actor.start();
    actor.send({ type: 'call.reject', now: T0 + 100, reason: 'busy' });
    expect(actor.getSnapshot().value).toEqual({ rejecting: expect.any(String) });
    actor.stop();
    expect(Object.keys(restingForm(persisted('b')).children ?? {})).toEqual([]);
  });
});
