import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { partitionsFor } from '../../src/app/replicas.js';
import { createGraphEmulator, type GraphEmulator } from '../../src/tools/emulator/emulator.js';
import { type NatsCluster, startNatsCluster } from '../../src/tools/nats-cluster.js';
import {
  answered,
  type CallBus,
  incoming,
  isFinalRecord,
  newCallId,
  openCallBus,
  reject,
  serviceEnv,
} from '../support/call-bus.js';
import {
  type CallgateProcess,
  killAllCallgates,
  startCallgate,
} from '../support/callgate-process.js';
import { eventually } from '../support/eventually.js';
import { outcomeProblems, publishLoad } from '../support/load.js';

/**
 * Identical `callgate serve` processes on a three-node NATS cluster, with
 * `STREAM_REPLICAS=3`: they share the calls, take over from one that dies,
 * hand over when stopped, never act on a call they no longer own, and lose
 * nothing when a NATS node goes. On NATS 2.9 the calls are one partition,
 * held by one instance at a time: the same checks hold, with every call
 * in one instance's share.
 */

const WINDOW_MS = 6_000;

let cluster: NatsCluster;
let graph: GraphEmulator;
let partitions: number;
let prefixes = 0;
const buses: CallBus[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster(3, { name: 'replicas' });
  await cluster.ready();
  graph = await createGraphEmulator();
  const nc = await connect({ servers: cluster.url.split(',') });
  partitions = partitionsFor(nc.info?.version);
  await nc.close();
}, 60_000);

afterEach(async () => {
  await killAllCallgates();
  await Promise.all(buses.splice(0).map((bus) => bus.close()));
  graph.reset();
});

afterAll(async () => {
  await graph?.close();
  await cluster?.dispose();
});

async function fresh(
  answerTimeoutMs = WINDOW_MS,
): Promise<{ bus: CallBus; env: Record<string, string> }> {
  const prefix = `replicas${++prefixes}`;
  const bus = await openCallBus(cluster.url, prefix);
  buses.push(bus);
  const env = serviceEnv({
    natsUrl: cluster.url,
    graphUrl: graph.url,
    prefix,
    answerTimeoutMs,
    extra: { STREAM_REPLICAS: '3' },
  });
  return { bus, env };
}

/** The partitions an instance owns now, from its `/metrics`. */
async function owned(instance: CallgateProcess): Promise<number> {
  const text = await (await fetch(`${instance.httpUrl}/metrics`)).text();
  return Number(/^callgate_owned_partitions (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

/** Every partition is owned, each instance has its fair share (within one). */
async function shared(instances: readonly CallgateProcess[]): Promise<boolean> {
  const counts = await Promise.all(instances.map(owned));
  const sum = counts.reduce((a, b) => a + b, 0);
  return sum === partitions && Math.max(...counts) - Math.min(...counts) <= 1;
}

async function startAll(env: Record<string, string>, n: number): Promise<CallgateProcess[]> {
  const instances = await Promise.all(Array.from({ length: n }, () => startCallgate(env)));
  await eventually(() => shared(instances), { timeout: 15_000, interval: 200 });
  return instances;
}

describe('three identical instances on a three-node cluster', () => {
  it('share the calls fairly, and decide each call once', async () => {
    const { bus, env } = await fresh();
    await startAll(env, 3);
    const load = publishLoad(bus, { count: 60, gapMs: 5 });
    await load.done;
    expect(await outcomeProblems(bus, graph, load.calls, WINDOW_MS + 10_000)).toEqual([]);
  });

  it('kill -9 of one under load: the others take its calls over; nothing lost or decided twice', async () => {
    const { bus, env } = await fresh();
    const instances = await startAll(env, 3);
    const load = publishLoad(bus, { count: 150, gapMs: 20 });
    await sleep(1_500);
    await instances[1]?.kill('SIGKILL');
    await load.done;
    expect(await outcomeProblems(bus, graph, load.calls, WINDOW_MS + 15_000)).toEqual([]);
    const survivors = [instances[0], instances[2]].filter((i) => i !== undefined);
    await eventually(() => shared(survivors), { timeout: 10_000, interval: 200 });
  });

  it('a rolling restart under load (SIGTERM, start a new one, next): nothing lost or decided twice', async () => {
    const { bus, env } = await fresh();
    const instances = await startAll(env, 3);
    const load = publishLoad(bus, { count: 200, gapMs: 20 });
    for (let i = 0; i < instances.length; i++) {
      const exit = await instances[i]?.kill('SIGTERM');
      expect(exit).toEqual({ code: 0, signal: null });
      instances[i] = await startCallgate(env);
    }
    await load.done;
    expect(await outcomeProblems(bus, graph, load.calls, WINDOW_MS + 15_000)).toEqual([]);
    await eventually(() => shared(instances), { timeout: 10_000, interval: 200 });
  });

  it('an instance that joins later takes its share, and the calls go on', async () => {
    const { bus, env } = await fresh();
    const instances = await startAll(env, 2);
    const load = publishLoad(bus, { count: 100, gapMs: 20 });
    await sleep(500);
    instances.push(await startCallgate(env));
    await eventually(() => shared(instances), { timeout: 15_000, interval: 200 });
    await load.done;
    expect(await outcomeProblems(bus, graph, load.calls, WINDOW_MS + 10_000)).toEqual([]);
  });

  it('a NATS node killed and restarted under load loses nothing (STREAM_REPLICAS=3)', async () => {
    // The answer window Graph gives: the streams' leaders move within it.
    const { bus, env } = await fresh(15_000);
    await startAll(env, 3);
    const load = publishLoad(bus, { count: 150, gapMs: 20 });
    await sleep(1_000);
    const node = cluster.nodes[1];
    await node?.stop({ kill: true });
    await sleep(1_500);
    await node?.start();
    await load.done;
    expect(await outcomeProblems(bus, graph, load.calls, 15_000 + 20_000)).toEqual([]);
  });
});

describe('an owner frozen (SIGSTOP) while another takes its calls over', () => {
  it('never acts on them when it resumes: one decision per call, no reject or timeout after the other decided', async () => {
    // Long enough for the other to start and take over before the deadlines.
    const { bus, env } = await fresh(12_000);
    const frozen = await startCallgate(env);
    const [toReject, toAnswer, toTimeOut] = [newCallId(), newCallId(), newCallId()];
    // Its first reject is refused for 2 s: it is waiting to retry when it freezes.
    graph.setFault({
      callId: toReject,
      times: 1,
      fault: { kind: 'status', status: 429, retryAfterSeconds: 2 },
    });
    for (const callId of [toReject, toAnswer, toTimeOut]) await bus.send(incoming(callId));
    await bus.send(reject(toReject));
    await eventually(async () => {
      const stored = await bus.storedState(toReject);
      return JSON.stringify(stored) === JSON.stringify({ rejecting: 'waiting' });
    });
    await eventually(
      () => bus.recordsOf(toTimeOut).length > 0 && bus.recordsOf(toAnswer).length > 0,
    );
    frozen.signal('SIGSTOP');
    const other = await startCallgate(env);
    await eventually(async () => (await owned(other)) === partitions, { timeout: 15_000 });
    await bus.send(answered(toAnswer));
    await bus.settled(toReject);
    await bus.settled(toAnswer);
    await bus.settled(toTimeOut, 12_000 + 5_000);
    // Its retry and every deadline are due as it wakes.
    frozen.signal('SIGCONT');
    await sleep(3_000);

    const finals = (callId: string) =>
      bus
        .recordsOf(callId)
        .filter(isFinalRecord)
        .map((r) => r.state);
    expect(finals(toReject)).toEqual(['rejected']);
    expect(finals(toAnswer)).toEqual(['answered']);
    expect(finals(toTimeOut)).toEqual(['timedOut']);
    const requested = graph.received().map((r) => r.callId);
    // The frozen owner's 429, then the new owner's retry: never the frozen one's retry.
    expect(
      graph
        .received()
        .filter((r) => r.callId === toReject)
        .map((r) => r.status),
    ).toEqual([429, 202]);
    expect(requested.filter((id) => id === toAnswer || id === toTimeOut)).toEqual([]);
    // It rejoins and takes its share back.
    await eventually(() => shared([frozen, other]), { timeout: 15_000, interval: 200 });
  });
});
