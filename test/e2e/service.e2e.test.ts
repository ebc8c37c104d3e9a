import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { answered, type CallBus, incoming, newCallId, reject, shape } from '../support/call-bus.js';
import { type CallgateProcess, startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';

/**
 * The Graph section of the contract, row by row, end to end: `callgate serve`
 * as a child process, a real nats-server, and the Graph emulator in this
 * process so the test can script and inspect every reject request.
 */

const WINDOW_MS = 4_000;
const PREFIX = 'e2egraph';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const e2e = useE2e({ scope: 'file' });

let bus: CallBus;
let service: CallgateProcess;

beforeAll(async () => {
  bus = await e2e.openBus(PREFIX);
  service = await startCallgate(e2e.env(PREFIX, WINDOW_MS));
});

afterEach(() => {
  e2e.graph.clearFaults();
  e2e.graph.release();
});

/** The reject requests the emulator received for one call, oldest first. */
const requestsFor = (callId: string) => e2e.graph.received().filter((r) => r.callId === callId);

/** A call that rings and is told to reject with `reason`. */
async function ringAndReject(callId: string, reason = 'busy', at = Date.now()): Promise<void> {
  await bus.send(incoming(callId, at));
  await bus.send(reject(callId, reason));
}

describe('callgate rejecting calls through Graph (end to end over NATS)', () => {
  it('202: the call is rejected after one request carrying the token, JSON, a client-request-id and the lower-case reason', async () => {
    const callId = newCallId();
    await ringAndReject(callId, 'BUSY');

    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 1 },
    ]);
    const [request, ...others] = requestsFor(callId);
    expect(others).toEqual([]);
    expect(request).toMatchObject({
      apiVersion: 'v1.0',
      token: 'e2e-token',
      contentType: 'application/json',
      reason: 'busy',
      status: 202,
    });
    expect(JSON.parse(request?.body ?? '')).toEqual({ reason: 'busy' });
    expect(request?.clientRequestId).toMatch(UUID);
    expect(e2e.graph.stats().accepted[callId]).toBe(1);
  });

  it('429 with Retry-After, then 202: rejected after 2 attempts, the second sent no sooner than Retry-After', async () => {
    const callId = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'status', status: 429, retryAfterSeconds: 1 } });
    await ringAndReject(callId);

    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 2 },
    ]);
    const [first, second] = requestsFor(callId);
    expect([first?.status, second?.status]).toEqual([429, 202]);
    // The 429 reached the service after the emulator received the request, and
    // its answer time is noted only after writing it: receivedAt is the safe bound.
    expect((second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)).toBeGreaterThanOrEqual(1_000);
  });

  it('503 on every attempt until the window closes: failed, every request inside the window', async () => {
    const callId = newCallId();
    e2e.graph.setFault({ callId, times: 100, fault: { kind: 'status', status: 503 } });
    // It rang 2 s ago: half of its window is left.
    const ringingAt = Date.now() - 2_000;
    await ringAndReject(callId, 'busy', ringingAt);

    const records = await bus.settled(callId, WINDOW_MS + 5_000);

    const requests = requestsFor(callId);
    const last = records.at(-1);
    expect(last).toMatchObject({
      state: 'failed',
      previous: 'rejecting',
      reason: 'busy',
      attempts: requests.length,
      error: expect.stringContaining('503'),
    });
    expect(records.map((r) => r.state)).toEqual(['ringing', 'rejecting', 'failed']);
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(requests.every((r) => r.status === 503)).toBe(true);
    for (const request of requests) {
      expect(request.receivedAt).toBeLessThan(ringingAt + WINDOW_MS);
    }
    expect(Date.parse(last?.at ?? '')).toBeLessThan(ringingAt + WINDOW_MS + 300);
    expect(e2e.graph.stats().accepted[callId]).toBeUndefined();
  });

  it('404 with code 8522: the call ended, Graph no longer knows it', async () => {
    const callId = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'notFound' } });
    await ringAndReject(callId, 'none');

    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'none', attempts: 1 },
      {
        state: 'ended',
        previous: 'rejecting',
        reason: 'none',
        attempts: 1,
        error: expect.stringContaining('8522'),
      },
    ]);
    expect(requestsFor(callId)).toHaveLength(1);
  });

  it('a network failure (the connection dropped, nothing accepted), then 202: rejected after 2 attempts', async () => {
    const callId = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'drop', accept: false } });
    await ringAndReject(callId);

    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 2 },
    ]);
    expect(requestsFor(callId).map((r) => [r.dropped, r.status])).toEqual([
      [true, null],
      [false, 202],
    ]);
    expect(e2e.graph.stats().accepted[callId]).toBe(1);
  });

  it('the connection dropped after Graph accepted the reject: the retry gets 404, which means rejected, accepted once', async () => {
    const callId = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'drop' } });
    await ringAndReject(callId);

    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 2 },
    ]);
    expect(requestsFor(callId).map((r) => [r.dropped, r.status])).toEqual([
      [true, null],
      [false, 404],
    ]);
    expect(e2e.graph.stats().accepted[callId]).toBe(1);
  });

  it("403 with code 7504: failed, with Graph's code and message in the error", async () => {
    const callId = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'forbidden' } });
    await ringAndReject(callId, 'forbidden');

    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'forbidden', attempts: 1 },
      {
        state: 'failed',
        previous: 'rejecting',
        reason: 'forbidden',
        attempts: 1,
        error: expect.stringMatching(/7504.*Insufficient enterprise tenant permissions/),
      },
    ]);
    expect(requestsFor(callId)).toHaveLength(1);
  });

  it('answered while the reject is held in flight: answered, and the request is abandoned', async () => {
    const callId = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'slow', hold: true } });
    await ringAndReject(callId);
    await eventually(() => e2e.graph.stats().held === 1);

    await bus.send(answered(callId));
    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      { state: 'answered', previous: 'rejecting', reason: 'busy', attempts: 1 },
    ]);
    // Graph still holds the answer, yet the service has no request in flight any more.
    expect(e2e.graph.stats().held).toBe(1);
    await eventually(async () => /^callgate_reject_requests_in_flight 0$/m.test(await metrics()));
    expect(requestsFor(callId)).toHaveLength(1);
  });

  it('a reject after the call was answered is refused, and nothing is sent to Graph', async () => {
    const callId = newCallId();
    await bus.send(incoming(callId));
    await bus.send(answered(callId));
    await bus.send(reject(callId));

    await eventually(() => bus.recordsOf(callId).length === 3);

    expect(bus.recordsOf(callId).map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'answered', previous: 'ringing' },
      {
        state: 'answered',
        previous: 'answered',
        error: expect.stringContaining('answered'),
        refused: { type: 'call.reject', why: expect.any(String) },
      },
    ]);
    expect(requestsFor(callId)).toEqual([]);
  });

  it('a second reject after the call was rejected is refused, and Graph gets one request only', async () => {
    const callId = newCallId();
    await ringAndReject(callId);
    await bus.settled(callId);

    await bus.send(reject(callId, 'none'));
    await eventually(() => bus.recordsOf(callId).length === 4);

    expect(bus.recordsOf(callId).at(-1)).toMatchObject({
      state: 'rejected',
      previous: 'rejected',
      reason: 'busy',
      attempts: 1,
      refused: { type: 'call.reject', why: expect.any(String) },
    });
    expect(requestsFor(callId)).toHaveLength(1);
  });

  it('a second reject while the first is in flight is refused, and Graph gets one request only', async () => {
    const callId = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'slow', hold: true } });
    await ringAndReject(callId);
    await eventually(() => e2e.graph.stats().held === 1);

    await bus.send(reject(callId, 'none'));
    await eventually(() => bus.recordsOf(callId).length === 3);
    e2e.graph.release(callId);
    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      {
        state: 'rejecting',
        previous: 'rejecting',
        reason: 'busy',
        attempts: 1,
        error: expect.any(String),
        refused: { type: 'call.reject', why: expect.any(String) },
      },
      { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 1 },
    ]);
    expect(requestsFor(callId)).toHaveLength(1);
  });

  it('out of order: a reject that arrives before its incoming call is kept, and the call is rejected', async () => {
    const callId = newCallId();
    const ringingAt = Date.now();
    await bus.send(reject(callId));
    await bus.send(incoming(callId, ringingAt));

    const records = await bus.settled(callId);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 1 },
    ]);
    expect(requestsFor(callId)).toHaveLength(1);
  });

  it('one call in two spellings: the subject in upper case without dashes, the body in canonical form', async () => {
    const callId = newCallId();
    const graphSpelling = callId.replaceAll('-', '').toUpperCase();
    await bus.send(incoming(graphSpelling), graphSpelling);
    await bus.send(reject(callId), graphSpelling);

    const records = await bus.settled(callId);

    expect(records.map((r) => r.state)).toEqual(['ringing', 'rejecting', 'rejected']);
    expect(bus.recordsOf(graphSpelling)).toEqual([]);
    expect(e2e.graph.stats().accepted[callId]).toBe(1);
  });

  it('a repeated incoming, and an answered for a call already rejected, change nothing and publish nothing', async () => {
    const callId = newCallId();
    await bus.send(incoming(callId));
    await bus.send(incoming(callId));
    await bus.send(reject(callId));
    await bus.settled(callId);
    await bus.send(answered(callId));
    // The stream is applied in order: this refusal comes after whatever the answered caused.
    await bus.send(reject(callId));
    await eventually(() => bus.recordsOf(callId).some((r) => r.refused));

    expect(bus.recordsOf(callId).map((r) => [r.state, r.previous, r.refused?.type])).toEqual([
      ['ringing', null, undefined],
      ['rejecting', 'ringing', undefined],
      ['rejected', 'rejecting', undefined],
      ['rejected', 'rejected', 'call.reject'],
    ]);
    expect(requestsFor(callId)).toHaveLength(1);
  });

  it('published every record on its own call subject, well formed', () => {
    expect(bus.malformed).toEqual([]);
  });
});

describe.concurrent('the answer window', () => {
  it('is measured from the `at` of call.incoming: a call that came in 1 s ago times out 3 s later', async ({
    expect,
  }) => {
    const callId = newCallId();
    const incomingAt = Date.now() - 1_000;
    await bus.send(incoming(callId, incomingAt));

    const records = await bus.settled(callId, WINDOW_MS + 5_000);

    expect(records.map((r) => r.state)).toEqual(['ringing', 'timedOut']);
    const timedOutAt = Date.parse(records[1]?.at ?? '');
    expect(Math.abs(timedOutAt - (incomingAt + WINDOW_MS))).toBeLessThanOrEqual(300);
  });

  it('clamps an `at` in the future to now: the call times out one window after it arrived', async ({
    expect,
  }) => {
    const callId = newCallId();
    const sentAt = Date.now();
    await bus.send(incoming(callId, sentAt + 3_600_000));

    const records = await bus.settled(callId, WINDOW_MS + 5_000);

    expect(records.map((r) => r.state)).toEqual(['ringing', 'timedOut']);
    const timedOutAt = Date.parse(records[1]?.at ?? '');
    expect(timedOutAt - sentAt).toBeGreaterThanOrEqual(WINDOW_MS - 50);
    expect(timedOutAt - sentAt).toBeLessThanOrEqual(WINDOW_MS + 300);
  });

  it('starts for a Graph notification when JetStream stored it, and a reject then goes through', async ({
    expect,
  }) => {
    const ringing = newCallId();
    const rejected = newCallId();
    const notification = (callId: string) => ({
      changeType: 'created',
      resourceUrl: `/communications/calls/${callId.replaceAll('-', '').toUpperCase()}`,
      resourceData: {
        '@odata.type': '#microsoft.graph.call',
        state: 'incoming',
        direction: 'incoming',
      },
    });
    const storedAfter = Date.now();
    await bus.publish(
      bus.notificationsSubject,
      JSON.stringify({
        '@odata.type': '#microsoft.graph.commsNotifications',
        value: [notification(ringing), notification(rejected)],
      }),
    );
    const storedBefore = Date.now();
    await bus.send(reject(rejected));

    const [timedOut, done] = await Promise.all([
      bus.settled(ringing, WINDOW_MS + 5_000),
      bus.settled(rejected),
    ]);

    expect(done.map((r) => r.state)).toEqual(['ringing', 'rejecting', 'rejected']);
    expect(timedOut.map((r) => r.state)).toEqual(['ringing', 'timedOut']);
    const timedOutAt = Date.parse(timedOut[1]?.at ?? '');
    expect(timedOutAt).toBeGreaterThanOrEqual(storedAfter + WINDOW_MS - 50);
    expect(timedOutAt).toBeLessThanOrEqual(storedBefore + WINDOW_MS + 300);
  });
});

async function metrics(): Promise<string> {
  const response = await fetch(`${service.httpUrl}/metrics`);
  return response.text();
}
