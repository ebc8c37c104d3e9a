import { execFileSync } from 'node:child_process';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { natsServerBinary } from '../../src/tools/nats-server.js';
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
  type Observed,
  observe,
  PIPELINE_NODE_FLAGS,
  pipelineFlags,
  round,
  rssMb,
  SERVICE_ENTRY,
  sleep,
  startChild,
  startEmulator,
  until,
  waitForPosts,
} from './procs.js';

/**
 * `npm run bench -- e2e`: the service end to end — NATS JetStream in, the
 * Graph emulator out — against a naive pipeline measured in the same run, plus
 * RSS with 100,000 calls ringing and recovery of 10,000 in-flight calls after
 * `kill -9`. Knobs (environment): E2E_RATE (1000), E2E_SECONDS (10),
 * E2E_MAX_CALLS (30000), E2E_WARMUP (3000), E2E_RINGING (100000),
 * E2E_INFLIGHT (10000), E2E_RECOVERY_WINDOW_MS (15000), E2E_ONLY (any of
 * fixed,max,rss,recovery), E2E_CPU_PROF (a directory: a CPU profile of every
 * service and naive process, written when it stops), E2E_TRACE=1 (the
 * service's /metrics every second on stderr), E2E_NODE_FLAGS (Node flags of both
 * pipelines' processes; default: none, as `npm start` runs it), E2E_HEAP_PROF (a
 * directory: an allocation profile of each measured window), E2E_SERVICE (the
 * cli.js of another build to measure, e.g. the previous commit's).
 */

type Row = Record<string, string | number>;
type Kind = 'service' | 'naive';

const RATE = num('E2E_RATE', 1_000);
const FIXED_SECONDS = num('E2E_SECONDS', 10);
const MAX_CALLS = num('E2E_MAX_CALLS', 30_000);
const WARMUP = num('E2E_WARMUP', 3_000);
const RINGING = num('E2E_RINGING', 100_000);
const INFLIGHT = num('E2E_INFLIGHT', 10_000);
const ANSWER_TIMEOUT_MS = 15_000;
/** A window no call reaches in these runs: to measure capacity without deadline pressure. */
const LONG_WINDOW_MS = 600_000;
const RECOVERY_WINDOW_MS = num('E2E_RECOVERY_WINDOW_MS', ANSWER_TIMEOUT_MS);
const ONLY = new Set(
  (process.env.E2E_ONLY ?? 'fixed,max,rss,recovery').split(',').map((s) => s.trim()),
);

const progress = (text: string) => process.stderr.write(`[e2e ${timeOfDay()}] ${text}\n`);
const timeOfDay = () => new Date().toISOString().slice(11, 19);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** A value from Prometheus text: `name{labels} value` (labels as written by prom-client). */
function metric(text: string, name: string, labels = ''): number | undefined {
  const key = labels ? `${name}{${labels}} ` : `${name} `;
  for (const line of text.split('\n')) {
    if (line.startsWith(key)) return Number(line.slice(key.length));
  }
  return undefined;
}

interface Bench {
  readonly nats: BenchNatsServer;
  readonly emulator: EmulatorHandle;
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
}

/** One pipeline under test, in a child process, on its own subject prefix. */
interface Pipeline {
  readonly kind: Kind;
  readonly prefix: string;
  readonly child: Child;
  /** The service's /metrics text (empty for the naive pipeline). */
  metrics(): Promise<string>;
}

async function startPipeline(
  bench: Bench,
  kind: Kind,
  prefix: string,
  answerTimeoutMs: number,
  /** Preload the observer (the loads whose allocation, collections and loop delay are reported). */
  observed = false,
): Promise<Pipeline> {
  const flags = pipelineFlags({ observed });
  const env = {
    NATS_URL: bench.nats.url,
    SUBJECT_PREFIX: prefix,
    NOTIFICATIONS_SUBJECT: `${prefix}.graph.notifications`,
    GRAPH_BASE_URL: bench.emulator.url,
    GRAPH_TOKEN: 'bench-token',
    ANSWER_TIMEOUT_MS: String(answerTimeoutMs),
    LOG_LEVEL: 'warn',
  };
  if (kind === 'naive') {
    let ready = false;
    const child = startChild(
      process.execPath,
      ['--import', 'tsx', ...flags, 'bench/e2e/naive.ts'],
      env,
      (line) => {
        if (line.trim() === 'ready') ready = true;
      },
    );
    await until(
      'the naive pipeline to be ready',
      () => {
        if (!child.isRunning()) throw new Error(`the naive pipeline exited:\n${child.output()}`);
        return ready ? true : undefined;
      },
      30_000,
      20,
    );
    return { kind, prefix, child, metrics: async () => '' };
  }
  const port = await freePort();
  const child = startChild(process.execPath, [...flags, SERVICE_ENTRY, 'serve'], {
    ...env,
    HTTP_PORT: String(port),
    HTTP_HOST: '127.0.0.1',
  });
  const base = `http://127.0.0.1:${port}`;
  await waitReady(child, base, 30_000);
  return {
    kind,
    prefix,
    child,
    async metrics() {
      const res = await httpGet(`${base}/metrics`, 10_000);
      return res.status === 200 ? res.body : '';
    },
  };
}

/** Poll /readyz every 10 ms; returns when it answered 200 (bench clock). */
async function waitReady(child: Child, base: string, timeoutMs: number): Promise<number> {
  return until(
    'the service to answer /readyz 200',
    async () => {
      if (!child.isRunning()) throw new Error(`the service exited:\n${child.output()}`);
      const res = await httpGet(`${base}/readyz`, 1_000);
      return res.status === 200 ? abs() : undefined;
    },
    timeoutMs,
    10,
  );
}

/** Stop a pipeline (SIGTERM, so a CPU profile is written) and drop its streams. */
async function stopPipeline(bench: Bench, pipeline: Pipeline): Promise<void> {
  await pipeline.child.stop();
  await dropStreams(bench, pipeline.prefix);
}

async function dropStreams(bench: Bench, prefix: string): Promise<void> {
  for (const stream of [`callgate-${prefix}`, `KV_callgate-${prefix}-calls`]) {
    await bench.jsm.streams.delete(stream).catch(() => false);
  }
}

/**
 * CPU ms of every process taking part, to split the cost of a call, and of
 * the whole machine, to see what else ran meanwhile (the machine is shared).
 */
function cpuSnapshot(bench: Bench, pipeline: Pipeline) {
  const own = process.cpuUsage();
  return {
    at: performance.now(),
    machine: machineBusyMs(),
    pipeline: cpuMs(pipeline.child.pid),
    nats: cpuMs(bench.nats.pid),
    emulator: cpuMs(bench.emulator.pid),
    driver: (own.user + own.system) / 1000,
  };
}

type CpuSnapshot = ReturnType<typeof cpuSnapshot>;

/** CPU µs per call of each process, and the other processes' load (cores) over the interval. */
function cpuPerCall(before: CpuSnapshot, after: CpuSnapshot, calls: number) {
  const d = (key: keyof CpuSnapshot) => after[key] - before[key];
  const ours = d('pipeline') + d('nats') + d('emulator') + d('driver');
  return {
    pipeline: round((d('pipeline') * 1000) / calls),
    nats: round((d('nats') * 1000) / calls),
    emulator: round((d('emulator') * 1000) / calls),
    driver: round((d('driver') * 1000) / calls),
    busyCores: round(d('machine') / d('at'), 2),
    otherCores: round(Math.max(0, d('machine') - ours) / d('at'), 2),
  };
}

/** For the service: wait until its /metrics counts `n` rejected calls in all (bounded). */
async function rejectedCount(pipeline: Pipeline, n: number, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  let count = 0;
  while (Date.now() < end) {
    const text = await pipeline.metrics();
    count = metric(text, 'callgate_calls_total', 'state="rejected"') ?? Number.NaN;
    if (count >= n || metric(text, 'callgate_live_calls') === 0) break;
    await sleep(200);
  }
  return count;
}

/**
 * Messages of the service's stream not yet acknowledged, over all its
 * consumers (one, or one per partition on NATS 2.10+; the router's are
 * counted too).
 */
async function unsettled(bench: Bench, prefix: string): Promise<number> {
  let total = 0;
  for await (const info of bench.jsm.consumers.list(`callgate-${prefix}`)) {
    total += info.num_pending + info.num_ack_pending;
  }
  return total;
}

/** For the service: all `messages` consumed and no call left live (so no POST is coming). */
function settledAfter(pipeline: Pipeline, messages: number): (() => Promise<boolean>) | undefined {
  if (pipeline.kind !== 'service') return undefined;
  return async () => {
    const text = await pipeline.metrics();
    return (
      (metric(text, 'callgate_messages_total') ?? 0) >= messages &&
      metric(text, 'callgate_live_calls') === 0
    );
  };
}

/** `E2E_TRACE=1`: a line of the service's /metrics every second on stderr, while it runs. */
function traceMetrics(pipeline: Pipeline): { stop(): void } {
  if (!process.env.E2E_TRACE || pipeline.kind !== 'service') return { stop() {} };
  const started = performance.now();
  const sum = (text: string, name: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(name))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  const timer = setInterval(() => {
    void pipeline.metrics().then((text) => {
      const field = (label: string, name: string, labels = '') =>
        `${label} ${metric(text, name, labels) ?? 0}`;
      progress(
        [
          `t+${((performance.now() - started) / 1000).toFixed(1)}s`,
          field('msgs', 'callgate_messages_total'),
          field('live', 'callgate_live_calls'),
          field('rejected', 'callgate_calls_total', 'state="rejected"'),
          field('timedOut', 'callgate_calls_total', 'state="timedOut"'),
          field('failed', 'callgate_calls_total', 'state="failed"'),
          field('inFlight', 'callgate_reject_requests_in_flight'),
          field('persistFail', 'callgate_persist_failures_total'),
          field('redelivered', 'callgate_redelivered_events_total'),
          `graph ${sum(text, 'callgate_graph_request_seconds_count')}`,
          `lag ${metric(text, 'callgate_consumer_lag_messages') ?? 0}`,
          `rss ${Math.round(rssMb(pipeline.child.pid).rss)}MB`,
        ].join(' '),
      );
    });
  }, 1_000);
  return { stop: () => clearInterval(timer) };
}

/** Warm the pipeline up (JIT, connections): WARMUP calls at full speed, then reset the emulator. */
async function warmUp(bench: Bench, pipeline: Pipeline): Promise<void> {
  const driver = createDriver(jetstream(bench.nc), pipeline.prefix);
  await bench.emulator.reset();
  await driver.burst(ids('warm', WARMUP));
  await driver.drain();
  const got = await waitForPosts(bench.emulator, WARMUP, 20_000);
  if (got < WARMUP) throw new Error(`warm-up: only ${got} of ${WARMUP} POSTs arrived`);
  if (pipeline.kind === 'service') await rejectedCount(pipeline, WARMUP, 20_000);
  await sleep(500);
  await bench.emulator.reset();
}

interface LoadResult {
  readonly windowMs: number;
  readonly calls: number;
  readonly posts: number;
  readonly latencies: number[];
  readonly publishSeconds: number;
  /** First publish → last POST received (s). */
  readonly spanSeconds: number;
  /** Calls whose reject reached the emulator. */
  readonly completed: number;
  readonly statuses: Record<string, number>;
  readonly rejected: number | undefined;
  readonly cpu: ReturnType<typeof cpuPerCall>;
  readonly failures: number;
  readonly inside: Inside;
  /** The service's full collections after bursts so far (count / pause ms); none for the naive pipeline. */
  readonly collections: string;
}

/** What the observer inside the pipeline saw during the measured load. */
interface Inside {
  /** Bytes allocated on the V8 heap per call. */
  readonly allocatedPerCall: number;
  readonly scavenges: number;
  readonly collections: number;
  readonly pauseMs: number;
  /** Pauses of 10 ms or more. */
  readonly over10ms: number;
  readonly maxPauseMs: number;
  /** Per scavenge: bytes kept young and bytes promoted (what a scavenge copies). */
  readonly survivedPerScavenge: number;
  readonly promotedPerScavenge: number;
  readonly loopDelayMs: Observed['loopDelayMs'];
}

function inside(before: Observed, after: Observed, calls: number): Inside {
  return {
    allocatedPerCall: (after.allocated - before.allocated) / calls,
    scavenges: after.scavenges - before.scavenges,
    collections: after.collections - before.collections,
    pauseMs: (after.pauseUs - before.pauseUs) / 1000,
    over10ms: after.over10ms - before.over10ms,
    maxPauseMs: after.windowMaxUs / 1000,
    survivedPerScavenge:
      (after.survived - before.survived) / Math.max(1, after.scavenges - before.scavenges),
    promotedPerScavenge:
      (after.promoted - before.promoted) / Math.max(1, after.scavenges - before.scavenges),
    loopDelayMs: after.loopDelayMs,
  };
}

/** One measured load on one fresh pipeline: paced (`rate`) or at full speed. */
async function measureLoad(
  bench: Bench,
  kind: Kind,
  scenario: 'fixed' | 'max',
  tag: string,
  windowMs = ANSWER_TIMEOUT_MS,
): Promise<LoadResult> {
  const prefix = `e2e${tag}`;
  const pipeline = await startPipeline(bench, kind, prefix, windowMs, true);
  try {
    await warmUp(bench, pipeline);
    const calls = scenario === 'fixed' ? RATE * FIXED_SECONDS : MAX_CALLS;
    const { offsetMs } = await bench.emulator.calibrate();
    const driver = createDriver(jetstream(bench.nc), prefix);
    const callIds = ids(`${tag}c`, calls);
    progress(
      `${kind} ${scenario}: ${calls} calls${scenario === 'fixed' ? ` at ${RATE}/s` : ''}, window ${windowMs / 1000} s`,
    );
    const trace = traceMetrics(pipeline);
    const observedBefore = await observe(pipeline.child);
    const before = cpuSnapshot(bench, pipeline);
    const started = abs();
    if (scenario === 'fixed') await driver.paced(callIds, RATE);
    else await driver.burst(callIds);
    const published = abs();
    await driver.drain();
    const posts = await waitForPosts(
      bench.emulator,
      calls,
      20_000,
      settledAfter(pipeline, 2 * (WARMUP + calls)),
    );
    const after = cpuSnapshot(bench, pipeline);
    const observedAfter = await observe(pipeline.child);
    trace.stop();
    const collected = await bench.emulator.collect();
    const latencies: number[] = [];
    let lastPost = Number.NEGATIVE_INFINITY;
    const statuses: Record<string, number> = {};
    for (let i = 0; i < collected.callIds.length; i++) {
      const callId = collected.callIds[i] ?? '';
      const at = (collected.receivedAbs[i] ?? Number.NaN) - offsetMs;
      const status = String(collected.statuses[i] ?? 'pending');
      statuses[status] = (statuses[status] ?? 0) + 1;
      const sent = driver.rejectAt.get(callId);
      if (sent === undefined) continue;
      latencies.push(at - sent);
      driver.rejectAt.delete(callId);
      if (at > lastPost) lastPost = at;
    }
    latencies.sort((a, b) => a - b);
    const rejected =
      kind === 'service' ? await rejectedCount(pipeline, WARMUP + calls, 30_000) : undefined;
    return {
      windowMs,
      calls,
      posts,
      latencies,
      publishSeconds: (published - started) / 1000,
      spanSeconds: (lastPost - driver.firstAt()) / 1000,
      completed: latencies.length,
      statuses,
      rejected: rejected === undefined ? undefined : rejected - WARMUP,
      cpu: cpuPerCall(before, after, calls),
      failures: driver.failures(),
      inside: inside(observedBefore, observedAfter, calls),
      collections: kind === 'service' ? await collections(pipeline) : '-',
    };
  } finally {
    await stopPipeline(bench, pipeline);
  }
}

function completion(kind: Kind, result: LoadResult): string {
  const accepted = result.statuses['202'] ?? 0;
  if (kind === 'service') {
    const ok = result.rejected === result.calls;
    return `${ok ? 'yes' : 'NO'}: ${result.rejected} rejected, ${accepted} × 202`;
  }
  return `${accepted === result.calls ? 'yes' : 'NO'}: ${accepted} × 202`;
}

/** Other processes using more than this many cores during a load: the run is flagged busy. */
const BUSY_OTHER_CORES = 0.25;

function cpuColumns(result: LoadResult): Row {
  const c = result.cpu;
  return {
    'CPU µs/call: pipeline': c.pipeline,
    'nats-server': c.nats,
    emulator: c.emulator,
    driver: c.driver,
    'machine busy (cores of 2)': c.busyCores,
    'of which other processes': c.otherCores,
  };
}

/** What the pipeline's own process saw meanwhile, and whether the machine was doing other work. */
function insideColumns(result: LoadResult): Row {
  const i = result.inside;
  return {
    'allocated KB/call': round(i.allocatedPerCall / 1024, 1),
    'GC: scavenges / others / pause total ms / ≥ 10 ms / max ms': `${i.scavenges} / ${i.collections - i.scavenges} / ${round(i.pauseMs)} / ${i.over10ms} / ${round(i.maxPauseMs, 1)}`,
    'per scavenge: kept young / promoted (KB)': `${round(i.survivedPerScavenge / 1024)} / ${round(i.promotedPerScavenge / 1024)}`,
    'event-loop delay p50 / p99 / max (ms)': `${i.loopDelayMs.p50} / ${i.loopDelayMs.p99} / ${i.loopDelayMs.max}`,
    'quiet-time full collections so far (count / pause ms)': result.collections,
    machine: busyFlag(result),
  };
}

function busyFlag(result: LoadResult): string {
  const other = result.cpu.otherCores;
  return other > BUSY_OTHER_CORES ? `BUSY: other processes used ${other} cores` : 'quiet';
}

function fixedRow(kind: Kind, r: LoadResult): Row {
  const ms = (p: number) => round(percentile(r.latencies, p), 2);
  return {
    [`fixed rate ${RATE} calls/s, ${FIXED_SECONDS} s`]:
      kind === 'service' ? 'service (persistence on)' : 'naive pipeline',
    calls: r.calls,
    'offered calls/s': round(r.calls / r.publishSeconds),
    'POSTs received': r.posts,
    'every call done': completion(kind, r),
    'reject published → POST p50 (ms)': ms(50),
    p90: ms(90),
    p99: ms(99),
    max: round(r.latencies.at(-1) ?? Number.NaN, 1),
    ...insideColumns(r),
    ...cpuColumns(r),
  };
}

function maxRow(kind: Kind, r: LoadResult): Row {
  return {
    [`maximum, ${MAX_CALLS} calls at once`]: `${kind === 'service' ? 'service (persistence on)' : 'naive pipeline'}, ${r.windowMs / 1000} s window`,
    'publish (s)': round(r.publishSeconds, 2),
    'first publish → last POST (s)': round(r.spanSeconds, 2),
    'calls/s (rejects POSTed / span)': round(r.completed / r.spanSeconds),
    'every call done': completion(kind, r),
    'latency p50 (ms)': round(percentile(r.latencies, 50), 1),
    p99: round(percentile(r.latencies, 99), 1),
    'publish failures': r.failures,
    ...insideColumns(r),
    ...cpuColumns(r),
  };
}

/** The service's full collections after bursts (src/app/heap.ts), from its /metrics. */
async function collections(pipeline: Pipeline): Promise<string> {
  const text = await pipeline.metrics();
  const count = metric(text, 'callgate_heap_collection_seconds_count') ?? 0;
  const seconds = metric(text, 'callgate_heap_collection_seconds_sum') ?? 0;
  return `${count} / ${round(seconds * 1000)}`;
}

/** 100,000 `call.incoming` and no decision: RSS of the service once all are live. */
async function ringingRss(bench: Bench): Promise<Row> {
  const prefix = 'e2erss';
  const pipeline = await startPipeline(bench, 'service', prefix, 600_000);
  try {
    await sleep(1_000);
    const idle = rssMb(pipeline.child.pid);
    const driver = createDriver(jetstream(bench.nc), prefix);
    progress(`service rss: ${RINGING} calls ringing`);
    const trace = traceMetrics(pipeline);
    const started = abs();
    await driver.burst(ids('ring', RINGING), { incomingOnly: true });
    await driver.drain();
    const published = abs();
    const live = await until(
      `${RINGING} live calls on /metrics`,
      async () => {
        const value = metric(await pipeline.metrics(), 'callgate_live_calls') ?? 0;
        return value >= RINGING ? abs() : undefined;
      },
      300_000,
      250,
    );
    await until(
      'the consumer to have no pending or unacknowledged message',
      async () => ((await unsettled(bench, prefix)) === 0 ? true : undefined),
      120_000,
      250,
    );
    trace.stop();
    await sleep(2_000);
    const text = await pipeline.metrics();
    const mem = rssMb(pipeline.child.pid);
    const mb = (name: string) => round((metric(text, name) ?? Number.NaN) / 2 ** 20, 1);
    await sleep(10_000);
    const later = rssMb(pipeline.child.pid);
    return {
      'calls ringing (no decision, 600 s window)': RINGING,
      'live calls (/metrics)': metric(text, 'callgate_live_calls') ?? Number.NaN,
      'RSS idle (MB)': round(idle.rss, 1),
      'RSS ringing (MB)': round(mem.rss, 1),
      'RSS peak VmHWM (MB)': round(mem.peak, 1),
      'RSS 10 s later (MB)': round(later.rss, 1),
      'full collections since (count / pause ms)': await collections(pipeline),
      'V8 heap used / committed (MB)': `${mb('callgate_process_nodejs_heap_size_used_bytes')} / ${mb('callgate_process_nodejs_heap_size_total_bytes')}`,
      'external (MB)': mb('callgate_process_nodejs_external_memory_bytes'),
      'RSS bytes per call, 10 s later': round(((later.rss - idle.rss) * 2 ** 20) / RINGING),
      'publish (s)': round((published - started) / 1000, 2),
      'first publish → all live (s, ±0.25)': round((live - started) / 1000, 2),
    };
  } finally {
    await stopPipeline(bench, pipeline);
  }
}

/**
 * 10,000 calls with a reject in flight (the emulator holds every answer),
 * `kill -9`, then a new service process: time to /readyz 200 and to every
 * call final.
 */
async function recovery(bench: Bench): Promise<Row> {
  const prefix = 'e2erec';
  const windowMs = RECOVERY_WINDOW_MS;
  const env = (port: number) => ({
    NATS_URL: bench.nats.url,
    SUBJECT_PREFIX: prefix,
    NOTIFICATIONS_SUBJECT: `${prefix}.graph.notifications`,
    GRAPH_BASE_URL: bench.emulator.url,
    GRAPH_TOKEN: 'bench-token',
    ANSWER_TIMEOUT_MS: String(windowMs),
    LOG_LEVEL: 'warn',
    HTTP_PORT: String(port),
    HTTP_HOST: '127.0.0.1',
  });
  const first = await startPipeline(bench, 'service', prefix, windowMs);
  let second: Child | undefined;
  const subscription = bench.nc.subscribe(`${prefix}.lifecycle.>`);
  try {
    await bench.emulator.reset();
    await bench.emulator.setFault({ rate: 1, fault: { kind: 'slow', hold: true } });
    const driver = createDriver(jetstream(bench.nc), prefix);
    progress(
      `service recovery: ${INFLIGHT} calls with a reject in flight, then kill -9 (window ${windowMs / 1000} s)`,
    );
    const trace = traceMetrics(first);
    const started = abs();
    await driver.burst(ids('rec', INFLIGHT));
    await driver.drain();
    // Every message applied and acknowledged: each call's `rejecting` snapshot is stored.
    await until(
      'every message acknowledged (all snapshots stored)',
      async () => ((await unsettled(bench, prefix)) === 0 ? true : undefined),
      120_000,
      100,
    );
    trace.stop();
    const text = await first.metrics();
    const inFlight = metric(text, 'callgate_reject_requests_in_flight') ?? Number.NaN;
    const finalBefore = ['rejected', 'failed', 'timedOut', 'ended', 'answered']
      .map((state) => `${metric(text, 'callgate_calls_total', `state="${state}"`) ?? 0} ${state}`)
      .filter((entry) => !entry.startsWith('0 '))
      .join(', ');
    const storedAfter = (abs() - started) / 1000;
    const held = (await bench.emulator.count()).held;
    await first.child.kill9();
    const killedAt = abs();
    const requestsBefore = (await bench.emulator.count()).requests;
    // Re-sent requests are answered now (404 for the calls Graph counted already).
    await bench.emulator.clearFaults();

    const finals = new Map<string, string>();
    let allFinalAt = Number.NaN;
    void (async () => {
      for await (const msg of subscription) {
        const record = msg.json<{ callId: string; state: string; refused?: unknown }>();
        if (record.refused || record.state === 'ringing' || record.state === 'rejecting') continue;
        finals.set(record.callId, record.state);
        if (finals.size === INFLIGHT && Number.isNaN(allFinalAt)) allFinalAt = abs();
      }
    })();

    const port = await freePort();
    const child = startChild(
      process.execPath,
      [...pipelineFlags(), SERVICE_ENTRY, 'serve'],
      env(port),
    );
    second = child;
    const readyAt = await waitReady(child, `http://127.0.0.1:${port}`, 120_000);
    const finalBy = Math.max(started + windowMs, abs()) + 30_000;
    while (Number.isNaN(allFinalAt) && abs() < finalBy) {
      if (!child.isRunning()) throw new Error(`the service exited:\n${child.output()}`);
      await sleep(10);
    }
    const states: Record<string, number> = {};
    for (const state of finals.values()) states[state] = (states[state] ?? 0) + 1;
    const after = await bench.emulator.collect(requestsBefore);
    const answers: Record<string, number> = {};
    for (const status of after.statuses) {
      const key = String(status ?? 'pending');
      answers[key] = (answers[key] ?? 0) + 1;
    }
    const list = (o: Record<string, number>) =>
      Object.entries(o)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'none';
    return {
      [`recovery after kill -9, ${windowMs / 1000} s window`]: `${INFLIGHT} calls`,
      'publish → all stored (s)': round(storedAfter, 2),
      'in flight at the kill': inFlight,
      'final before the kill': finalBefore || 'none',
      'held at the emulator': held,
      'spawn → /readyz 200 (s)': round((readyAt - child.spawnedAt) / 1000, 2),
      'spawn → every call final (s)': Number.isNaN(allFinalAt)
        ? `not within ${round((finalBy - child.spawnedAt) / 1000)} s (${finals.size} final)`
        : round((allFinalAt - child.spawnedAt) / 1000, 2),
      'first publish → every call final (s)': Number.isNaN(allFinalAt)
        ? '-'
        : round((allFinalAt - started) / 1000, 2),
      'final states after restart': list(states),
      'answers after restart': list(answers),
      'kill → spawn (ms)': round(child.spawnedAt - killedAt),
    };
  } finally {
    subscription.unsubscribe();
    await second?.stop();
    await first.child.stop();
    await dropStreams(bench, prefix);
  }
}

function natsVersion(): string {
  try {
    return execFileSync(natsServerBinary(), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

const yesNo = (ok: boolean) => (ok ? 'met' : 'MISSED');

interface Measured {
  readonly fixedService: LoadResult | undefined;
  readonly fixedNaive: LoadResult | undefined;
  readonly maxService: LoadResult | undefined;
  readonly maxNaive: LoadResult | undefined;
  readonly rss: Row | undefined;
  readonly rec: Row | undefined;
}

/** Each goal with its figure beside the reference measured in the same run. */
function goalsRow(m: Measured): Row {
  const goals: Row = { goals: 'measured, against the naive pipeline of this run (goal)' };
  const rate = (r: LoadResult) => r.completed / r.spanSeconds;
  if (m.maxService && m.maxNaive) {
    const ratio = rate(m.maxService) / rate(m.maxNaive);
    const done = m.maxService.rejected === m.maxService.calls;
    goals['throughput ≥ 0.8 × naive'] =
      `${round(rate(m.maxService))} / ${round(rate(m.maxNaive))} calls/s = ${round(ratio, 2)}${done ? '' : ` (${m.maxService.rejected} of ${m.maxService.calls} rejected)`}: ${yesNo(ratio >= 0.8 && done)}`;
  }
  if (m.fixedService && m.fixedNaive) {
    const at = (r: LoadResult, p: number) => percentile(r.latencies, p);
    const p50 = at(m.fixedService, 50) - at(m.fixedNaive, 50);
    const p99 = at(m.fixedService, 99) - at(m.fixedNaive, 99);
    goals[`p50 ≤ naive + 2 ms at ${RATE}/s`] =
      `${round(at(m.fixedService, 50), 2)} vs ${round(at(m.fixedNaive, 50), 2)} ms (+${round(p50, 2)}): ${yesNo(p50 <= 2)}`;
    goals[`p99 ≤ naive + 10 ms at ${RATE}/s`] =
      `${round(at(m.fixedService, 99), 1)} vs ${round(at(m.fixedNaive, 99), 1)} ms (+${round(p99, 1)}): ${yesNo(p99 <= 10)}`;
    const alloc = m.fixedService.inside.allocatedPerCall / m.fixedNaive.inside.allocatedPerCall;
    goals['allocation per call ≤ 2 × naive'] =
      `${round(m.fixedService.inside.allocatedPerCall / 1024, 1)} vs ${round(m.fixedNaive.inside.allocatedPerCall / 1024, 1)} KB = ${round(alloc, 2)}×: ${yesNo(alloc <= 2)}`;
    const busy = [m.fixedService, m.fixedNaive].filter((r) => busyFlag(r) !== 'quiet');
    if (busy.length > 0)
      goals['latency measured on a busy machine'] = busy.map(busyFlag).join('; ');
  }
  if (m.rss) {
    // Once the service has gone quiet and collected what the burst left (src/app/heap.ts).
    const perCall = Number(m.rss['RSS bytes per call, 10 s later']);
    goals[`≤ 2 KB RSS per ringing call, ${RINGING} ringing`] =
      `${perCall} B: ${yesNo(perCall <= 2048)}`;
  }
  if (m.rec) {
    const ready = m.rec['spawn → /readyz 200 (s)'];
    goals[`ready ≤ 2 s after a restart with ${INFLIGHT} stored calls`] =
      `${ready} s (every call final after ${m.rec['spawn → every call final (s)']} s): ${yesNo(typeof ready === 'number' && ready <= 2)}`;
  }
  return goals;
}

export async function e2eBench(): Promise<Row[]> {
  const warning = checkBuilt();
  if (warning) process.stderr.write(`${warning}\n`);
  const rows: Row[] = [];
  const errors: string[] = [];
  let nats: BenchNatsServer | undefined;
  let emulator: EmulatorHandle | undefined;
  let nc: NatsConnection | undefined;
  const goals: Row = {};
  try {
    nats = await startNatsServer();
    emulator = await startEmulator();
    // No async traces: every JetStream publish would build two Errors with stacks for nothing.
    nc = await connect({ servers: nats.url, name: 'callgate-bench-driver', noAsyncTraces: true });
    const bench: Bench = { nats, emulator, nc, jsm: await jetstreamManager(nc) };
    const clock = await emulator.calibrate();
    const idleFrom = { busy: machineBusyMs(), at: performance.now() };
    await sleep(2_000);
    const busyBefore = (machineBusyMs() - idleFrom.busy) / (performance.now() - idleFrom.at);
    rows.push({
      setup: 'every process on this machine',
      'nats-server': `${natsVersion()}, fresh, file store in a temp dir`,
      'service / naive pipeline': `child processes: ${['node', ...PIPELINE_NODE_FLAGS, 'dist/src/cli.js serve'].join(' ')} / ${['node', ...PIPELINE_NODE_FLAGS, '--import tsx bench/e2e/naive.ts'].join(' ')}`,
      'Graph emulator': 'a child process of its own',
      driver: 'the bench process: JetStream publish, up to 4,000 awaiting PubAck',
      'emulator − bench clock (ms)': round(clock.offsetMs, 3),
      'calibration RTT (ms)': round(clock.rttMs, 3),
      'machine busy before the run (cores of 2)': round(busyBefore, 2),
    });
    if (busyBefore > 0.2) {
      progress(
        `warning: the machine is already busy (${round(busyBefore, 2)} cores) before the run`,
      );
    }
    const attempt = async <T>(name: string, run: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await run();
      } catch (error) {
        const message = `${name}: ${error instanceof Error ? error.message : String(error)}`;
        progress(`FAILED ${message}`);
        errors.push(message);
        return undefined;
      }
    };

    let fixedService: LoadResult | undefined;
    let fixedNaive: LoadResult | undefined;
    let maxService: LoadResult | undefined;
    let maxNaive: LoadResult | undefined;
    let maxLong: LoadResult | undefined;
    if (ONLY.has('fixed')) {
      fixedService = await attempt('fixed/service', () =>
        measureLoad(bench, 'service', 'fixed', 'fs'),
      );
      fixedNaive = await attempt('fixed/naive', () => measureLoad(bench, 'naive', 'fixed', 'fn'));
      if (fixedService) rows.push(fixedRow('service', fixedService));
      if (fixedNaive) rows.push(fixedRow('naive', fixedNaive));
    }
    if (ONLY.has('max')) {
      maxService = await attempt('max/service', () => measureLoad(bench, 'service', 'max', 'ms'));
      maxNaive = await attempt('max/naive', () => measureLoad(bench, 'naive', 'max', 'mn'));
      // The same burst with a window no call reaches: capacity without deadline pressure.
      maxLong = await attempt('max/service, long window', () =>
        measureLoad(bench, 'service', 'max', 'ml', LONG_WINDOW_MS),
      );
      if (maxService) rows.push(maxRow('service', maxService));
      if (maxLong) rows.push(maxRow('service', maxLong));
      if (maxNaive) rows.push(maxRow('naive', maxNaive));
    }
    const rate = (r: LoadResult | undefined) => r && r.completed / r.spanSeconds;
    const serviceRate = rate(maxService);
    const longRate = rate(maxLong);
    const naiveRate = rate(maxNaive);
    if (naiveRate !== undefined && (serviceRate !== undefined || longRate !== undefined)) {
      const ratio = (r: number | undefined) =>
        r === undefined ? '-' : `${round(r)} (${round((100 * r) / naiveRate)} %)`;
      rows.push({
        'maximum calls/s, same run': `naive: ${round(naiveRate)}`,
        [`service, ${ANSWER_TIMEOUT_MS / 1000} s window (% of naive)`]: ratio(serviceRate),
        [`service, ${LONG_WINDOW_MS / 1000} s window (% of naive)`]: ratio(longRate),
      });
    }
    const rss = ONLY.has('rss') ? await attempt('rss', () => ringingRss(bench)) : undefined;
    if (rss) rows.push(rss);
    const rec = ONLY.has('recovery') ? await attempt('recovery', () => recovery(bench)) : undefined;
    if (rec) rows.push(rec);

    Object.assign(goals, goalsRow({ fixedService, fixedNaive, maxService, maxNaive, rss, rec }));
    if (errors.length > 0) goals.errors = errors.join('; ').replaceAll('\n', ' ').slice(0, 500);
    rows.push(goals);
  } finally {
    await nc?.close().catch(() => undefined);
    await emulator?.close();
    await nats?.dispose();
  }
  if (errors.length > 0) process.exitCode = 1;
  return rows;
}
