import { describe, expect, it } from 'vitest';
import { MACHINE_VERSION } from '../../machines/states.js';
import { decodeCall, encodeCall, isFinalStored } from '../../src/persistence/codec.js';
import type { PersistedCall } from '../../src/runtime/call-runtime.js';

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const snapshot = (value: unknown) =>
  ({ status: 'active', value, context: { callId: 'c1' } }) as unknown as PersistedCall;

describe('the stored-call codec', () => {
  it('writes the machine version and the messages taken in with every call', () => {
    const intake = { floor: 0, seqs: [2, 3] };
    const text = new TextDecoder().decode(encodeCall({ snapshot: snapshot('ringing'), intake }));
    expect(JSON.parse(text)).toEqual({
      v: MACHINE_VERSION,
      seq: 3,
      applied: [2, 3],
      snapshot: snapshot('ringing'),
    });
  });

  it('reads back what it wrote, a floor included', () => {
    const call = { snapshot: snapshot({ rejecting: 'waiting' }), intake: { floor: 9, seqs: [12] } };
    expect(decodeCall(encodeCall(call))).toEqual({ ok: true, call });
  });

  it('keeps the records of the change it stores, to send them again after a crash', () => {
    const records = [
      { callId: 'c1', state: 'ringing', previous: null, at: '2026-11-27T09:00:00.000Z' },
    ] as const;
    const call = { snapshot: snapshot('ringing'), intake: { floor: 0, seqs: [4] }, records };
    expect(decodeCall(encodeCall(call))).toEqual({ ok: true, call });
  });

  it('reads a value written before versions as version 1, every message up to its seq taken in', () => {
    expect(decodeCall(bytes({ seq: 2, snapshot: snapshot('ringing') }))).toEqual({
      ok: true,
      call: { snapshot: snapshot('ringing'), intake: { floor: 2, seqs: [] } },
    });
  });

  it('refuses a snapshot of another version, naming both versions, and keeps its bytes', () => {
    const data = bytes({ v: 2, seq: 2, snapshot: snapshot('ringing') });
    expect(decodeCall(data)).toEqual({
      ok: false,
      error:
        'the snapshot was stored by machine version 2; this service runs version 1 and does not restore it',
      data,
    });
  });

  it('reads held events whatever the version: they are wire-format envelopes', () => {
    const held = [{ type: 'call.reject', callId: 'c1', at: 1, reason: 'busy' }];
    expect(decodeCall(bytes({ v: 7, seq: 4, applied: [4], held }))).toEqual({
      ok: true,
      call: { held, intake: { floor: 0, seqs: [4] } },
    });
  });

  it('refuses what is not a stored call, saying why', () => {
    expect(decodeCall(new TextEncoder().encode('{'))).toMatchObject({
      ok: false,
      error: 'the stored value is not JSON',
    });
    expect(decodeCall(bytes({ v: 1, snapshot: snapshot('ringing') }))).toMatchObject({
      ok: false,
      error: 'the stored value has no seq',
    });
    expect(decodeCall(bytes({ v: 1, seq: 1 }))).toMatchObject({
      ok: false,
      error: 'the stored value has neither a snapshot nor held events',
    });
  });

  it('tells a final call from a live one by its state', () => {
    const intake = { floor: 0, seqs: [1] };
    expect(isFinalStored({ snapshot: snapshot('answered'), intake })).toBe(true);
    expect(isFinalStored({ snapshot: snapshot({ rejecting: 'sending' }), intake })).toBe(false);
    expect(isFinalStored({ held: [], intake })).toBe(false);
  });
});
