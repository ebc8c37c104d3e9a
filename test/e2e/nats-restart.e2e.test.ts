import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGraphEmulator, type GraphEmulator } from '../../src/emulator/emulator.js';
import {
  type CallBus,
  incoming,
  newCallId,
  openCallBus,
  reject,
  serviceEnv,
  shape,
} from '../support/call-bus.js';
import {
  type CallgateProcess,
  killAllCallgates,
  startCallgate,
} from '../support/callgate-process.js';
import { eventually } from '../support/eventually.js';
import { type NatsServer, startNatsServer } from '../support/nats-server.js';

/** nats-server restarted under a running service: same port, same store. */

const WINDOW_MS = 4_000;
const PREFIX = 'e2enats';

let server: NatsServer;
let graph: GraphEmulator;
let bus: CallBus;
let service: CallgateProcess;

beforeAll(async () => {
  server = await startNatsServer();
  graph = await createGraphEmulator();
  bus = await openCallBus(server.url, PREFIX);
  service = await startCallgate(
    serviceEnv({
      natsUrl: server.url,
      graphUrl: graph.url,
      prefix: PREFIX,
      answerTimeoutMs: WINDOW_MS,
    }),
  );
});

afterAll(async () => {
  await killAllCallgates();
  await bus?.close();
  await graph?.close();
  await server?.dispose();
});

describe('callgate across a nats-server restart', () => {
  it('reconnects and carries on: calls published after the restart are rejected, and the process never exits', async () => {
    const before = newCallId();
    await bus.send(incoming(before));
    await bus.send(reject(before));
    await bus.settled(before);

    await server.stop();
    expect(await service.get('/healthz')).toBe(200);
    await server.start();
    await bus.streamAvailable();

    const after = newCallId();
    await bus.send(incoming(after));
    await bus.send(reject(after));
    const records = await bus.settled(after, 20_000);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 1 },
    ]);
    await eventually(async () => (await service.get('/readyz')) === 200);
    expect(await service.get('/healthz')).toBe(200);
    expect(service.child.exitCode).toBeNull();
    expect(graph.stats().accepted).toEqual({ [before]: 1, [after]: 1 });
  });

  it('keeps the calls it holds across the restart: a call ringing through it times out on time', async () => {
    const callId = newCallId();
    // It rang 2 s ago: half of its window is left.
    const incomingAt = Date.now() - 2_000;
    await bus.send(incoming(callId, incomingAt));
    await eventually(() => bus.recordsOf(callId).length === 1);

    await server.stop();
    await server.start();
    const records = await bus.settled(callId, WINDOW_MS + 5_000);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'timedOut', previous: 'ringing' },
    ]);
    const timedOutAt = Date.parse(records[1]?.at ?? '');
    expect(Math.abs(timedOutAt - (incomingAt + WINDOW_MS))).toBeLessThanOrEqual(300);
  });
});
