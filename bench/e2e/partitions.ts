import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type Instance, measureBurst, removeBus, startInstance } from './burst.js';
import { type BenchNatsServer, startNatsServer } from './nats-server.js';
import { checkBuilt, type EmulatorHandle, httpGet, num, startEmulator } from './procs.js';

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

async function startInstances(
  nats: BenchNatsServer,
  emulator: EmulatorHandle,
  prefix: string,
  count: number,
): Promise<Instance[]> {
  const instances: Instance[] = [];
  for (let index = 0; index < count; index++) {
    instances.push(
      await startInstance({
        NATS_URL: nats.url,
        SUBJECT_PREFIX: prefix,
        NOTIFICATIONS_SUBJECT: `${prefix}.graph.notifications`,
        GRAPH_BASE_URL: emulator.url,
        GRAPH_TOKEN: 'bench-token',
        ANSWER_TIMEOUT_MS: String(WINDOW_MS),
        ...(count > 1 && { PARTITIONS: String(count), PARTITION: String(index) }),
      }),
    );
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
  try {
    progress(`${count} instance(s): ${CALLS} calls at once`);
    const burst = await measureBurst({
      nats,
      emulator,
      nc,
      prefix,
      instances,
      calls: CALLS,
      warmup: WARMUP,
    });
    const rejected = (await rejectedTotal(instances)) - WARMUP;
    return {
      instances: count > 1 ? `${count} (PARTITIONS=${count}; partition 0 also routes)` : '1',
      calls: CALLS,
      'POSTs received': burst.posts,
      rejected,
      'first publish → last POST (s)': burst.seconds,
      'calls/s': burst.callsPerSecond,
      'CPU µs/call: all instances': burst.cpuPerCall.reduce((a, b) => a + b, 0),
      'nats-server': burst.natsPerCall,
      'machine busy (cores of 2)': burst.busy,
    };
  } finally {
    await Promise.all(instances.map(({ child }) => child.stop()));
    await removeBus(nc, prefix);
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
