import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RejectOutcome, RejectRequest } from '../../machines/types.js';
import { InvalidRecord, LifecycleRecord } from '../../src/contract/records.js';
import type { CallControl } from '../../src/runtime/ports.js';
import { createMetrics } from '../../src/service/metrics.js';
import { type Service, type ServiceOptions, startService } from '../../src/service/service.js';
import { eventually } from '../support/eventually.js';
import { type NatsServer, startNatsServer } from '../support/nats-server.js';

const log = pino({ level: 'silent' });
const WINDOW_MS = 3_000;
let server: NatsServer;
let nc: NatsConnection;
let prefix = 'call';
let counter = 0;

/** Graph as the test scripts it: outcomes by call id, 202 by default, requests recorded. */
function scriptedGraph() {
  const scripts = new Map<string, Array<Omit<RejectOutcome, 'at'> | 'hold'>>();
  const requests: RejectRequest[] = [];
  const held: Array<() => void> = [];
  const control: CallControl = {
    reject(request) {
      requests.push(request);
      const next = scripts.get(request.callId)?.shift() ?? { status: 202, maybeDelivered: false };
      if (next === 'hold')
        return new Promise((resolve) =>
          held.push(() => resolve({ status: 202, maybeDelivered: false })),
        );
      return Promise.resolve(next);
    },
  };
  return { control, scripts, requests, held };
}

async function start(graph = scriptedGraph(), extra: Partial<ServiceOptions> = {}) {
  const service = await startService({
    nc,
    control: graph.control,
    log,
    metrics: createMetrics(),
    subjectPrefix: prefix,
    notificationsSubject: `${prefix}.graph.notifications`,
    answerTimeoutMs: WINDOW_MS,
    retentionMs: 60_000,
    ...extra,
  });
  return { service, graph };
}

function recordsOf(subject: string) {
  const records: unknown[] = [];
  const sub = nc.subscribe(subject, {
    callback: (_e, m) => {
      records.push(m.json());
    },
  });
  return { records, stop: () => sub.unsubscribe() };
}

async function publish(subject: string, body: unknown) {
  const js = jetstream(nc);
  await js.publish(subject, typeof body === 'string' ? body : JSON.stringify(body));
}

const now = () => new Date().toISOString();
const running: Service[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterEach(async () => {
  for (const service of running.splice(0)) await service.stop(1_000);
  prefix = `call${++counter}`;
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

describe('the service on a real nats-server', () => {
  it('rejects a call: lifecycle records on call.lifecycle.<id>, the snapshot in KV', async () => {
    const { service, graph } = await start();
    running.push(service);
    const lifecycle = recordsOf(`${prefix}.lifecycle.>`);
    await publish(`${prefix}.events.C1`, { type: 'call.incoming', callId: 'C1', at: now() });
    await publish(`${prefix}.events.c1`, {
      type: 'call.reject',
      callId: 'c1',
      at: now(),
      reason: 'BUSY',
    });

    await eventually(() => lifecycle.records.length >= 3);
    expect(lifecycle.records.map((r) => LifecycleRecord.parse(r).state)).toEqual([
      'ringing',
      'rejecting',
      'rejected',
    ]);
    expect(graph.requests).toHaveLength(1);
    expect(graph.requests[0]).toMatchObject({ callId: 'c1', reason: 'busy', attempt: 1 });
    const kv = await new Kvm(nc).open(service.names.bucket);
    const stored = await eventually(async () =>
      (await kv.get('c1'))?.json<{ seq: number; snapshot: { value: unknown; status: string } }>(),
    );
    expect(stored?.snapshot).toMatchObject({ value: 'rejected', status: 'done' });
    lifecycle.stop();
  });

  it('reports bad input on call.invalid with the field and the rule, and keeps going', async () => {
    const { service } = await start();
    running.push(service);
    const invalid = recordsOf(`${prefix}.invalid`);
    const lifecycle = recordsOf(`${prefix}.lifecycle.>`);
    await publish(`${prefix}.events.c2`, 'not json');
    await publish(`${prefix}.events.c2`, {
      type: 'call.reject',
      callId: 'c2',
      at: now(),
      reason: 'maybe',
    });
    await publish(`${prefix}.events.c2`, { type: 'call.incoming', callId: 'c3', at: now() });
    await publish(`${prefix}.graph.notifications`, { value: 'nope' });
    await publish(`${prefix}.events.c2`, { type: 'call.incoming', callId: 'c2', at: now() });

    await eventually(() => invalid.records.length >= 4 && lifecycle.records.length >= 1);
    const errors = invalid.records.map((r) => InvalidRecord.parse(r).error);
    expect(errors).toEqual([
      expect.stringMatching(/^\(message\): must be JSON/),
      'reason: must be one of none, busy, forbidden',
      'callId: must name the same call as the subject token "c2" (got "c3")',
      'value: must be an array of notifications',
    ]);
    expect(InvalidRecord.parse(invalid.records[0]).payload).toBe('not json');
    expect(LifecycleRecord.parse(lifecycle.records[0])).toMatchObject({
      callId: 'c2',
      state: 'ringing',
    });
    invalid.stop();
    lifecycle.stop();
  });

  it('turns Graph notifications into events', async () => {
    const { service } = await start();
    running.push(service);
    const lifecycle = recordsOf(`${prefix}.lifecycle.>`);
    const id = '2F1A1100726E4C1EB6F2A1B2C3D4E5F6';
    await publish(`${prefix}.graph.notifications`, {
      '@odata.type': '#microsoft.graph.commsNotifications',
      value: [
        {
          changeType: 'created',
          resourceUrl: `/communications/calls/${id}`,
          resourceData: {
            '@odata.type': '#microsoft.graph.call',
            state: 'incoming',
            direction: 'incoming',
          },
        },
        {
          changeType: 'updated',
          resourceUrl: `/communications/calls/${id}`,
          resourceData: { '@odata.type': '#microsoft.graph.call', state: 'established' },
        },
      ],
    });
    await eventually(() => lifecycle.records.length >= 2);
    expect(lifecycle.records).toEqual([
      expect.objectContaining({ callId: '2f1a1100-726e-4c1e-b6f2-a1b2c3d4e5f6', state: 'ringing' }),
      expect.objectContaining({ state: 'answered', previous: 'ringing' }),
    ]);
    lifecycle.stop();
  });

  it('picks up where it stopped: a restarted service keeps the original deadline and refuses late commands', async () => {
    const first = await start();
    await publish(`${prefix}.events.c4`, { type: 'call.incoming', callId: 'c4', at: now() });
    await publish(`${prefix}.events.c5`, { type: 'call.incoming', callId: 'c5', at: now() });
    await publish(`${prefix}.events.c5`, { type: 'call.answered', callId: 'c5', at: now() });
    await eventually(() => first.service.runtime.stateOf('c5') === 'answered');
    const incomingAt = Date.now();
    await first.service.stop(1_000);

    const lifecycle = recordsOf(`${prefix}.lifecycle.>`);
    const second = await start();
    running.push(second.service);
    expect(second.service.runtime.stateOf('c4')).toBe('ringing');
    await publish(`${prefix}.events.c5`, {
      type: 'call.reject',
      callId: 'c5',
      at: now(),
      reason: 'busy',
    });
    const timedOut = await eventually(() =>
      lifecycle.records
        .map((r) => LifecycleRecord.parse(r))
        .find((r) => r.callId === 'c4' && r.state === 'timedOut'),
    );
    expect(Date.parse(timedOut?.at ?? '') - incomingAt).toBeLessThan(WINDOW_MS + 500);
    expect(lifecycle.records).toContainEqual(
      expect.objectContaining({
        callId: 'c5',
        state: 'answered',
        refused: { type: 'call.reject', why: 'the call was answered' },
      }),
    );
    lifecycle.stop();
  });

  it('refuses late commands for a final call that left memory, from the bucket, and never rings it again', async () => {
    const { service, graph } = await start(scriptedGraph(), { tombstoneMemoryMs: 200 });
    running.push(service);
    const lifecycle = recordsOf(`${prefix}.lifecycle.>`);
    await publish(`${prefix}.events.c7`, { type: 'call.incoming', callId: 'c7', at: now() });
    await publish(`${prefix}.events.c7`, {
      type: 'call.reject',
      callId: 'c7',
      at: now(),
      reason: 'busy',
    });
    await eventually(() => service.runtime.stateOf('c7') === 'rejected');
    // The whole tombstone leaves memory; only the bucket and a hash remain.
    await eventually(() => service.runtime.stateOf('c7') === undefined);

    await publish(`${prefix}.events.c7`, { type: 'call.incoming', callId: 'c7', at: now() });
    await publish(`${prefix}.events.c7`, {
      type: 'call.reject',
      callId: 'c7',
      at: now(),
      reason: 'forbidden',
    });
    const refusal = await eventually(() =>
      lifecycle.records.map((r) => LifecycleRecord.parse(r)).find((r) => r.refused),
    );
    expect(refusal).toMatchObject({
      callId: 'c7',
      state: 'rejected',
      previous: 'rejected',
      refused: { type: 'call.reject', why: 'the call was already rejected' },
    });
    await service.stop(1_000);
    running.splice(running.indexOf(service), 1);
    expect(lifecycle.records.map((r) => LifecycleRecord.parse(r).state)).toEqual([
      'ringing',
      'rejecting',
      'rejected',
      'rejected',
    ]);
    expect(graph.requests).toHaveLength(1);
    lifecycle.stop();
  });

  it('never restores a snapshot of another machine version: it reports the call, leaves its key, and reports its events', async () => {
    const first = await start();
    await first.service.stop(1_000);
    const bucket = await new Kvm(nc).open(first.service.names.bucket);
    const foreign = JSON.stringify({
      v: 99,
      seq: 1,
      snapshot: { status: 'active', value: 'ringing', context: { callId: 'c8' } },
    });
    await bucket.put('c8', foreign);

    const invalid = recordsOf(`${prefix}.invalid`);
    const metrics = createMetrics();
    const { service: second } = await start(scriptedGraph(), { metrics });
    running.push(second);
    const reported = await eventually(() => invalid.records.map((r) => InvalidRecord.parse(r))[0]);
    expect(reported).toMatchObject({
      subject: `$KV.${second.names.bucket}.c8`,
      error:
        'snapshot: the snapshot was stored by machine version 99; this service runs version 1 and does not restore it',
      payload: foreign,
    });
    expect(await metrics.registry.metrics()).toMatch(/callgate_unreadable_calls_total 1\n/);
    expect(second.runtime.stateOf('c8')).toBeUndefined();

    await publish(`${prefix}.events.c8`, {
      type: 'call.reject',
      callId: 'c8',
      at: now(),
      reason: 'busy',
    });
    await eventually(() => invalid.records.length === 2);
    expect(InvalidRecord.parse(invalid.records[1])).toMatchObject({
      subject: `${prefix}.events.c8`,
      error: expect.stringMatching(
        /^callId: the stored call cannot be used: the snapshot was stored by machine version 99/,
      ),
    });
    expect((await bucket.get('c8'))?.string()).toBe(foreign);
    invalid.stop();
  });

  it("names a partitioned instance's key in full when it reports a snapshot it cannot restore", async () => {
    const partitions = { count: 2, index: 1 };
    const { service: first } = await start(scriptedGraph(), { partitions });
    await first.stop(1_000);
    const bucket = await new Kvm(nc).open(first.names.bucket);
    await bucket.put('p1.c9', JSON.stringify({ v: 99, seq: 1, snapshot: {} }));

    const invalid = recordsOf(`${prefix}.invalid`);
    running.push((await start(scriptedGraph(), { partitions })).service);
    const reported = await eventually(() => invalid.records.map((r) => InvalidRecord.parse(r))[0]);
    expect(reported?.subject).toBe(`$KV.${first.names.bucket}.p1.c9`);
  });

  it('processes events published while it was down', async () => {
    const first = await start();
    await first.service.stop(1_000);
    await publish(`${prefix}.events.c6`, { type: 'call.incoming', callId: 'c6', at: now() });
    await publish(`${prefix}.events.c6`, {
      type: 'call.reject',
      callId: 'c6',
      at: now(),
      reason: 'none',
    });
    const lifecycle = recordsOf(`${prefix}.lifecycle.>`);
    const second = await start();
    running.push(second.service);
    await eventually(() => second.service.runtime.stateOf('c6') === 'rejected');
    expect(lifecycle.records.map((r) => LifecycleRecord.parse(r).state)).toEqual([
      'ringing',
      'rejecting',
      'rejected',
    ]);
    lifecycle.stop();
  });
});
