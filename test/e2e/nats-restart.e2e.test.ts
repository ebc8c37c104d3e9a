import { beforeAll, describe, expect, it } from 'vitest';
import { type CallBus, incoming, newCallId, reject, shape } from '../support/call-bus.js';
import { type CallgateProcess, startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';

/** nats-server restarted under a running service: same port, same store. */

const WINDOW_MS = 4_000;
const PREFIX = 'e2enats';

const e2e = useE2e({ scope: 'file' });

let bus: CallBus;
let service: CallgateProcess;

beforeAll(async () => {
  bus = await e2e.openBus(PREFIX);
  service = await startCallgate(e2e.env(PREFIX, WINDOW_MS));
});

describe('callgate across a nats-server restart', () => {
  it('reconnects and carries on: calls published after the restart are rejected, and the process never exits', async () => {
    const before = newCallId();
    await bus.send(incoming(before));
    await bus.send(reject(before));
    await bus.settled(before);

    await e2e.server.stop();
    expect(await service.get('/healthz')).toBe(200);
    await e2e.server.start();
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
    expect(e2e.graph.stats().accepted).toEqual({ [before]: 1, [after]: 1 });
  });

  it('keeps the calls it holds across the restart: a call ringing through it times out on time', async () => {
    const callId = newCallId();
    // It rang 2 s ago: half of its window is left.
    const incomingAt = Date.now() - 2_000;
    await bus.send(incoming(callId, incomingAt));
    await eventually(() => bus.recordsOf(callId).length === 1);

    await e2e.server.stop();
    await e2e.server.start();
    const records = await bus.settled(callId, WINDOW_MS + 5_000);

    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'timedOut', previous: 'ringing' },
    ]);
    const timedOutAt = Date.parse(records[1]?.at ?? '');
    expect(Math.abs(timedOutAt - (incomingAt + WINDOW_MS))).toBeLessThanOrEqual(300);
  });
});
