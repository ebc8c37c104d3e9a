import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { Leases } from '../../src/ownership/leases.js';
import { createMetrics } from '../../src/service/metrics.js';
import { type PartitionService, Shares } from '../../src/service/shares.js';
import { eventually } from '../support/eventually.js';
import { type NatsServer, startNatsServer } from '../support/nats-server.js';

/**
 * An instance's share among identical replicas, against a real nats-server,
 * with partition services that only record what happened to them.
 */

const TIMING = { heartbeatMs: 50, fenceMs: 300, deadMs: 400 };
const COUNT = 6;

let server: NatsServer;
let nc: NatsConnection;
let bucketNo = 0;
const running: Array<{ shares: Shares; leases: Leases }> = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterEach(() => {
  for (const { leases } of running.splice(0)) leases.stop();
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

type Event = `${'start' | 'takeover' | 'stop' | 'abandon'} ${number}`;

async function instance(bucket: string, me: string, events: Event[]) {
  const kv = await new Kvm(nc).create(bucket, { history: 1 });
  const log = createLogger({ level: 'silent' });
  let shares: Shares | undefined;
  const leases = new Leases({
    kv,
    me,
    count: COUNT,
    timing: TIMING,
    onChange: () => void shares?.plan(),
    onError: () => {},
  });
  const made = new Shares({
    leases,
    handOverMs: 100,
    metrics: createMetrics(),
    log,
    start: async (partition, takeover): Promise<PartitionService> => {
      events.push(`${takeover ? 'takeover' : 'start'} ${partition}`);
      return {
        isReady: () => true,
        problem: () => undefined,
        stop: async () => {
          events.push(`stop ${partition}`);
        },
        abandon: async () => {
          events.push(`abandon ${partition}`);
        },
      };
    },
  });
  shares = made;
  running.push({ shares: made, leases });
  await made.start();
  return { shares: made, leases };
}

describe('shares', () => {
  it('split the partitions between two instances, and give them all to the one left after a SIGTERM', async () => {
    const bucket = `owners-${++bucketNo}`;
    const [aEvents, bEvents]: [Event[], Event[]] = [[], []];
    const a = await instance(bucket, 'a', aEvents);
    expect(a.shares.owned).toHaveLength(COUNT);
    const b = await instance(bucket, 'b', bEvents);
    await eventually(() => a.shares.owned.length === 3 && b.shares.owned.length === 3);
    expect(a.shares.isReady() && b.shares.isReady()).toBe(true);
    // Handed over: stopped (not abandoned) at a, started (not taken over) at b.
    expect(aEvents.filter((e) => e.startsWith('stop'))).toHaveLength(3);
    expect(bEvents.filter((e) => e.startsWith('start'))).toHaveLength(3);

    await b.shares.stop(100);
    await eventually(() => a.shares.owned.length === COUNT);
    expect(bEvents.filter((e) => e.startsWith('stop'))).toHaveLength(3);
    expect(aEvents.filter((e) => e.startsWith('takeover') || e.startsWith('abandon'))).toEqual([]);
  });

  it('take a dead instance’s partitions over, as takeovers', async () => {
    const bucket = `owners-${++bucketNo}`;
    const [aEvents, bEvents]: [Event[], Event[]] = [[], []];
    const a = await instance(bucket, 'a', aEvents);
    const b = await instance(bucket, 'b', bEvents);
    await eventually(() => a.shares.owned.length === 3 && b.shares.owned.length === 3);
    const bOwned = b.shares.owned;

    // Dies: its heartbeat stops, nothing is handed over.
    b.leases.stop();
    await eventually(() => a.shares.owned.length === COUNT, { timeout: 5_000 });
    expect(aEvents.filter((e) => e.startsWith('takeover')).sort()).toEqual(
      bOwned.map((p) => `takeover ${p}`).sort(),
    );
  });
});
