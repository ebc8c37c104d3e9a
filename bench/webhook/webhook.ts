import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Pool } from 'undici';
import { CONFIG_VARIABLES } from '../../src/config.js';
import { createGraphEmulator, type GraphEmulator } from '../../src/tools/emulator/emulator.js';
import { incomingCallBatch } from '../../src/tools/emulator/notifier.js';
import { type BenchNatsServer, freePort, startNatsServer } from '../e2e/nats-server.js';
import { checkBuilt, cpuMs, httpGet, SERVICE_ENTRY, sleep, track, until } from '../e2e/procs.js';
import { verifyCost } from './verify-cost.js';

/**
 * `npm run bench -- webhook`: the webhook's answer latency (request sent →
 * 202 received), through the real front door. A `nats-server`, the built
 * service as a child process (`node dist/src/cli.js serve`) with its webhook
 * verifying tokens against an in-process Graph emulator's keys, and signed
 * Graph incoming-call batches POSTed with undici over keep-alive connections:
 * at a fixed rate, then as fast as they are answered. Each 202 means the
 * batch was stored in JetStream (ack awaited) and its token verified.
 *
 * Every request carries the same token, as Graph puts one token on many
 * notifications: the service verifies it in full once and then finds it in
 * its cache of verified tokens. With WEBHOOK_REFERENCE=<another build's
 * dist/src/cli.js>, that build and this one are measured in turn (reference,
 * this, reference, this), each with a fresh nats-server, in one sitting.
 */

const APP_ID = 'bench-webhook-app';
const PREFIX = 'benchwebhook';
const RATE_PER_S = 500;
const SECONDS = 10;
const LOW_RATE_PER_S = 100;
const LOW_SECONDS = 5;
const WARMUP = 300;
const BURST = 3_000;
const BURST_IN_FLIGHT = 64;
const GOAL_P99_MS = 20;

type Row = Record<string, string | number>;

interface Sample {
  readonly ms: number;
  readonly status: number;
}

const round = (value: number, digits = 2) => Number(value.toFixed(digits));

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

function latencies(samples: readonly Sample[]) {
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
  return {
    'p50 (ms)': round(percentile(sorted, 50)),
    'p90 (ms)': round(percentile(sorted, 90)),
    'p99 (ms)': round(percentile(sorted, 99)),
    'max (ms)': round(sorted.at(-1) ?? Number.NaN),
  };
}

function statuses(samples: readonly Sample[]): string {
  const counts = new Map<number, number>();
  for (const s of samples) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
  return [...counts.entries()]
    .sort(([a], [b]) => a - b)
    .map(([status, n]) => `${status === 0 ? 'error' : status}: ${n}`)
    .join(', ');
}

function startService(entry: string, env: Record<string, string>): ChildProcess {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !CONFIG_VARIABLES.includes(key) && key !== 'WEBHOOK_REFERENCE',
    ),
  );
  const child = spawn(process.execPath, [entry, 'serve'], {
    env: { ...inherited, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  track(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 16_000) stderr += chunk.toString();
  });
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGKILL') {
      process.stderr.write(`callgate serve exited (${code ?? signal}):\n${stderr}\n`);
    }
  });
  return child;
}

export async function webhookBench(): Promise<Row[]> {
  if (!existsSync(SERVICE_ENTRY)) {
    throw new Error(
      `bench webhook runs the built service (${SERVICE_ENTRY}), which is missing: run \`npm run build\` first`,
    );
  }
  const stale = checkBuilt();
  if (stale) process.stderr.write(`${stale}\n`);
  const reference = process.env.WEBHOOK_REFERENCE;
  if (reference !== undefined && !existsSync(reference)) {
    throw new Error(`WEBHOOK_REFERENCE: ${reference} does not exist`);
  }
  const builds: [string, string][] = reference
    ? [
        ['reference', reference],
        ['this', SERVICE_ENTRY],
        ['reference', reference],
        ['this', SERVICE_ENTRY],
      ]
    : [['this', SERVICE_ENTRY]];

  const rows: Row[] = [await verifyCost()];
  const graph = await createGraphEmulator();
  try {
    for (const [label, entry] of builds) rows.push(...(await benchBuild(graph, label, entry)));
  } finally {
    await graph.close();
  }
  rows.push({
    setup:
      'nats-server + node dist/src/cli.js serve (webhook on) + this process (in-process emulator keys, undici Pool, keep-alive), loopback',
    'token alg': 'RS256, one token on every request (as Graph reuses its token)',
    ...(reference && { reference: reference }),
  });
  return rows;
}

/** One sitting of one build: a fresh nats-server and service, warm-up, 100/s, 500/s, burst. */
async function benchBuild(graph: GraphEmulator, build: string, entry: string): Promise<Row[]> {
  let nats: BenchNatsServer | undefined;
  let child: ChildProcess | undefined;
  let pool: Pool | undefined;
  try {
    nats = await startNatsServer();
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    child = await startReadyService(entry, serviceEnv(nats.url, graph, port), origin);
    const service = child;

    // One token for the whole run, as Graph reuses its token (5 min lifetime).
    const token = await graph.signNotificationToken({ appId: APP_ID });
    pool = new Pool(origin, {
      connections: BURST_IN_FLIGHT,
      pipelining: 1,
      keepAliveTimeout: 60_000,
    });
    const post = poster(pool, token);
    const bodies = bodiesFor(`${origin}/api/calling`);

    // Warm-up: connections, the service's key set, JIT.
    const warm = bodies(WARMUP);
    for (let i = 0; i < warm.length; i += 8) {
      await Promise.all(warm.slice(i, i + 8).map(post));
    }
    const cpu = () => cpuMs(service.pid ?? 0);
    const low = await fixedRate(post, bodies, cpu, LOW_RATE_PER_S, LOW_SECONDS);
    const main = await fixedRate(post, bodies, cpu, RATE_PER_S, SECONDS);
    const burst = await burstOf(post, bodies(BURST), cpu);

    // Every 202 is a batch stored in JetStream: count them.
    const nc = await connect({ servers: nats.url });
    const subject = `${PREFIX}.graph.notifications`;
    const info = await (await jetstreamManager(nc)).streams.info(`callgate-${PREFIX}`, {
      subjects_filter: subject,
    });
    const stored = info.state.subjects?.[subject] ?? 0;
    await nc.close();
    const sent = WARMUP + LOW_RATE_PER_S * LOW_SECONDS + RATE_PER_S * SECONDS + BURST;
    return [
      { build, ...main },
      { build, ...low },
      { build, ...burst, 'batches stored / sent (all phases)': `${stored} / ${sent}` },
    ];
  } finally {
    await pool?.close().catch(() => {});
    await stopService(child);
    await nats?.dispose();
  }
}

function serviceEnv(natsUrl: string, graph: GraphEmulator, port: number): Record<string, string> {
  return {
    NATS_URL: natsUrl,
    GRAPH_BASE_URL: graph.url,
    GRAPH_TOKEN: 'bench-token',
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(port),
    SUBJECT_PREFIX: PREFIX,
    NOTIFICATIONS_SUBJECT: `${PREFIX}.graph.notifications`,
    // No call times out during the bench: the service only rests ringing calls.
    ANSWER_TIMEOUT_MS: '600000',
    LOG_LEVEL: 'warn',
    WEBHOOK_APP_ID: APP_ID,
    WEBHOOK_OPENID_URL: graph.openIdUrl,
    WEBHOOK_ISSUERS: graph.issuer,
  };
}

async function startReadyService(
  entry: string,
  env: Record<string, string>,
  origin: string,
): Promise<ChildProcess> {
  const service = startService(entry, env);
  await until(
    'the service to answer /readyz 200',
    async () => {
      if (service.exitCode !== null) throw new Error('callgate serve exited before it was ready');
      const ready = await httpGet(`${origin}/readyz`).catch(() => undefined);
      return ready?.status === 200 ? true : undefined;
    },
    30_000,
  );
  return service;
}

async function stopService(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

interface Planned {
  readonly callId: string;
  readonly body: string;
}

/** `n` incoming-call batches, each for a new call. */
function bodiesFor(callbackUrl: string): (n: number) => Planned[] {
  return (n) =>
    Array.from({ length: n }, () => {
      const callId = randomUUID();
      return {
        callId,
        body: JSON.stringify(incomingCallBatch({ callId, appId: APP_ID, callbackUrl })),
      };
    });
}

/** POST one batch with `token`; the sample is its answer time and status (0: no answer). */
function poster(client: Pool, token: string): (item: Planned) => Promise<Sample> {
  return async ({ callId, body }) => {
    const started = performance.now();
    try {
      const response = await client.request({
        path: '/api/calling',
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json; charset=utf-8',
          'scenario-id': callId,
          'x-microsoft-skype-chain-id': callId,
          'x-microsoft-skype-message-id': randomUUID(),
        },
        body,
      });
      await response.body.dump();
      return { ms: performance.now() - started, status: response.statusCode };
    } catch {
      return { ms: performance.now() - started, status: 0 };
    }
  };
}

/** Fixed rate (open loop: each request goes at its planned time, whatever the answers). */
async function fixedRate(
  post: (item: Planned) => Promise<Sample>,
  bodies: (n: number) => Planned[],
  cpu: () => number,
  rate: number,
  seconds: number,
): Promise<Row> {
  const planned = bodies(rate * seconds);
  const intervalMs = 1000 / rate;
  const cpuBefore = cpu();
  const pending: Promise<Sample>[] = [];
  let worstLateMs = 0;
  const t0 = performance.now();
  let next = 0;
  while (next < planned.length) {
    const now = performance.now();
    while (next < planned.length && t0 + next * intervalMs <= now) {
      worstLateMs = Math.max(worstLateMs, now - (t0 + next * intervalMs));
      const item = planned[next++];
      if (item) pending.push(post(item));
    }
    await sleep(1);
  }
  const fixed = await Promise.all(pending);
  const fixedSeconds = (performance.now() - t0) / 1000;
  const cpuPerRequest = (cpu() - cpuBefore) / planned.length;
  const fixedLatency = latencies(fixed);
  const p99 = fixedLatency['p99 (ms)'];
  return {
    'webhook, fixed rate': `${rate}/s for ${seconds} s`,
    requests: fixed.length,
    answers: statuses(fixed),
    'achieved (req/s)': Math.round(fixed.length / fixedSeconds),
    ...fixedLatency,
    [`goal p99 ≤ ${GOAL_P99_MS} ms`]: p99 <= GOAL_P99_MS ? 'met' : 'missed',
    'sender late, worst (ms)': round(worstLateMs),
    'service CPU per request (ms)': round(cpuPerRequest, 3),
  };
}

/** As fast as answered, BURST_IN_FLIGHT at a time. */
async function burstOf(
  post: (item: Planned) => Promise<Sample>,
  planned: readonly Planned[],
  cpu: () => number,
): Promise<Row> {
  const cpuBefore = cpu();
  const burst: Sample[] = [];
  let taken = 0;
  const b0 = performance.now();
  await Promise.all(
    Array.from({ length: BURST_IN_FLIGHT }, async () => {
      while (taken < planned.length) {
        const item = planned[taken++];
        if (item) burst.push(await post(item));
      }
    }),
  );
  const burstSeconds = (performance.now() - b0) / 1000;
  return {
    'webhook, burst': `${planned.length} requests, ${BURST_IN_FLIGHT} in flight`,
    answers: statuses(burst),
    'throughput (req/s)': Math.round(burst.length / burstSeconds),
    ...latencies(burst),
    'service CPU per request (ms)': round((cpu() - cpuBefore) / planned.length, 3),
  };
}
