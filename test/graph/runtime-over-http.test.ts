import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LifecycleRecord } from '../../src/contract/records.js';
import { createGraphClient, type GraphClient } from '../../src/graph/client.js';
import { staticToken } from '../../src/graph/tokens.js';
import { type CallRuntime, createCallRuntime } from '../../src/runtime/call-runtime.js';
import { systemClock } from '../../src/runtime/clock.js';
import { createGraphEmulator, type GraphEmulator } from '../../src/tools/emulator/emulator.js';
import { eventually } from '../support/eventually.js';

let graph: GraphEmulator;
let client: GraphClient;
let runtime: CallRuntime;
let records: LifecycleRecord[];

beforeEach(async () => {
  graph = await createGraphEmulator();
  client = createGraphClient({ baseUrl: graph.url, apiVersion: 'v1.0', tokens: staticToken('t') });
  records = [];
  runtime = createCallRuntime({
    clock: systemClock,
    windowMs: 5_000,
    control: client,
    onChanges: (changes) => {
      for (const change of changes) records.push(...change.records);
    },
  });
});

afterEach(async () => {
  runtime.stop();
  graph.release();
  await client.close();
  await graph.close();
});

/** A call comes in and is told to reject; resolves with its final record. */
async function rejectCall(callId: string, then?: () => void): Promise<LifecycleRecord> {
  const at = Date.now();
  runtime.deliver({ type: 'call.incoming', callId, at });
  runtime.deliver({ type: 'call.reject', callId, at, reason: 'busy' });
  then?.();
  await eventually(() => runtime.stateOf(callId) !== 'rejecting');
  return records.filter((r) => r.callId === callId).at(-1) as LifecycleRecord;
}

describe('the call runtime over the real Graph client', () => {
  it('is rejected after Graph throttles once', async () => {
    const callId = randomUUID();
    graph.setFault({ callId, fault: { kind: 'status', status: 429, retryAfterSeconds: 0 } });

    const last = await rejectCall(callId);

    expect(last).toMatchObject({ state: 'rejected', attempts: 2 });
    expect(graph.acceptedCount(callId)).toBe(1);
  });

  it('is rejected when the connection broke after sending and the retry finds the call gone', async () => {
    const callId = randomUUID();
    graph.setFault({ callId, fault: { kind: 'drop' } });

    const last = await rejectCall(callId);

    expect(last).toMatchObject({ state: 'rejected', attempts: 2 });
    expect(graph.received().map((r) => r.status)).toEqual([null, 404]);
  });

  it('fails with the Graph code when the tenant has not consented', async () => {
    const callId = randomUUID();
    graph.setFault({ callId, fault: { kind: 'forbidden' } });

    const last = await rejectCall(callId);

    expect(last.state).toBe('failed');
    expect(last.error).toMatch(/403 7504/);
  });

  it('ends answered, aborting the request, when the call is answered while Graph holds it', async () => {
    const callId = randomUUID();
    graph.setFault({ callId, fault: { kind: 'slow', hold: true } });

    const last = await rejectCall(callId, () => {
      void eventually(() => graph.received().length === 1).then(() =>
        runtime.deliver({ type: 'call.answered', callId, at: Date.now() }),
      );
    });

    expect(last.state).toBe('answered');
    expect(runtime.inFlight).toBe(0);
  });
});
