import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { partitionMapping } from '../../src/bus/jetstream.js';
import { partitionOf } from '../../src/ownership/partition.js';
import { incoming, newCallId, reject, shape } from '../support/call-bus.js';
import { type CallgateProcess, startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';
import { startNatsServer } from '../support/nats-server.js';

/**
 * Several instances sharing one stream (`PARTITIONS`, `PARTITION`): each owns
 * the calls whose id hashes to its partition, partition 0 routes events
 * published without one, and a killed instance's calls come back with it.
 */

const WINDOW_MS = 5_000;
const PARTITIONS = 2;

const e2e = useE2e({ scope: 'test' });

async function startInstances(prefix: string): Promise<CallgateProcess[]> {
  const instances: CallgateProcess[] = [];
  for (let index = 0; index < PARTITIONS; index++) {
    instances.push(await startCallgate(instanceEnv(prefix, index)));
  }
  return instances;
}

function instanceEnv(prefix: string, index: number): Record<string, string> {
  return e2e.env(prefix, WINDOW_MS, { PARTITIONS: String(PARTITIONS), PARTITION: String(index) });
}

/** `callgate_events_total` summed over labels, from an instance's /metrics. */
async function eventsApplied(instance: CallgateProcess): Promise<number> {
  const text = await (await fetch(`${instance.httpUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('callgate_events_total{') && line.includes('applied'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** Call ids, half of them in each partition. */
function callIdsOverPartitions(perPartition: number): string[] {
  const byPartition: string[][] = Array.from({ length: PARTITIONS }, () => []);
  while (byPartition.some((ids) => ids.length < perPartition)) {
    const callId = newCallId();
    const ids = byPartition[partitionOf(callId, PARTITIONS)];
    if (ids && ids.length < perPartition) ids.push(callId);
  }
  return byPartition.flat();
}

describe('calls partitioned over two instances', () => {
  it('rejects every call once, each in the instance that owns its partition', async () => {
    const { prefix, bus } = await e2e.fresh('e2epart', WINDOW_MS);
    const instances = await startInstances(prefix);
    const callIds = callIdsOverPartitions(10);

    for (const callId of callIds) {
      await bus.send(incoming(callId));
      await bus.send(reject(callId));
    }
    for (const callId of callIds) {
      expect((await bus.settled(callId)).map(shape)).toEqual([
        { state: 'ringing', previous: null },
        { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
        { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 1 },
      ]);
      expect(e2e.graph.acceptedCount(callId)).toBe(1);
    }
    expect(e2e.graph.received()).toHaveLength(callIds.length);
    // 10 calls × 2 events in each instance.
    await eventually(
      async () => (await Promise.all(instances.map(eventsApplied))).join() === '20,20',
    );
    expect(bus.invalid).toEqual([]);
  });

  it('routes a Graph notification batch to each call’s partition', async () => {
    const { prefix, bus } = await e2e.fresh('e2epart', WINDOW_MS);
    await startInstances(prefix);
    const callIds = callIdsOverPartitions(2);
    await bus.publish(
      bus.notificationsSubject,
      JSON.stringify({
        value: callIds.map((callId) => ({
          changeType: 'created',
          resourceUrl: `/communications/calls/${callId}`,
          resourceData: {
            '@odata.type': '#microsoft.graph.call',
            state: 'incoming',
            direction: 'incoming',
          },
        })),
      }),
    );
    await eventually(() => callIds.every((callId) => bus.recordsOf(callId).length === 1));
    for (const callId of callIds) await bus.send(reject(callId));
    for (const callId of callIds) {
      expect((await bus.settled(callId)).at(-1)?.state).toBe('rejected');
    }
  });

  it('reports bad input once, at the router, with the subject it was published on', async () => {
    const { prefix, bus } = await e2e.fresh('e2epart', WINDOW_MS);
    await startInstances(prefix);
    await bus.publish(`${prefix}.events.${newCallId()}`, '{"type":"call.reject"}');
    await eventually(() => bus.invalid.length === 1);
    // A good call after it, through the same router and partitions: settled,
    // and still only the one report.
    const callId = newCallId();
    await bus.send(incoming(callId));
    await bus.send(reject(callId));
    expect((await bus.settled(callId)).at(-1)?.state).toBe('rejected');
    expect(bus.invalid).toHaveLength(1);
    expect(bus.invalid[0]?.subject).toMatch(new RegExp(`^${prefix}\\.events\\.[0-9a-f-]+$`));
    expect(bus.invalid[0]?.error).toMatch(/callId/);
  });

  it('brings a killed instance’s calls back with it: a call ringing there times out at its original deadline', async () => {
    const { prefix, bus } = await e2e.fresh('e2epart', WINDOW_MS);
    const instances = await startInstances(prefix);
    const [inFirst, inSecond] = callIdsOverPartitions(1);
    const incomingAt = Date.now();
    await bus.send(incoming(inFirst as string, incomingAt));
    await bus.send(incoming(inSecond as string, incomingAt));
    await eventually(() => bus.lifecycle.length === 2);

    await instances[1]?.kill('SIGKILL');
    await startCallgate(instanceEnv(prefix, 1));
    await bus.send(reject(inFirst as string));
    const records = await bus.settled(inSecond as string, WINDOW_MS + 5_000);
    expect(records.map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'timedOut', previous: 'ringing' },
    ]);
    expect(Math.abs(Date.parse(records[1]?.at ?? '') - (incomingAt + WINDOW_MS))).toBeLessThan(300);
    expect((await bus.settled(inFirst as string)).at(-1)?.state).toBe('rejected');
  });
});

describe('the partition function', () => {
  it('agrees with nats-server’s {{partition(n,1)}} subject mapping for canonical call ids', async () => {
    const count = 5;
    const config = join(tmpdir(), `callgate-partition-${process.pid}.conf`);
    const mapping = partitionMapping('pt', count);
    writeFileSync(
      config,
      `mappings = {\n${Object.entries(mapping)
        .map(([from, to]) => `  "${from}": "${to}"`)
        .join('\n')}\n}\n`,
    );
    const mapped = await startNatsServer({ args: ['-c', config] });
    const nc = await connect({ servers: mapped.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'pt', subjects: ['pt.events.>', 'pt.partition.>'] });
      const js = jetstream(nc);
      const callIds = Array.from({ length: 100 }, () => newCallId());
      for (const callId of callIds) await js.publish(`pt.events.${callId}`, 'x');
      const seen = new Map<string, number>();
      for (let seq = 1; seq <= callIds.length; seq++) {
        const stored = await jsm.streams.getMessage('pt', { seq });
        const [, , partition, callId] = stored?.subject.split('.') ?? [];
        seen.set(callId as string, Number(partition));
      }
      expect(callIds.map((callId) => seen.get(callId))).toEqual(
        callIds.map((callId) => partitionOf(callId, count)),
      );
      expect(new Set(seen.values()).size).toBe(count);
    } finally {
      await nc.close();
      await mapped.dispose();
    }
  });
});
