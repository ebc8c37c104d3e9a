import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGraphEmulator, type GraphEmulator } from '../../../src/tools/emulator/emulator.js';
import { type CallBus, openCallBus, reject, serviceEnv } from '../../support/call-bus.js';
import {
  type CallgateProcess,
  killAllCallgates,
  startCallgate,
} from '../../support/callgate-process.js';
import { eventually } from '../../support/eventually.js';
import { type NatsServer, startNatsServer } from '../../support/nats-server.js';

/**
 * The full loop through the real front door: the emulator signs and POSTs
 * Graph's incoming-call batch to `callgate serve`'s webhook → JetStream →
 * the call's actor → reject → the emulator, which follows up as Graph would.
 */

const APP_ID = 'a1b2c3d4-0000-4000-8000-0000000000b0';
const PREFIX = 'webhookloop';

let server: NatsServer;
let graph: GraphEmulator;
let bus: CallBus;
let service: CallgateProcess;
let callbackUrl: string;

beforeAll(async () => {
  [server, graph] = await Promise.all([startNatsServer(), createGraphEmulator()]);
  bus = await openCallBus(server.url, PREFIX);
  service = await startCallgate(
    serviceEnv({
      natsUrl: server.url,
      graphUrl: graph.url,
      prefix: PREFIX,
      answerTimeoutMs: 30_000,
      extra: {
        WEBHOOK_APP_ID: APP_ID,
        WEBHOOK_OPENID_URL: graph.openIdUrl,
        WEBHOOK_ISSUERS: graph.issuer,
      },
    }),
  );
  callbackUrl = `${service.httpUrl}/api/calling`;
});

afterAll(async () => {
  await killAllCallgates();
  await bus?.close();
  await graph?.close();
  await server?.dispose();
});

const states = (callId: string) => bus.recordsOf(callId).map((record) => record.state);

async function ringingCall(): Promise<string> {
  const placed = await graph.placeCall({ callbackUrl, appId: APP_ID });
  expect(placed.status, placed.notification.error ?? service.stderr()).toBe(202);
  await eventually(() => states(placed.callId).includes('ringing'));
  return placed.callId;
}

describe('emulator → webhook → JetStream → actor → emulator', () => {
  it('a placed call rings; a reject reaches the emulator, whose deleted follow-up changes nothing', async () => {
    const callId = await ringingCall();
    await bus.send(reject(callId));
    await bus.settled(callId);
    expect(states(callId)).toEqual(['ringing', 'rejecting', 'rejected']);
    expect(graph.acceptedCount(callId)).toBe(1);

    await eventually(() =>
      graph
        .notifications()
        .some((n) => n.callId === callId && n.changeType === 'deleted' && n.status === 202),
    );
    const sent = graph.notifications().filter((n) => n.callId === callId);
    expect(sent.map((n) => [n.changeType, n.state, n.status])).toEqual([
      ['created', 'incoming', 202],
      ['deleted', null, 202],
    ]);
    expect(graph.calls().find((c) => c.callId === callId)?.state).toBe('deleted');
    await bus.consumerIdle();
    expect(states(callId)).toEqual(['ringing', 'rejecting', 'rejected']);
    expect(bus.invalid).toEqual([]);
  });

  it('a call answered in Graph (established) is answered', async () => {
    const callId = await ringingCall();
    const update = await graph.answer(callId);
    expect([update.changeType, update.state, update.status]).toEqual([
      'updated',
      'established',
      202,
    ]);
    await bus.settled(callId);
    expect(states(callId)).toEqual(['ringing', 'answered']);
    expect(graph.acceptedCount(callId)).toBe(0);
  });

  it('a call hung up in Graph (deleted, terminated) is ended', async () => {
    const callId = await ringingCall();
    const deleted = await graph.hangUp(callId);
    expect([deleted.changeType, deleted.state, deleted.status]).toEqual([
      'deleted',
      'terminated',
      202,
    ]);
    await bus.settled(callId);
    expect(states(callId)).toEqual(['ringing', 'ended']);
    expect(bus.malformed).toEqual([]);
  });
});
