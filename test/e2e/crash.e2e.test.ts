import { beforeEach, describe, expect, it } from 'vitest';
import {
  answered,
  type CallBus,
  incoming,
  isFinalRecord,
  newCallId,
  reject,
  shape,
} from '../support/call-bus.js';
import { startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';

/**
 * `kill -9` of `callgate serve`: what JetStream and the snapshot store hold
 * must be enough for a restarted service to carry every call on, keep its
 * original deadline, and never get a reject accepted twice.
 */

/** Long enough for a restart (1-3 s on a busy machine) to fit inside it. */
const WINDOW_MS = 5_000;
const RETRY_AFTER_S = 3;
/** For the calls published while the service is down: longer than any restart. */
const DOWN_WINDOW_MS = 20_000;
/** How far a deadline may drift from the one the contract fixes. */
const TOLERANCE_MS = 300;

const e2e = useE2e({ scope: 'test' });

let bus: CallBus;
let env: Record<string, string>;
beforeEach(async () => {
  ({ bus, env } = await e2e.fresh('e2ecrash', WINDOW_MS));
});

describe('callgate killed with SIGKILL and started again', () => {
  it('a call that was ringing still times out at its original deadline, not a window after the restart', async () => {
    const first = await startCallgate(env);
    const callId = newCallId();
    const incomingAt = Date.now();
    await bus.send(incoming(callId, incomingAt));
    await eventually(() => bus.recordsOf(callId).length === 1);
    await bus.consumerIdle();

    expect((await first.kill('SIGKILL')).signal).toBe('SIGKILL');
    const second = await startCallgate(env);
    const restartedAt = Date.now();
    const records = await bus.settled(callId, WINDOW_MS + 5_000);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'timedOut', previous: 'ringing' },
    ]);
    const timedOutAt = Date.parse(records[1]?.at ?? '');
    expect(Math.abs(timedOutAt - (incomingAt + WINDOW_MS))).toBeLessThanOrEqual(TOLERANCE_MS);
    expect(restartedAt + WINDOW_MS - timedOutAt).toBeGreaterThan(TOLERANCE_MS);
    expect(await second.get('/healthz')).toBe(200);
  });

  it('a reject held by Graph at the crash is sent again; the 404 for it means rejected, and Graph accepted exactly one', async () => {
    const first = await startCallgate(env);
    const callId = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'slow', hold: true } });
    await bus.send(incoming(callId));
    await bus.send(reject(callId));
    await eventually(() => e2e.graph.stats().held === 1);
    await bus.consumerIdle();

    await first.kill('SIGKILL');
    await startCallgate(env);
    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 2 },
    ]);
    const requests = e2e.graph.received().filter((r) => r.callId === callId);
    expect(requests.map((r) => r.status)).toEqual([null, 404]);
    expect(e2e.graph.stats().accepted[callId]).toBe(1);
  });

  it('a call backing off after a 429 at the crash retries no sooner than Retry-After, and is rejected', async () => {
    const first = await startCallgate(env);
    const callId = newCallId();
    e2e.graph.setFault({
      callId,
      fault: { kind: 'status', status: 429, retryAfterSeconds: RETRY_AFTER_S },
    });
    await bus.send(incoming(callId));
    await bus.send(reject(callId));
    await eventually(() =>
      e2e.graph.received().some((r) => r.callId === callId && r.status === 429),
    );
    const refusedAt = Date.now();
    await eventually(async () => {
      const stored = await bus.storedState(callId);
      return JSON.stringify(stored) === JSON.stringify({ rejecting: 'waiting' });
    });

    await first.kill('SIGKILL');
    await startCallgate(env);
    const restartedAt = Date.now();
    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 2 },
    ]);
    const [, retry, ...more] = e2e.graph.received().filter((r) => r.callId === callId);
    expect(more).toEqual([]);
    expect(retry?.status).toBe(202);
    const retryDue = refusedAt + RETRY_AFTER_S * 1_000;
    expect(retry?.receivedAt ?? 0).toBeGreaterThanOrEqual(retryDue - 50);
    expect(retry?.receivedAt ?? 0).toBeLessThanOrEqual(
      Math.max(retryDue, restartedAt) + TOLERANCE_MS,
    );
    expect(e2e.graph.stats().accepted[callId]).toBe(1);
  });

  it('events published while it is down are all processed after the restart: no call is lost', async () => {
    // A window no restart on a busy machine outlasts: the calls must not time out while it is down.
    const { bus, env } = await e2e.fresh('e2ecrashdown', DOWN_WINDOW_MS);
    const first = await startCallgate(env);
    const warmup = newCallId();
    await bus.send(incoming(warmup));
    await bus.send(answered(warmup));
    await bus.settled(warmup);
    await bus.consumerIdle();
    await first.kill('SIGKILL');

    const toReject = Array.from({ length: 10 }, newCallId);
    const toAnswer = Array.from({ length: 5 }, newCallId);
    for (const callId of toReject) {
      await bus.send(incoming(callId));
      await bus.send(reject(callId, 'none'));
    }
    for (const callId of toAnswer) {
      await bus.send(incoming(callId));
      await bus.send(answered(callId));
    }
    await startCallgate(env);

    for (const callId of [...toReject, ...toAnswer]) await bus.settled(callId);
    for (const callId of toReject) {
      expect(bus.recordsOf(callId).map((r) => r.state)).toEqual([
        'ringing',
        'rejecting',
        'rejected',
      ]);
      expect(e2e.graph.stats().accepted[callId]).toBe(1);
    }
    for (const callId of toAnswer) {
      expect(bus.recordsOf(callId).map((r) => r.state)).toEqual(['ringing', 'answered']);
    }
    const finals = bus.lifecycle.filter(isFinalRecord);
    expect(finals).toHaveLength(1 + toReject.length + toAnswer.length);
    expect(e2e.graph.received()).toHaveLength(toReject.length);
    expect(bus.malformed).toEqual([]);
  });
});
