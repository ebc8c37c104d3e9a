import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restartConsumer } from '../../src/bus/jetstream.js';
import { type NatsServer, startNatsServer } from '../support/nats-server.js';

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

describe('a consumer taken over from an instance that died', () => {
  it('is made again from its ack floor: what the dead one held comes at once, and the last sequence it had is returned', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'taken', subjects: ['taken.>'] });
    await jsm.consumers.add('taken', {
      durable_name: 'p0',
      ack_policy: AckPolicy.Explicit,
      ack_wait: 60_000_000_000,
    });
    const js = jetstream(nc);
    for (let i = 1; i <= 5; i++) await js.publish(`taken.${i}`, String(i));
    const consumer = await js.consumers.get('taken', 'p0');
    const held = [];
    for await (const msg of await consumer.fetch({ max_messages: 3, expires: 1_000 })) {
      held.push(msg);
    }
    held[0]?.ack();
    await nc.flush();

    expect(await restartConsumer(jsm, 'taken', 'p0')).toBe(3);

    const again = await js.consumers.get('taken', 'p0');
    const seqs: number[] = [];
    for await (const msg of await again.fetch({ max_messages: 4, expires: 1_000 })) {
      seqs.push(msg.seq);
      msg.ack();
    }
    // Long before the 60 s ack wait of the messages the dead one held.
    expect(seqs).toEqual([2, 3, 4, 5]);
    expect((await jsm.consumers.info('taken', 'p0')).config.ack_wait).toBe(60_000_000_000);
  });

  it('is left alone when nothing was held, and a missing one is not an error', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'idle', subjects: ['idle.>'] });
    await jsm.consumers.add('idle', { durable_name: 'p0', ack_policy: AckPolicy.Explicit });
    const before = await jsm.consumers.info('idle', 'p0');

    expect(await restartConsumer(jsm, 'idle', 'p0')).toBe(0);
    expect((await jsm.consumers.info('idle', 'p0')).created).toEqual(before.created);
    expect(await restartConsumer(jsm, 'idle', 'none')).toBe(0);
  });
});
