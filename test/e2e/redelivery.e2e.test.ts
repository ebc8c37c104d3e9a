import { setTimeout as sleep } from 'node:timers/promises';
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
import { type CallgateProcess, startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';

/**
 * Redelivery after a crash cannot skip a message: a message is judged
 * applied by the call having taken it in, so an earlier message redelivered
 * after a later one reached the restarted service first is still applied.
 */

/** Long enough for the restart and the 5 s redelivery of what the frozen process held. */
const WINDOW_MS = 12_000;

const e2e = useE2e({ scope: 'test' });

let bus: CallBus;
let env: Record<string, string>;
beforeEach(async () => {
  ({ bus, env } = await e2e.fresh('e2eredeliver', WINDOW_MS));
});

describe('a message redelivered after a later one for its call', () => {
  it('is applied: SIGSTOP, incoming and reject published, kill -9, a later event first, restart', async () => {
    const frozen = await startCallgate(env);
    const callId = newCallId();
    frozen.signal('SIGSTOP');
    await bus.send(incoming(callId));
    await bus.send(reject(callId));
    // Delivered to the frozen process, never applied nor acknowledged.
    await eventually(async () => (await bus.consumerCounts()).unacknowledged === 2);
    await frozen.kill('SIGKILL');
    await bus.send(answered(callId));
    await startCallgate(env);

    const records = await bus.settled(callId, WINDOW_MS);
    await eventually(() => bus.recordsOf(callId).some((r) => r.refused));
    expect(records.map(shape).slice(0, 2)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'answered', previous: 'ringing' },
    ]);
    expect(
      bus
        .recordsOf(callId)
        .filter((r) => r.refused)
        .map(shape),
    ).toEqual([
      {
        state: 'answered',
        previous: 'answered',
        error: 'call.reject refused: the call was answered',
        refused: { type: 'call.reject', why: 'the call was answered' },
      },
    ]);
    expect(e2e.graph.stats().requests).toBe(0);
    await bus.consumerIdle();
  });
});

type Kind = 'rejected' | 'answered' | 'timedOut';

describe('kill -9 three times under load', () => {
  it('brings every call to the one final state its events call for', async () => {
    const calls: Array<{ callId: string; kind: Kind }> = [];
    const kinds: Kind[] = ['rejected', 'rejected', 'rejected', 'answered', 'timedOut'];
    let service: CallgateProcess = await startCallgate(env);
    const publishing = (async () => {
      for (let i = 0; i < 300; i++) {
        const callId = newCallId();
        const kind = kinds[i % kinds.length] as Kind;
        calls.push({ callId, kind });
        await bus.send(incoming(callId));
        if (kind === 'rejected') await bus.send(reject(callId));
        if (kind === 'answered') await bus.send(answered(callId));
        await sleep(10);
      }
    })();
    for (let kill = 0; kill < 3; kill++) {
      await sleep(1_000);
      await service.kill('SIGKILL');
      service = await startCallgate(env);
    }
    await publishing;

    await eventually(() => calls.every(({ callId }) => bus.recordsOf(callId).some(isFinalRecord)), {
      timeout: WINDOW_MS + 15_000,
    }).catch((error: unknown) => {
      const open = calls.filter(({ callId }) => !bus.recordsOf(callId).some(isFinalRecord));
      const seen = open.map(
        (c) =>
          `${c.callId} ${c.kind}: ${
            bus
              .recordsOf(c.callId)
              .map((r) => r.state)
              .join(' ') || '(no record)'
          }`,
      );
      throw new Error(`${open.length} calls not final:\n${seen.slice(0, 10).join('\n')}`, {
        cause: error,
      });
    });
    const wrong = calls.flatMap(({ callId, kind }) => {
      const finals = [
        ...new Set(
          bus
            .recordsOf(callId)
            .filter(isFinalRecord)
            .map((r) => r.state),
        ),
      ];
      return finals.length === 1 && finals[0] === kind
        ? []
        : [`${callId} (${kind}): ${finals.join(', ')}`];
    });
    expect(wrong).toEqual([]);
    const { accepted } = e2e.graph.stats();
    const twice = Object.entries(accepted).filter(([, n]) => n > 1);
    expect(twice).toEqual([]);
    expect(calls.filter((c) => c.kind === 'rejected').every((c) => accepted[c.callId] === 1)).toBe(
      true,
    );
    expect(bus.malformed).toEqual([]);
  });
});
