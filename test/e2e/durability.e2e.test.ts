import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createGraphEmulator, type GraphEmulator } from '../../src/emulator/emulator.js';
import {
  type CallBus,
  incoming,
  newCallId,
  openCallBus,
  reject,
  serviceEnv,
} from '../support/call-bus.js';
import { killAllCallgates, startCallgate } from '../support/callgate-process.js';
import { eventually } from '../support/eventually.js';
import { type NatsServer, startNatsServer } from '../support/nats-server.js';

/**
 * Held events and readiness across failures: an event kept for a call not
 * seen yet survives a restart (it is stored before its message is
 * acknowledged), and /readyz follows the NATS connection.
 */

const WINDOW_MS = 4_000;

let server: NatsServer;
let graph: GraphEmulator;
let bus: CallBus;
let env: Record<string, string>;
let run = 0;

describe('durability and readiness', () => {
  beforeAll(async () => {
    server = await startNatsServer();
    graph = await createGraphEmulator();
  });

  beforeEach(async () => {
    const prefix = `e2ebug${++run}`;
    bus = await openCallBus(server.url, prefix);
    env = serviceEnv({
      natsUrl: server.url,
      graphUrl: graph.url,
      prefix,
      answerTimeoutMs: WINDOW_MS,
    });
  });

  afterEach(async () => {
    await killAllCallgates();
    graph.reset();
    await bus?.close();
  });

  afterAll(async () => {
    await killAllCallgates();
    await graph?.close();
    await server?.dispose();
  });

  it.each(['SIGKILL', 'SIGTERM'] as const)(
    'a reject kept for a call not seen yet survives a %s: the call is rejected when its incoming arrives after the restart',
    async (signal) => {
      const first = await startCallgate(env);
      const callId = newCallId();
      const rejectAt = Date.now();
      await bus.send(reject(callId));
      // The reject is held, stored, and its message acknowledged.
      await eventually(async () =>
        /^callgate_events_total\{type="call.reject",delivery="held"\} 1$/m.test(
          await (await fetch(`${first.httpUrl}/metrics`)).text(),
        ),
      );
      await bus.consumerIdle();

      await first.kill(signal);
      await startCallgate(env);
      await bus.send(incoming(callId, rejectAt));
      const records = await bus.settled(callId, WINDOW_MS + 5_000);

      expect(records.map((r) => r.state)).toEqual(['ringing', 'rejecting', 'rejected']);
    },
  );

  it('/readyz answers 503 while NATS is unreachable, and 200 again once it is back', async () => {
    const service = await startCallgate(env);

    await server.stop();
    const noticed = eventually(async () => (await service.get('/readyz')) === 503, {
      timeout: 3_000,
    });
    await noticed.finally(() => server.start());

    await eventually(async () => (await service.get('/readyz')) === 200);
  });
});
