import type { JetStreamClient } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { type PublishHooks, publishTraffic } from '../../../src/tools/demo/publish.js';
import { type DemoCall, planTraffic } from '../../../src/tools/demo/traffic.js';
import { deferred, ManualClock } from './manual-clock.js';

interface Sent {
  subject: string;
  body: { type: string; callId: string; at: string; reason?: string };
  msgID: string | undefined;
  at: number;
}

/** JetStream as far as the publisher uses it: stores messages, drops a repeated msgID. */
function fakeJetStream(clock: ManualClock) {
  const sent: Sent[] = [];
  const ids = new Set<string>();
  const js = {
    publish(subject: string, data: string, options: { msgID?: string } = {}) {
      const duplicate = options.msgID !== undefined && ids.has(options.msgID);
      if (options.msgID) ids.add(options.msgID);
      sent.push({ subject, body: JSON.parse(data), msgID: options.msgID, at: clock.now() });
      return Promise.resolve({ duplicate, seq: sent.length, stream: 's' });
    },
  };
  return { js: js as unknown as JetStreamClient, sent };
}

/** A service that acts on every message `delayMs` after it was published. */
function fakeService(sent: Sent[], delayMs: number, clock: ManualClock) {
  const acted = () => sent.filter((m) => clock.now() - m.at >= delayMs);
  return {
    records: (callId: string) => acted().filter((m) => m.body.callId === callId).length,
    isFinal: (callId: string) =>
      acted().some((m) => m.body.callId === callId && m.body.type !== 'call.incoming'),
  };
}

/** The service after `delayMs`, or one that has always caught up (`'none'`). */
function run(
  calls: DemoCall[],
  delayMs: number | 'none',
  placeCallOn?: (clock: ManualClock) => PublishHooks['placeCall'],
) {
  const clock = new ManualClock();
  const placeCall = placeCallOn?.(clock);
  const { js, sent } = fakeJetStream(clock);
  const rejects: string[] = [];
  const result = publishTraffic(js, 'demo1', calls, {
    clock,
    signal: new AbortController().signal,
    service:
      delayMs === 'none'
        ? { records: () => 2, isFinal: () => true }
        : fakeService(sent, delayMs, clock),
    beforeReject: (call) => rejects.push(call.callId),
    ...(placeCall && { placeCall }),
  });
  return { clock, result, sent, rejects };
}

describe('publishTraffic', () => {
  it("publishes each call's events on its subject, in order, with the planned duplicates", async () => {
    const calls = planTraffic({ calls: 100, rate: 1_000, seed: 2 });
    const { clock, result, sent, rejects } = run(calls, 0);
    await clock.advance(1_000);
    const { stored, duplicatesDropped, heldBackMs, started } = await result;
    const duplicated = calls.filter((c) => c.kind === 'duplicated');
    expect(started).toBe(100);
    expect(duplicatesDropped).toBe(duplicated.length);
    expect(stored + duplicatesDropped).toBe(sent.length);
    expect(heldBackMs).toBe(0);
    for (const call of calls) {
      const mine = sent.filter((m) => m.subject === `demo1.events.${call.callId}`);
      const types = mine.map((m) => m.body.type);
      expect(mine.every((m) => m.body.callId === call.callId)).toBe(true);
      expect(types[0]).toBe('call.incoming');
      expect(mine[0]?.msgID).toBe(`incoming-${call.callId}`);
      expect(mine[0]?.at).toBe(call.startMs);
      const expected = {
        timedOut: ['call.incoming'],
        answered: ['call.incoming', 'call.answered'],
        hungUp: ['call.incoming', 'call.terminated'],
        duplicated: ['call.incoming', 'call.incoming', 'call.reject', 'call.reject'],
      }[call.kind as string] ?? ['call.incoming', 'call.reject'];
      expect(types).toEqual(expected);
      const decision = mine.find((m, i) => i > 0 && m.body.type !== 'call.incoming');
      if (call.kind !== 'timedOut') expect(decision?.at).toBe(call.decideMs);
    }
    const rejecting = calls.filter((c) => !['timedOut', 'answered', 'hungUp'].includes(c.kind));
    expect(rejects.sort()).toEqual(rejecting.map((c) => c.callId).sort());
  });

  it('places calls on time while the webhook has answered none, and decides each after its 202', async () => {
    const calls = planTraffic({ calls: 100, rate: 100, seed: 4 }).filter(
      (c) => c.kind === 'rejected',
    );
    const webhook = new Map(calls.map((c) => [c.callId, deferred()]));
    const placed = new Map<string, number>();
    const { clock, result, sent } = run(calls, 'none', (clock) => (call) => {
      placed.set(call.callId, clock.now());
      return webhook.get(call.callId)?.promise ?? Promise.reject(new Error('unplanned call'));
    });

    await clock.advance(1_000);
    expect([...placed.values()]).toEqual(calls.map((c) => c.startMs));
    expect(sent).toEqual([]);
    for (const c of calls) webhook.get(c.callId)?.resolve();
    await clock.advance(1_000);

    for (const c of calls) {
      const reject = sent.find((m) => m.body.callId === c.callId);
      expect(reject?.body.type).toBe('call.reject');
      expect(reject?.at).toBe(1_000 + c.decideMs - c.startMs);
    }
    await expect(result).resolves.toMatchObject({
      started: calls.length,
      stored: 2 * calls.length,
    });
  });

  it('holds new calls back while the service lags, and still publishes every one', async () => {
    const calls = planTraffic({ calls: 200, rate: 200, seed: 5 });
    const { clock, result, sent } = run(calls, 400);
    await clock.advance(10_000);
    const { heldBackMs, elapsedMs, maxLateMs, lagSamples, sustainedPerSecond } = await result;
    expect(heldBackMs).toBeGreaterThan(100);
    expect(maxLateMs).toBeGreaterThanOrEqual(heldBackMs);
    expect(elapsedMs).toBeGreaterThan(calls.at(-1)?.startMs ?? 0);
    expect(Math.max(...lagSamples)).toBeGreaterThan(250);
    expect(sustainedPerSecond).toBeLessThan(200);
    const incoming = new Set(
      sent.filter((m) => m.body.type === 'call.incoming').map((m) => m.body.callId),
    );
    expect(incoming.size).toBe(200);
  });
});
