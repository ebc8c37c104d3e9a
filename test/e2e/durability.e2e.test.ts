import { beforeEach, describe, expect, it } from 'vitest';
import { type CallBus, incoming, newCallId, reject } from '../support/call-bus.js';
import { startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';

/**
 * Held events and readiness across failures: an event kept for a call not
 * seen yet survives a restart (it is stored before its message is
 * acknowledged), and /readyz follows the NATS connection.
 */

const WINDOW_MS = 4_000;

const e2e = useE2e({ scope: 'test' });

let bus: CallBus;
let env: Record<string, string>;
describe('durability and readiness', () => {
  beforeEach(async () => {
    ({ bus, env } = await e2e.fresh('e2ebug', WINDOW_MS));
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

    await e2e.server.stop();
    const noticed = eventually(async () => (await service.get('/readyz')) === 503, {
      timeout: 3_000,
    });
    await noticed.finally(() => e2e.server.start());

    await eventually(async () => (await service.get('/readyz')) === 200);
  });
});
