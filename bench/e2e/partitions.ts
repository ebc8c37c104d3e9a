import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createDriver } from './driver.js';
import { type BenchNatsServer, freePort, startNatsServer } from './nats-server.js';
import {
  abs,
  type Child,
  checkBuilt,
  cpuMs,
  type EmulatorHandle,
  httpGet,
  ids,
  machineBusyMs,
  num,
  pipelineFlags,
  round,
  SERVICE_ENTRY,
  sleep,
  startChild,
  startEmulator,
  until,
  waitForPosts,
} from './procs.js';

/**
 * `npm run bench -- partitions`: the same burst through one instance and
 * through PARTITIONS instances on one stream (partition 0 also routing), all
 * on this machine. Knobs: PART_COUNTS (instance counts, default "1,2"),
 * PART_CALLS (20000), PART_WARMUP (2000). A 600 s window, so no call times out:
 * the figure is capacity.
 */

type Row = Record<string, string | number>;

const CALLS = num('PART_CALLS', 20_000);
const WARMUP = num('PART_WARMUP', 2_000);
const COUNTS = (process.env.PART_COUNTS ?? '1,2').split(',').map((n) => Number(n.trim()));
const WINDOW_MS = 600_000;

const progress = (text: string) =>
  process.stderr.write(`[partitions ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

interface Instance {
  readonly child: Child;
  readonly base: string;
}

async function startInstances(
  nats: BenchNatsServer,
  emulator: EmulatorHandle,
  prefix: string,
  count: number,
): Promise<Instance[]> {
  const instances: Instance[] = [];
  for (let index = 0; index < count; index++) {
    const port = await freePort();
    const child = startChild(process.execPath, [...pipelineFlags(), SERVICE_ENTRY, 'serve'], {
      NATS_URL: nats.url,
      SUBJECT_PREFIX: prefix,
      NOTIFICATIONS_SUBJECT: `${prefix}.graph.notifications`,
      GRAPH_BASE_URL: emulator.url,
      GRAPH_TOKEN: 'bench-token',
      ANSWER_TIMEOUT_MS: String(WINDOW_MS),
      LOG_LEVEL: 'warn',
      HTTP_PORT: String(port),
      HTTP_HOST: '127.0.0.1',
      ...(count > 1 && { PARTITIONS: String(count), PARTITION: String(index) }),
    });
    const base = `http://127.0.0.1:${port}`;
    await until(
      `instance ${index} to answer /readyz 200`,
      async () => {
        if (!child.isRunning()) throw new Error(`instance ${index} exited:\n${child.output()}`);
        return (await httpGet(`${base}/readyz`, 1_000)).status === 200 ? true : undefined;
      },
      30_000,
      20,
    );
    instances.push({ child, base });
  }
  return instances;
}

/** Rejected calls counted by every instance together. */
async function rejectedTotal(instances: Instance[]): Promise<number> {
  let total = 0;
  for (const { base } of instances) {
    const { body } = await httpGet(`${base}/metrics`, 10_000);
    const line = body
      .split('\n')
      .find((l) => l.startsWith('callgate_calls_total{state="rejected"}'));
    total += line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  }
  return total;
}

async function measure(
  nats: BenchNatsServer,
  emulator: EmulatorHandle,
  nc: NatsConnection,
  count: number,
): Promise<Row> {
  const prefix = `part${count}`;
  const instances = await startInstances(nats, emulator, prefix, count);
  const jsm = await jetstreamManager(nc);
  try {
    const driver = createDriver(jetstream(nc), prefix);
    await emulator.reset();
    await driver.burst(ids('warm', WARMUP));
    await driver.drain();
    if ((await waitForPosts(emulator, WARMUP, 20_000)) < WARMUP) throw new Error('warm-up stalled');
    await sleep(500);
    await emulator.reset();
    const { offsetMs } = await emulator.calibrate();
    progress(`${count} instance(s): ${CALLS} calls at once`);
    const cpu = () => ({
      services: instances.reduce((sum, { child }) => sum + cpuMs(child.pid), 0),
      nats: cpuMs(nats.pid),
      machine: machineBusyMs(),
      at: performance.now(),
    });
    const before = cpu();
    const started = abs();
    await driver.burst(ids('c', CALLS));
    await driver.drain();
    const posts = await waitForPosts(emulator, CALLS, 20_000);
    const after = cpu();
    const collected = await emulator.collect();
    const lastPost = Math.max(...collected.receivedAbs.map((at) => at - offsetMs));
    const rejected = (await rejectedTotal(instances)) - WARMUP;
    const span = (lastPost - started) / 1000;
    return {
      instances: count > 1 ? `${count} (PARTITIONS=${count}; partition 0 also routes)` : '1',
      calls: CALLS,
      'POSTs received': posts,
      rejected,
      'first publish → last POST (s)': round(span, 2),
      'calls/s': round(CALLS / span),
      'CPU µs/call: all instances': round(((after.services - before.services) * 1000) / CALLS),
      'nats-server': round(((after.nats - before.nats) * 1000) / CALLS),
      'machine busy (cores of 2)': round(
        (after.machine - before.machine) / (after.at - before.at),
        2,
      ),
    };
  } finally {
    await Promise.all(instances.map(({ child }) => child.stop()));
    for (const stream of [`callgate-${prefix}`, `KV_callgate-${prefix}-calls`]) {
      await jsm.streams.delete(stream).catch(() => false);
    }
  }
}

export async function partitionsBench(): Promise<Row[]> {
  const warning = checkBuilt();
  if (warning) process.stderr.write(`${warning}\n`);
  const nats = await startNatsServer();
  const emulator = await startEmulator();
  const nc = await connect({ servers: nats.url, noAsyncTraces: true });
  try {
    const rows: Row[] = [];
    for (const count of COUNTS) rows.push(await measure(nats, emulator, nc, count));
    return rows;
  } finally {
    await nc.close();
    await emulator.close();
    await nats.dispose();
  }
}
