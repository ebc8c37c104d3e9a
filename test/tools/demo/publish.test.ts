import type { JetStreamClient } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { publishTraffic } from '../../../src/tools/demo/publish.js';
import { type DemoCall, planTraffic } from '../../../src/tools/demo/traffic.js';

interface Sent {
  subject: string;
  body: { type: string; callId: string; at: string; reason?: string };
  msgID: string | undefined;
  at: number;
}

/** JetStream as far as the publisher uses it: stores messages, drops a repeated msgID. */
function fakeJetStream() {
  const sent: Sent[] = [];
  const ids = new Set<string>();
  const js = {
    publish(subject: string, data: string, options: { msgID?: string } = {}) {
      const duplicate = options.msgID !== undefined && ids.has(options.msgID);
      if (options.msgID) ids.add(options.msgID);
      sent.push({ subject, body: JSON.parse(data), msgID: options.msgID, at: performance.now() });
      return Promise.resolve({ duplicate, seq: sent.length, stream: 's' });
    },
  };
  return { js: js as unknown as JetStreamClient, sent };
}

/** A service that acts on every message `delayMs` after it was published. */
function fakeService(sent: Sent[], delayMs: number) {
  const acted = () => sent.filter((m) => performance.now() - m.at >= delayMs);
  return {
    records: (callId: string) => acted().filter((m) => m.body.callId === callId).length,
    isFinal: (callId: string) =>
      acted().some((m) => m.body.callId === callId && m.body.type !== 'call.incoming'),
  };
}

function run(calls: DemoCall[], delayMs: number) {
  const { js, sent } = fakeJetStream();
  const rejects: string[] = [];
  const result = publishTraffic(js, 'demo1', calls, {
    signal: new AbortController().signal,
    service: fakeService(sent, delayMs),
    beforeReject: (call) => rejects.push(call.callId),
  });
  return { result, sent, rejects };
}

describe('publishTraffic', () => {
  it("publishes each call's events on its subject, in order, with the planned duplicates", async () => {
    const calls = planTraffic({ calls: 100, rate: 1_000, seed: 2 });
    const { result, sent, rejects } = run(calls, 0);
    const { stored, duplicatesDropped, heldBackMs } = await result;
    const duplicated = calls.filter((c) => c.kind === 'duplicated');
    expect(duplicatesDropped).toBe(duplicated.length);
    expect(stored + duplicatesDropped).toBe(sent.length);
    expect(heldBackMs).toBeLessThan(50);
    for (const call of calls) {
      const mine = sent.filter((m) => m.subject === `demo1.events.${call.callId}`);
      const types = mine.map((m) => m.body.type);
      expect(mine.every((m) => m.body.callId === call.callId)).toBe(true);
      expect(types[0]).toBe('call.incoming');
      expect(mine[0]?.msgID).toBe(`incoming-${call.callId}`);
      const expected = {
        timedOut: ['call.incoming'],
        answered: ['call.incoming', 'call.answered'],
        hungUp: ['call.incoming', 'call.terminated'],
        duplicated: ['call.incoming', 'call.incoming', 'call.reject', 'call.reject'],
      }[call.kind as string] ?? ['call.incoming', 'call.reject'];
      expect(types).toEqual(expected);
      const gap = (mine.at(-1)?.at ?? 0) - (mine[0]?.at ?? 0);
      if (call.kind !== 'timedOut')
        expect(gap).toBeGreaterThanOrEqual(call.decideMs - call.startMs - 5);
    }
    const rejecting = calls.filter((c) => !['timedOut', 'answered', 'hungUp'].includes(c.kind));
    expect(rejects.sort()).toEqual(rejecting.map((c) => c.callId).sort());
  });

  it('holds new calls back while the service lags, and still publishes every one', async () => {
    const calls = planTraffic({ calls: 40, rate: 200, seed: 5 });
    const { result, sent } = run(calls, 400);
    const { heldBackMs, elapsedMs } = await result;
    expect(heldBackMs).toBeGreaterThan(100);
    expect(elapsedMs).toBeGreaterThan(heldBackMs);
    const incoming = new Set(
      sent.filter((m) => m.body.type === 'call.incoming').map((m) => m.body.callId),
    );
    expect(incoming.size).toBe(40);
  });
});
