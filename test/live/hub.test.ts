import type { Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { LifecycleRecord } from '../../src/contract/records.js';
import { createHttpServer } from '../../src/http/server.js';
import { createLiveHub, type LiveHub } from '../../src/live/hub.js';
import { LIVE_PAGE_HTML } from '../../src/live/page.js';
import { createMetrics } from '../../src/service/metrics.js';
import { eventually } from '../support/eventually.js';
import { at, ID, rejected, rejecting, ringing, T0 } from '../support/records.js';

const refused: LifecycleRecord = {
  ...rejected,
  previous: 'rejected',
  at: at(400),
  error: 'call.reject refused: final',
  refused: { type: 'call.reject', why: '<b>final</b>' },
};

/** What the service knows beside each record: the call's deadline, and the latency a `rejected` completes. */
const facts = (rejectLatencyMs?: number) => ({ deadline: T0 + 30_000, rejectLatencyMs });

let hub: LiveHub | undefined;
let http: Server | undefined;
afterEach(async () => {
  hub?.close();
  const server = http;
  http = undefined;
  if (!server) return;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** The hub's routes on an HTTP server on a free loopback port, closed after the test. */
async function serve(live: LiveHub): Promise<{ port: number; base: string }> {
  const server = createHttpServer({
    metrics: createMetrics().registry,
    isReady: () => true,
    routes: live.routes,
  });
  http = server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { port, base: `http://127.0.0.1:${port}` };
}

/** Read server-sent events from `url` until `count` events (name + JSON data) have arrived. */
async function readEvents(url: string, count: number, controller: AbortController) {
  const response = await fetch(url, { signal: controller.signal });
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = response.body?.getReader();
  if (!reader) throw new Error('no body');
  const decoder = new TextDecoder();
  let buffer = '';
  const events: { event: string; data: unknown }[] = [];
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push({ event, data: JSON.parse(data) });
      end = buffer.indexOf('\n\n');
    }
  }
  return events;
}

describe('the live hub', () => {
  it('keeps in-flight calls with deadlines, counts per state, the last records and reject latency', async () => {
    hub = createLiveHub({ recentLimit: 3 });
    for (const record of [ringing, rejecting]) hub.record(record, facts());
    await sleep(0);
    expect(hub.snapshot().calls).toEqual([
      {
        callId: ID,
        state: 'rejecting',
        since: at(100),
        deadline: T0 + 30_000,
        reason: 'busy',
        attempts: 1,
      },
    ]);
    hub.record(rejected, facts(250));
    hub.record(refused, facts());
    await sleep(0);
    const snapshot = hub.snapshot();
    expect(snapshot.calls).toEqual([]);
    expect(snapshot.counts).toMatchObject({ ringing: 0, rejecting: 0, rejected: 1 });
    expect(snapshot.recent).toEqual([rejecting, rejected, refused]);
    expect(snapshot.latency).toEqual({ count: 1, last: 0.25, p50: 0.25, p95: 0.25, max: 0.25 });
  });

  it('shows the most recently changed calls up to its limit, and counts every call', async () => {
    hub = createLiveHub({ callLimit: 2 });
    const ids = ['a', 'b', 'c'].map((letter) => ID.replace('2f1a', `${letter}${letter}1a`));
    for (const callId of ids) hub.record({ ...ringing, callId });
    hub.record({ ...rejecting, callId: ids[0] as string });
    await sleep(0);
    const snapshot = hub.snapshot();
    expect(snapshot.calls.map((call) => [call.callId, call.state])).toEqual([
      [ids[2], 'ringing'],
      [ids[0], 'rejecting'],
    ]);
    expect(snapshot.counts).toMatchObject({ ringing: 2, rejecting: 1 });

    // A final record for a call the table dropped still moves the counts.
    hub.record({ ...rejected, callId: ids[1] as string, previous: 'ringing' });
    await sleep(0);
    expect(hub.snapshot().counts).toMatchObject({ ringing: 1, rejecting: 1, rejected: 1 });
  });

  it('never counts below zero for a call restored after a restart (no earlier record)', async () => {
    hub = createLiveHub();
    hub.record(rejected);
    await sleep(0);
    expect(hub.snapshot().counts).toMatchObject({ rejecting: 0, rejected: 1 });
  });

  it('streams a snapshot on connect, one event per record, and forgets a client that leaves', async () => {
    hub = createLiveHub({ heartbeatMs: 20 });
    hub.record(ringing, facts());
    const { base } = await serve(hub);
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toBe(LIVE_PAGE_HTML);

    const controller = new AbortController();
    const reading = readEvents(`${base}/events`, 2, controller);
    const live = hub;
    await eventually(() => live.clientCount === 1);
    live.record(rejecting, facts());
    const [first, second] = await reading;
    expect(first).toMatchObject({
      event: 'snapshot',
      data: { calls: [{ callId: ID, state: 'ringing', deadline: T0 + 30_000 }] },
    });
    expect(second).toMatchObject({
      event: 'record',
      data: { record: rejecting, call: { state: 'rejecting' }, counts: { rejecting: 1 } },
    });
    controller.abort();
    await eventually(() => live.clientCount === 0);
  });

  it('names the instance and what it owns: in the snapshot, and to every page when it changes', async () => {
    hub = createLiveHub({ heartbeatMs: 20 });
    hub.instance('instance a: 4 of 12 partitions (0, 3, 6, 9)');
    expect(hub.snapshot().instance).toBe('instance a: 4 of 12 partitions (0, 3, 6, 9)');
    const { base } = await serve(hub);
    const controller = new AbortController();
    const reading = readEvents(`${base}/events`, 2, controller);
    const live = hub;
    await eventually(() => live.clientCount === 1);
    live.instance('instance a: 6 of 12 partitions (0, 1, 3, 6, 9, 11)');
    const [first, second] = await reading;
    expect(first).toMatchObject({
      event: 'snapshot',
      data: { instance: 'instance a: 4 of 12 partitions (0, 3, 6, 9)' },
    });
    expect(second).toEqual({
      event: 'instance',
      data: { instance: 'instance a: 6 of 12 partitions (0, 1, 3, 6, 9, 11)' },
    });
    controller.abort();
  });

  it('never writes record text into the page as HTML', () => {
    const script = /<script>([\s\S]*)<\/script>/.exec(LIVE_PAGE_HTML)?.[1] ?? '';
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    expect(script).toMatch(/textContent/);
  });

  it('answers 503 to one /events client more than it allows', async () => {
    hub = createLiveHub({ maxClients: 1 });
    const { base } = await serve(hub);
    const controller = new AbortController();
    try {
      const first = await fetch(`${base}/events`, { signal: controller.signal });
      expect(first.status).toBe(200);
      const second = await fetch(`${base}/events`);
      expect(second.status).toBe(503);
      expect(second.headers.get('retry-after')).toBe('5');
    } finally {
      controller.abort();
    }
  });

  it('drops a client that does not keep up instead of buffering for it', async () => {
    hub = createLiveHub({ heartbeatMs: 60_000 });
    const { port } = await serve(hub);
    const live = hub;
    // A client that reads nothing: its socket's buffers fill, then the hub's.
    const socket = connect(port, '127.0.0.1');
    socket.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
    socket.pause();
    try {
      await eventually(() => live.clientCount === 1);
      const big = { ...rejecting, error: 'x'.repeat(16 * 1024) };
      for (let i = 0; i < 2_000 && live.clientCount === 1; i++) {
        live.record(big, facts());
        await sleep(0);
      }
      expect(live.clientCount).toBe(0);
    } finally {
      socket.destroy();
    }
  });

  it('asks for the token when one is set: as a query parameter or a bearer token', async () => {
    const token = 'a-live-page-token-1234';
    hub = createLiveHub({ token });
    const { base } = await serve(hub);
    expect((await fetch(`${base}/`)).status).toBe(401);
    expect((await fetch(`${base}/?token=wrong-token-wrong-token`)).status).toBe(401);
    expect((await fetch(`${base}/?token=${token}`)).status).toBe(200);
    const events = await fetch(`${base}/events`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(events.status).toBe(200);
    await events.body?.cancel();
    expect((await fetch(`${base}/events`)).status).toBe(401);
  });
});
