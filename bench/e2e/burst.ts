import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createDriver } from './driver.js';
import { type BenchNatsServer, freePort } from './nats-server.js';
import {
  abs,
  type Child,
  cpuMs,
  type EmulatorHandle,
  httpGet,
  ids,
  machineBusyMs,
  pipelineFlags,
  round,
  SERVICE_ENTRY,
  sleep,
  startChild,
  until,
  waitForPosts,
} from './procs.js';

/** Delete the stream and the buckets the service made for `prefix`. */
export async function removeBus(nc: NatsConnection, prefix: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const stream of [
    `callgate-${prefix}`,
    `KV_callgate-${prefix}-calls`,
    `KV_callgate-${prefix}-owners`,
  ]) {
    await jsm.streams.delete(stream).catch(() => false);
  }
}

/** One `callgate serve` child and its HTTP base URL. */
export interface Instance {
  readonly child: Child;
  readonly base: string;
}

/** Start `callgate serve` (the build at `entry`) with `env`; resolves once `/readyz` answers 200. */
export async function startInstance(
  env: Record<string, string>,
  entry = SERVICE_ENTRY,
): Promise<Instance> {
  const port = await freePort();
  const child = startChild(process.execPath, [...pipelineFlags(), entry, 'serve'], {
    LOG_LEVEL: 'warn',
    ...env,
    HTTP_PORT: String(port),
    HTTP_HOST: '127.0.0.1',
  });
  const base = `http://127.0.0.1:${port}`;
  await until(
    'an instance to answer /readyz 200',
    async () => {
      if (!child.isRunning()) throw new Error(`an instance exited:\n${child.output()}`);
      return (await httpGet(`${base}/readyz`, 1_000)).status === 200 ? true : undefined;
    },
    60_000,
    20,
  );
  return { child, base };
}

/** What one burst through some instances gave. */
export interface BurstResult {
  readonly posts: number;
  /** From the first publish to the last POST (s). */
  readonly seconds: number;
  readonly callsPerSecond: number;
  /** CPU per call of each instance (µs). */
  readonly cpuPerCall: number[];
  readonly natsPerCall: number;
  /** Cores of the machine busy during the burst. */
  readonly busy: number;
}

/**
 * Warm the instances up with `warmup` calls, then publish `calls` calls
 * (incoming and reject each) at once, and measure until Graph has every
 * reject: calls a second from the first publish to the last POST, and the
 * CPU the instances and nats-server used per call.
 */
export async function measureBurst(options: {
  readonly nats: BenchNatsServer;
  readonly emulator: EmulatorHandle;
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly instances: readonly Instance[];
  readonly calls: number;
  readonly warmup: number;
}): Promise<BurstResult> {
  const { nats, emulator, instances, calls, warmup } = options;
  const driver = createDriver(jetstream(options.nc), options.prefix);
  await emulator.reset();
  await driver.burst(ids('warm', warmup));
  await driver.drain();
  if ((await waitForPosts(emulator, warmup, 20_000)) < warmup) throw new Error('warm-up stalled');
  await sleep(500);
  await emulator.reset();
  const { offsetMs } = await emulator.calibrate();
  const cpu = () => ({
    services: instances.map(({ child }) => cpuMs(child.pid)),
    nats: cpuMs(nats.pid),
    machine: machineBusyMs(),
    at: performance.now(),
  });
  const before = cpu();
  const started = abs();
  await driver.burst(ids('c', calls));
  await driver.drain();
  const posts = await waitForPosts(emulator, calls, 20_000);
  const after = cpu();
  const collected = await emulator.collect();
  const lastPost = Math.max(...collected.receivedAbs.map((at) => at - offsetMs));
  const seconds = (lastPost - started) / 1000;
  return {
    posts,
    seconds: round(seconds, 2),
    callsPerSecond: round(calls / seconds),
    cpuPerCall: after.services.map((ms, i) =>
      round(((ms - (before.services[i] ?? 0)) * 1000) / calls),
    ),
    natsPerCall: round(((after.nats - before.nats) * 1000) / calls),
    busy: round((after.machine - before.machine) / (after.at - before.at), 2),
  };
}
