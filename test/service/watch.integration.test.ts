import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CallControl } from '../../src/runtime/ports.js';
import { createMetrics } from '../../src/service/metrics.js';
import { type Service, startService } from '../../src/service/service.js';
import { eventually } from '../support/eventually.js';
import { type NatsServer, startNatsServer } from '../support/nats-server.js';

/**
 * Readiness that tells the truth: a deleted stream, consumer or bucket is
 * made again, and a consumer that makes no progress with work waiting makes
 * the service not ready.
 */

const log = pino({ level: 'silent' });
const accept: CallControl = { reject: async () => ({ status: 202, maybeDelivered: false }) };
let server: NatsServer;
let nc: NatsConnection;
let run = 0;
const running: Service[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterEach(async () => {
  for (const service of running.splice(0)) await service.stop(500);
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

async function start(prefix: string) {
  const metrics = createMetrics();
  const service = await startService({
    nc,
    control: accept,
    log,
    metrics,
    subjectPrefix: prefix,
    notificationsSubject: `${prefix}.graph.notifications`,
    answerTimeoutMs: 5_000,
    retentionMs: 120_000,
    watchIntervalMs: 100,
    stallMs: 1_000,
  });
  running.push(service);
  return { service, metrics };
}

/** A call, rejected: its last record. */
async function rejectOne(prefix: string): Promise<unknown> {
  const callId = crypto.randomUUID();
  const records: Array<{ state: string }> = [];
  const sub = nc.subscribe(`${prefix}.lifecycle.${callId}`, {
    callback: (_e, msg) => {
      records.push(msg.json());
    },
  });
  const js = jetstream(nc);
  const at = new Date().toISOString();
  await eventually(async () => {
    try {
      await js.publish(
        `${prefix}.events.${callId}`,
        JSON.stringify({ type: 'call.incoming', callId, at }),
      );
      return true;
    } catch {
      return false;
    }
  });
  await js.publish(
    `${prefix}.events.${callId}`,
    JSON.stringify({ type: 'call.reject', callId, at, reason: 'busy' }),
  );
  await eventually(() => records.some((r) => r.state === 'rejected'), { timeout: 10_000 });
  sub.unsubscribe();
  return records.at(-1);
}

describe('the bus watch', () => {
  it('makes a deleted stream and its consumer again, and calls move again', async () => {
    const prefix = `watch${++run}`;
    const { service, metrics } = await start(prefix);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(service.names.stream);
    await eventually(async () =>
      (await metrics.registry.metrics()).includes('callgate_repairs_total{what="stream"} 1'),
    );
    await eventually(() => service.isReady());
    expect(await rejectOne(prefix)).toMatchObject({ state: 'rejected' });
  });

  it('makes a deleted consumer again', async () => {
    const prefix = `watch${++run}`;
    const { service, metrics } = await start(prefix);
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.delete(service.names.stream, service.names.consumer);
    await eventually(async () =>
      (await metrics.registry.metrics()).includes('callgate_repairs_total{what="consumer"} 1'),
    );
    expect(await rejectOne(prefix)).toMatchObject({ state: 'rejected' });
  });

  it('makes a deleted bucket again, and stores calls in it', async () => {
    const prefix = `watch${++run}`;
    const { service, metrics } = await start(prefix);
    expect(await rejectOne(prefix)).toMatchObject({ state: 'rejected' });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(`KV_${service.names.bucket}`);
    await eventually(async () =>
      (await metrics.registry.metrics()).includes('callgate_repairs_total{what="bucket"} 1'),
    );
    expect(await rejectOne(prefix)).toMatchObject({ state: 'rejected' });
    const kv = await new Kvm(nc).open(service.names.bucket);
    expect((await kv.status()).values).toBeGreaterThan(0);
  });

  it('is not ready while messages wait and the consumer makes no progress, and says why', async () => {
    const prefix = `watch${++run}`;
    const { service } = await start(prefix);
    await eventually(() => service.isReady());
    // The bucket's stream no longer takes its subjects: every write fails, no
    // message is acknowledged.
    const jsm = await jetstreamManager(nc);
    const bucket = `KV_${service.names.bucket}`;
    await jsm.streams.update(bucket, { subjects: [`elsewhere.${prefix}.>`] });
    const callId = crypto.randomUUID();
    await jetstream(nc).publish(
      `${prefix}.events.${callId}`,
      JSON.stringify({ type: 'call.incoming', callId, at: new Date().toISOString() }),
    );
    await eventually(() => !service.isReady(), { timeout: 10_000 });
    expect(service.problem()).toMatch(/messages wait and the consumer has made no progress/);
  });
});
