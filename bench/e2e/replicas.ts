import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { partitionOf } from '../../src/ownership/partition.js';
import { type NatsCluster, startNatsCluster } from '../../src/tools/nats-cluster.js';
import { type Instance, measureBurst, removeBus, startInstance } from './burst.js';
import { type BenchNatsServer, startNatsServer } from './nats-server.js';
import {
  abs,
  checkBuilt,
  type EmulatorHandle,
  httpGet,
  num,
  round,
  SERVICE_ENTRY,
  sleep,
  startEmulator,
  until,
  waitForPosts,
} from './procs.js';

/**
 * `npm run bench -- replicas`:
 *  1. throughput: one burst of REPL_CALLS calls (incoming + reject) through
 *     1, 2 and 3 identical instances on one nats-server, with the CPU each
 *     used per call; with REPLICAS_REFERENCE=<another build's dist/src/cli.js>,
 *     one instance of that build too, run alternately with one of this build;
 *  2. failover: three instances on a three-node cluster (STREAM_REPLICAS=3),
 *     REPL_RATE calls/s for REPL_SECONDS (four in five rejected, one in five
 *     answered), one instance killed (SIGKILL) halfway: command → first POST
 *     for the rejects of the calls it owned, commanded around the kill;
 *  3. rolling restart: the same load while each instance in turn gets SIGTERM
 *     and a new one starts.
 * Each run checks: calls lost, rejects POSTed twice, answered calls POSTed,
 * calls with two final states.
 */

type Row = Record<string, string | number>;

const CALLS = num('REPL_CALLS', 10_000);
const WARMUP = num('REPL_WARMUP', 1_000);
const RATE = num('REPL_RATE', 100);
const SECONDS = num('REPL_SECONDS', 10);
const BURST_WINDOW_MS = 600_000;
const LOAD_WINDOW_MS = 15_000;
const PARTITIONS = 12;
/** REPL_COUNTS: the instance counts of the throughput runs (default "1,2,3"). */
const COUNTS = (process.env.REPL_COUNTS ?? '1,2,3').split(',').map((n) => Number(n.trim()));
/** REPL_ONLY=throughput or failover: one of the two parts. */
const ONLY = process.env.REPL_ONLY;

const progress = (text: string) =>
  process.stderr.write(`[replicas ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

function serviceEnv(url: string, emulator: EmulatorHandle, prefix: string, windowMs: number) {
  return {
    NATS_URL: url,
    SUBJECT_PREFIX: prefix,
    NOTIFICATIONS_SUBJECT: `${prefix}.graph.notifications`,
    GRAPH_BASE_URL: emulator.url,
    GRAPH_TOKEN: 'bench-token',
    ANSWER_TIMEOUT_MS: String(windowMs),
  };
}

/** Every instance's share is settled: each owns its fair share of the partitions. */
async function shared(instances: readonly Instance[]): Promise<void> {
  await until(
    'the partitions to be shared',
    async () => {
      const counts = await Promise.all(
        instances.map(async ({ base }) => {
          const { body } = await httpGet(`${base}/metrics`, 5_000);
          return Number(/^callgate_owned_partitions (\d+)/m.exec(body)?.[1] ?? Number.NaN);
        }),
      );
      const sum = counts.reduce((a, b) => a + b, 0);
      return sum === PARTITIONS && Math.max(...counts) - Math.min(...counts) <= 1
        ? true
        : undefined;
    },
    30_000,
    100,
  );
}

async function burstThroughput(
  nats: BenchNatsServer,
  emulator: EmulatorHandle,
  nc: NatsConnection,
  label: string,
  count: number,
  entry = SERVICE_ENTRY,
): Promise<Row> {
  const prefix = `rb${label.replace(/\W/g, '')}${count}${Date.now() % 10_000}`;
  const env = serviceEnv(nats.url, emulator, prefix, BURST_WINDOW_MS);
  const instances: Instance[] = [];
  for (let i = 0; i < count; i++) instances.push(await startInstance(env, entry));
  try {
    if (count > 1) await shared(instances);
    progress(`${label}: ${count} instance(s), ${CALLS} calls at once`);
    const burst = await measureBurst({
      nats,
      emulator,
      nc,
      prefix,
      instances,
      calls: CALLS,
      warmup: WARMUP,
    });
    return {
      build: label,
      instances: count,
      'POSTs received': burst.posts,
      'calls/s': burst.callsPerSecond,
      'CPU µs/call, all instances': burst.cpuPerCall.reduce((a, b) => a + b, 0),
      'CPU µs/call, each': burst.cpuPerCall.join(' / '),
      'nats-server µs/call': burst.natsPerCall,
      'machine busy (cores of 2)': burst.busy,
    };
  } finally {
    await Promise.all(instances.map(({ child }) => child.stop()));
    await removeBus(nc, prefix);
  }
}

/** Calls paced at RATE/s: four in five incoming + reject, one in five incoming + answered. */
async function pacedLoad(js: JetStreamClient, prefix: string, tag: string) {
  const rejectAt = new Map<string, number>();
  const answered = new Set<string>();
  const all: string[] = [];
  const total = RATE * SECONDS;
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const callId = `${tag}${i}`;
    all.push(callId);
    const subject = `${prefix}.events.${callId}`;
    const at = new Date().toISOString();
    await js.publish(subject, `{"type":"call.incoming","callId":"${callId}","at":"${at}"}`);
    if (i % 5 === 4) {
      answered.add(callId);
      await js.publish(subject, `{"type":"call.answered","callId":"${callId}","at":"${at}"}`);
    } else {
      rejectAt.set(callId, abs());
      await js.publish(
        subject,
        `{"type":"call.reject","callId":"${callId}","at":"${at}","reason":"busy"}`,
      );
    }
  }
  return { rejectAt, answered, all };
}

/** Final states per call, from the lifecycle records. */
function followFinals(nc: NatsConnection, prefix: string) {
  const finals = new Map<string, Set<string>>();
  const sub = nc.subscribe(`${prefix}.lifecycle.>`, {
    callback: (error, msg) => {
      if (error) return;
      const record = msg.json<{ callId: string; state: string; refused?: unknown }>();
      if (record.refused || record.state === 'ringing' || record.state === 'rejecting') return;
      const states = finals.get(record.callId) ?? new Set<string>();
      states.add(record.state);
      finals.set(record.callId, states);
    },
  });
  return { finals, stop: () => sub.unsubscribe() };
}

/** The member ids that hold each partition's lease now. */
async function leaseOwners(nc: NatsConnection, prefix: string): Promise<Map<number, string>> {
  const kv = await new Kvm(nc).open(`callgate-${prefix}-owners`);
  const owners = new Map<number, string>();
  for (let p = 0; p < PARTITIONS; p++) {
    const entry = await kv.get(`lease.${PARTITIONS}.${p}`);
    if (entry?.operation === 'PUT') owners.set(p, entry.json<{ owner: string }>().owner);
  }
  return owners;
}

async function underLoad(
  cluster: NatsCluster,
  emulator: EmulatorHandle,
  nc: NatsConnection,
  kind: 'kill -9' | 'rolling restart',
): Promise<Row> {
  const prefix = `rf${kind === 'kill -9' ? 'k' : 'r'}${Date.now() % 100_000}`;
  const env = {
    ...serviceEnv(cluster.url, emulator, prefix, LOAD_WINDOW_MS),
    STREAM_REPLICAS: '3',
  };
  const instances: Instance[] = [];
  for (let i = 0; i < 3; i++) instances.push(await startInstance(env));
  const follow = followFinals(nc, prefix);
  try {
    await shared(instances);
    await emulator.reset();
    const { offsetMs } = await emulator.calibrate();
    const owners = await leaseOwners(nc, prefix);
    progress(`${kind}: ${RATE} calls/s for ${SECONDS} s through three instances`);
    const load = pacedLoad(jetstream(nc), prefix, 'f');
    let killedAt = Number.NaN;
    let victimPartitions = new Set<number>();
    if (kind === 'kill -9') {
      await sleep((SECONDS * 1000) / 2);
      const victim = instances[2] as Instance;
      victimPartitions = new Set(
        [...owners].filter(([, owner]) => owner.includes(`-${victim.child.pid}-`)).map(([p]) => p),
      );
      killedAt = abs();
      await victim.child.kill9();
    } else {
      for (let i = 0; i < instances.length; i++) {
        await sleep((SECONDS * 1000) / 4);
        await instances[i]?.child.stop();
        instances[i] = await startInstance(env);
      }
    }
    const { rejectAt, answered, all } = await load;
    await waitForPosts(emulator, rejectAt.size, 20_000);
    await sleep(LOAD_WINDOW_MS);
    const collected = await emulator.collect();
    const posts = new Map<string, number[]>();
    collected.callIds.forEach((callId, i) => {
      const at = (collected.receivedAbs[i] ?? 0) - offsetMs;
      posts.set(callId, [...(posts.get(callId) ?? []), at]);
    });
    const around = [...rejectAt].filter(
      ([callId, at]) =>
        victimPartitions.has(partitionOf(callId, PARTITIONS)) && Math.abs(at - killedAt) <= 2_000,
    );
    const failover = around.map(
      ([callId, at]) => Math.min(...(posts.get(callId) ?? [Number.NaN])) - at,
    );
    const sorted = failover.filter(Number.isFinite).sort((a, b) => a - b);
    return {
      run: kind,
      calls: all.length,
      'calls lost (no final state)': all.filter((c) => !follow.finals.has(c)).length,
      'rejects never POSTed': [...rejectAt.keys()].filter((c) => !posts.has(c)).length,
      'rejects POSTed twice': [...posts.values()].filter((p) => p.length > 1).length,
      'answered calls POSTed': [...answered].filter((c) => posts.has(c)).length,
      'two final states': [...follow.finals.values()].filter((s) => s.size > 1).length,
      'dead instance’s rejects commanded ±2 s around the kill':
        kind === 'kill -9' ? around.length : '–',
      'their command → POST p50 (ms)': sorted.length
        ? round(sorted[Math.floor(sorted.length / 2)] ?? 0)
        : '–',
      'their command → POST max (ms)': sorted.length ? round(sorted.at(-1) ?? 0) : '–',
    };
  } finally {
    follow.stop();
    await Promise.all(instances.map(({ child }) => child.stop()));
    await removeBus(nc, prefix);
  }
}

export async function replicasBench(): Promise<Row[]> {
  const warning = checkBuilt();
  if (warning) process.stderr.write(`${warning}\n`);
  const emulator = await startEmulator();
  const rows: Row[] = [];
  const reference = process.env.REPLICAS_REFERENCE;
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url, noAsyncTraces: true });
  try {
    if (ONLY === 'failover') return await failover(emulator, rows);
    if (reference) rows.push(await burstThroughput(nats, emulator, nc, 'reference', 1, reference));
    for (const count of COUNTS) rows.push(await burstThroughput(nats, emulator, nc, 'this', count));
    if (reference) {
      rows.push(await burstThroughput(nats, emulator, nc, 'reference', 1, reference));
      rows.push(await burstThroughput(nats, emulator, nc, 'this', 1));
    }
  } finally {
    await nc.close();
    await nats.dispose();
  }
  if (ONLY === 'throughput') {
    await emulator.close();
    return rows;
  }
  return failover(emulator, rows);
}

async function failover(emulator: EmulatorHandle, rows: Row[]): Promise<Row[]> {
  const cluster = await startNatsCluster(3, { name: 'callgate-bench' });
  try {
    await cluster.ready();
    const cnc = await connect({ servers: cluster.url.split(','), noAsyncTraces: true });
    try {
      rows.push(await underLoad(cluster, emulator, cnc, 'kill -9'));
      rows.push(await underLoad(cluster, emulator, cnc, 'rolling restart'));
    } finally {
      await cnc.close();
    }
  } finally {
    await cluster.dispose();
    await emulator.close();
  }
  return rows;
}
