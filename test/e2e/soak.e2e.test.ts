import { connect as connectTcp } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { answered, incoming, isFinalRecord, newCallId, reject } from '../support/call-bus.js';
import { type CallgateProcess, startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';

/**
 * A soak, bounded in time: normal calls mixed with bad input of every shape,
 * two kill -9s and a live-page client that never reads. Every normal call
 * must end in exactly the one final state its events call for, Graph must
 * accept at most one reject per call and receive none at or after a call's
 * deadline, and the service must answer to the end.
 */

const WINDOW_MS = 10_000;
const CALLS = 360;

type Kind = 'rejected' | 'answered' | 'timedOut';
const KINDS: Kind[] = ['rejected', 'rejected', 'answered', 'timedOut'];

const e2e = useE2e({ scope: 'file' });

/** Bad messages of every shape the service must survive, each as (subject token, text). */
function badInput(): Array<[string, string]> {
  const at = new Date().toISOString();
  const deep = `${'['.repeat(5_000)}${']'.repeat(5_000)}`;
  const bad = (token: string, body: unknown) =>
    [token, typeof body === 'string' ? body : JSON.stringify(body)] as [string, string];
  const orphan = newCallId();
  const orphans = Array.from({ length: 80 }, () =>
    bad(orphan, { type: 'call.answered', callId: orphan, at }),
  );
  return [
    bad('x1', 'not json'),
    bad('x2', { type: 'call.ringing', callId: 'x2', at }),
    bad('x3', { type: 'call.incoming', callId: 'x3', at, padding: 'p'.repeat(70 * 1024) }),
    bad('x4', `{"type":"call.incoming","callId":"x4","at":"${at}","deep":${deep}}`),
    bad('x5', { type: 'call.incoming', callId: 'a'.repeat(4_060), at }),
    ...['{x}', 'x:y', 'xé', 'x$'].map((id) => bad('x6', { type: 'call.incoming', callId: id, at })),
    bad('x7', { type: 'call.reject', callId: 'x8', at, reason: 'busy' }),
    bad('x9', {
      type: 'call.incoming',
      callId: 'x9',
      at,
      source: { name: 'n'.repeat(60_000) },
    }),
    ...orphans,
  ];
}

/** A Graph batch of 50,000 bad notifications (about 1 MiB is the most the stream takes). */
function badBatch(): string {
  return JSON.stringify({ value: Array.from({ length: 50_000 }, () => ({ changeType: 1 })) });
}

/** A live-page client that reads nothing. */
function stalledClient(url: string) {
  const { hostname, port } = new URL(url);
  const socket = connectTcp(Number(port), hostname);
  socket.on('error', () => {});
  socket.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
  socket.pause();
  return socket;
}

describe('soak: normal calls among bad input, kill -9s and a client that never reads', () => {
  it('decides every normal call once, correctly, and stays up', async () => {
    const prefix = 'soak';
    const bus = await e2e.openBus(prefix);
    const env = e2e.env(prefix, WINDOW_MS);
    let service: CallgateProcess = await startCallgate(env);
    // Each process serves the live page to a client that never reads.
    const stalled = [stalledClient(service.httpUrl)];

    const calls: Array<{ callId: string; kind: Kind; at: number }> = [];
    let badMessages = 0;
    const bad = badInput();
    const traffic = (async () => {
      for (let i = 0; i < CALLS; i++) {
        const callId = newCallId();
        const kind = KINDS[i % KINDS.length] as Kind;
        const at = Date.now();
        calls.push({ callId, kind, at });
        await bus.send(incoming(callId, at));
        if (kind === 'rejected') await bus.send(reject(callId));
        if (kind === 'answered') await bus.send(answered(callId));
        const next = bad[i % bad.length];
        if (next && i < bad.length) {
          await bus.publish(`${prefix}.events.${next[0]}`, next[1]);
          badMessages++;
        }
        if (i === 40) {
          await bus.publish(bus.notificationsSubject, badBatch());
          badMessages++;
        }
        await sleep(15);
      }
    })();
    let crashes = 0;
    for (const after of [2_000, 2_500]) {
      await sleep(after);
      await service.kill('SIGKILL');
      crashes++;
      service = await startCallgate(env);
      stalled.push(stalledClient(service.httpUrl));
    }
    await traffic;

    await eventually(() => calls.every(({ callId }) => bus.recordsOf(callId).some(isFinalRecord)), {
      timeout: WINDOW_MS + 20_000,
    }).catch((error: unknown) => {
      const open = calls.filter(({ callId }) => !bus.recordsOf(callId).some(isFinalRecord));
      const states = open.map(
        (c) =>
          `${c.kind}: ${bus
            .recordsOf(c.callId)
            .map((r) => r.state)
            .join(' ')}`,
      );
      throw new Error(
        `${open.length} calls not final: ${states.slice(0, 10).join('; ')}\n${service.stderr().slice(-3000)}`,
        { cause: error },
      );
    });
    const finals = calls.map(({ callId }) => [
      ...new Set(
        bus
          .recordsOf(callId)
          .filter(isFinalRecord)
          .map((r) => r.state),
      ),
    ]);
    const wrong = calls.filter(
      (call, i) => finals[i]?.length !== 1 || finals[i]?.[0] !== call.kind,
    );
    const doubled = finals.filter((states) => states.length > 1).length;
    const { accepted } = e2e.graph.stats();
    const lateRequests = e2e.graph.received().filter((request) => {
      const call = calls.find((c) => c.callId === request.callId);
      return call !== undefined && request.receivedAt >= call.at + WINDOW_MS;
    });
    process.stdout.write(
      `soak: ${calls.length} calls, ${badMessages} bad messages, ${crashes} kill -9s, ${bus.invalid.length} invalid records, ` +
        `${wrong.length} not as published, ${doubled} decided twice, ${lateRequests.length} requests at or after a deadline\n`,
    );

    expect(wrong.map((c) => c.callId)).toEqual([]);
    expect(doubled).toBe(0);
    expect(Object.values(accepted).filter((n) => n > 1)).toEqual([]);
    expect(lateRequests).toEqual([]);
    expect(bus.malformed).toEqual([]);
    expect(await service.get('/healthz')).toBe(200);
    await eventually(async () => (await service.get('/readyz')) === 200);
    for (const socket of stalled) socket.destroy();
  });
});
