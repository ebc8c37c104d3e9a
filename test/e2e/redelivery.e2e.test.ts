import { setTimeout as sleep } from 'node:timers/promises';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  answered,
  type CallBus,
  incoming,
  isFinalRecord,
  newCallId,
  reject,
} from '../support/call-bus.js';
import { type CallgateProcess, startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';

/**
 * Redelivery after a crash cannot skip or reorder a message: the instance
 * that takes a dead one's calls over makes its consumers again from their
 * acknowledgement floor, so the messages the dead one held come at once and
 * in their order, counted as redelivered; a message is judged applied by
 * the call having taken it in.
 */

/** Long enough for the restart. */
const WINDOW_MS = 12_000;

const e2e = useE2e({ scope: 'test' });

let bus: CallBus;
let env: Record<string, string>;
beforeEach(async () => {
  ({ bus, env } = await e2e.fresh('e2eredeliver', WINDOW_MS));
});

describe('messages a dead instance held', () => {
  it('come again in their order: SIGSTOP, incoming and reject published, kill -9, answered published, restart', async () => {
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
    const transitions = records.filter((r) => !r.refused);
    const states = transitions.map((r) => r.state);
    // The reject was applied before the answered, as they were published.
    expect(states.slice(0, 2)).toEqual(['ringing', 'rejecting']);
    expect(transitions.filter(isFinalRecord)).toHaveLength(1);
    const final = states.at(-1);
    expect(['answered', 'rejected']).toContain(final);
    expect(e2e.graph.stats().accepted[callId] ?? 0).toBe(final === 'rejected' ? 1 : 0);
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
