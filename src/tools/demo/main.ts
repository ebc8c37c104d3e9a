#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { type BusNames, busNames } from '../../bus/jetstream.js';
import { type DemoEmulator, startDemoEmulator } from './emulator.js';
import { startInstances } from './instances.js';
import {
  type DemoNats,
  errorText,
  findOrStartNats,
  INSTALL_HINT,
  NatsUnavailableError,
} from './nats.js';
import { type DemoOptions, parseDemoArgs, USAGE } from './options.js';
import { MAX_SERVICE_LAG_MS, type PublishResult, publishTraffic } from './publish.js';
import { type ReportInput, renderReport, summarize } from './report.js';
import { type DemoService, removeBusObjects } from './service.js';
import { outcomesOf, progress, type Tracker, trackLifecycle } from './tracker.js';
import { DEMO_MIX, type DemoCall, type DemoKind, planTraffic, sleep } from './traffic.js';

/** The answer window: short, so that the calls built to time out finish quickly. */
const WINDOW_MS = 4_000;
/** The bot's app id: the audience of the emulator's notification tokens. */
const DEMO_APP_ID = 'callgate-demo-bot';
const say = (line: string) => process.stderr.write(`${line}\n`);

type Cleanup = () => Promise<unknown>;
interface Result {
  readonly code: number;
  readonly report?: string;
}

/** Everything it starts is registered in `cleanups`, to be undone last-first. */
async function run(opts: DemoOptions, signal: AbortSignal, cleanups: Cleanup[]): Promise<Result> {
  // A prefix of its own: nothing collides with other users of a shared server.
  const prefix = `demo${randomBytes(3).toString('hex')}`;
  const names = busNames(prefix, `${prefix}.graph.notifications`);
  const nats = await findOrStartNats(process.env.NATS_URL || 'nats://127.0.0.1:4222', say, {
    cluster: opts.replicas > 1,
  });
  cleanups.push(() => nats.close());
  cleanups.push(async () => {
    await removeBusObjects(nats.nc, names);
    say(`cleaned up: stream ${names.stream} and KV bucket ${names.bucket} deleted`);
  });
  const logDir = mkdtempSync(join(tmpdir(), 'callgate-demo-'));
  const emulator = await startDemoEmulator({
    answerTimeoutMs: WINDOW_MS,
    logFile: join(logDir, 'emulator.log'),
    signal,
  });
  cleanups.push(async () => {
    const code = await emulator.stop();
    say(`Graph emulator stopped (exit code ${code}); its log: ${emulator.logFile}`);
  });
  say(`Graph emulator: ${emulator.url} (callgate emulate-graph, a process of its own)`);
  const { services, httpPort } = await startServices(opts, {
    nats,
    emulator,
    prefix,
    names,
    logDir,
    signal,
    cleanups,
  });

  const calls = planTraffic(opts);
  // Graph's answers for each call are scripted before the traffic starts.
  await emulator.setFaults(calls.flatMap((call) => call.faults));
  const tracker = await trackLifecycle(nats.nc, prefix, new Set(calls.map((c) => c.callId)));
  cleanups.push(async () => tracker.stop());
  const mix = new Map<DemoKind, number>();
  for (const call of calls) mix.set(call.kind, (mix.get(call.kind) ?? 0) + 1);
  const kinds = Object.keys(DEMO_MIX) as DemoKind[];
  say(
    `traffic: ${calls.length} calls at ${opts.rate}/s (seed ${opts.seed}): ` +
      kinds.map((kind) => `${kind} ${mix.get(kind) ?? 0}`).join(', '),
  );
  say(`traffic: new calls wait while the service is over ${MAX_SERVICE_LAG_MS} ms behind`);

  const halfway = killHalfway(services, (calls.length / opts.rate) * 500);
  const rejectPublished = new Map<string, number>();
  const published = await driveTraffic(calls, {
    nats,
    prefix,
    tracker,
    signal,
    placeCall: async (call) => {
      const status = await emulator.placeCall({
        callbackUrl: `http://127.0.0.1:${httpPort}/api/calling`,
        appId: DEMO_APP_ID,
        callId: call.callId,
        source: { identity: { user: { id: `u${call.n}`, displayName: `Caller ${call.n}` } } },
      });
      if (status !== 202) {
        throw new Error(`the webhook answered ${status ?? 'nothing'} for ${call.callId}`);
      }
    },
    beforeReject: (call) => rejectPublished.set(call.callId, performance.now()),
  }).finally(() => clearTimeout(halfway.timer));
  if (signal.aborted) return { code: 130 };

  const [received, graph] = await Promise.all([emulator.received(), emulator.stats()]);
  const duplicated = mix.get('duplicated') ?? 0;
  const input: ReportInput = {
    outcomes: outcomesOf(calls, tracker, rejectPublished, received),
    refusedRejects: tracker.refusedRejects,
    plannedRefusals: duplicated,
    duplicatesDropped: published.duplicatesDropped,
    plannedDrops: duplicated,
    graphByStatus: graph.byStatus,
    windowMs: WINDOW_MS,
    traffic: { ...published, maxLagMs: MAX_SERVICE_LAG_MS },
    decidedTwice:
      tracker.conflicting.size + calls.filter((c) => graph.acceptedCount(c.callId) > 1).length,
    ...(opts.replicas > 1 && { replicas: { count: opts.replicas, killed: halfway.what() } }),
  };
  const summary = summarize(input);
  return { code: summary.ok ? 0 : 1, report: renderReport(input, summary) };
}

/** `callgate serve`, once or `--replicas` times, wired to NATS and the emulator. */
async function startServices(
  opts: DemoOptions,
  parts: {
    nats: DemoNats;
    emulator: DemoEmulator;
    prefix: string;
    names: BusNames;
    logDir: string;
    signal: AbortSignal;
    cleanups: Cleanup[];
  },
) {
  const { nats, emulator, prefix, names, cleanups } = parts;
  const replicas = nats.nodes >= 3 ? 3 : 1;
  const several = opts.replicas > 1;
  say(
    `service: starting ${several ? `${opts.replicas} identical instances of ` : ''}callgate serve (subjects ${prefix}.*${several ? `, STREAM_REPLICAS=${replicas}` : ''})`,
  );
  const instances = await startInstances({
    count: opts.replicas,
    logDir: parts.logDir,
    env: {
      NATS_URL: nats.url,
      GRAPH_BASE_URL: emulator.url,
      GRAPH_TOKEN: 'demo',
      ANSWER_TIMEOUT_MS: String(WINDOW_MS),
      SUBJECT_PREFIX: prefix,
      NOTIFICATIONS_SUBJECT: names.notificationsSubject,
      STREAM_REPLICAS: String(replicas),
      LOG_LEVEL: 'warn',
      INSPECT: '0',
      // Graph's callback: the emulator signs its notifications, the service checks them.
      WEBHOOK_APP_ID: DEMO_APP_ID,
      WEBHOOK_OPENID_URL: emulator.openIdUrl,
      WEBHOOK_ISSUERS: emulator.issuer,
    },
    signal: parts.signal,
    started: (service) =>
      cleanups.push(async () => {
        const code = await service.stop();
        say(`service stopped (exit code ${code}); its log: ${service.logFile}`);
      }),
  });
  say(
    `service: ready (answer window ${WINDOW_MS} ms, short so timed-out calls finish quickly; logs in ${parts.logDir})`,
  );
  return instances;
}

/** Publish the traffic with a progress bar, then wait (a while) for every call to be final. */
async function driveTraffic(
  calls: readonly DemoCall[],
  how: {
    nats: DemoNats;
    prefix: string;
    tracker: Tracker;
    signal: AbortSignal;
    placeCall: (call: DemoCall) => Promise<void>;
    beforeReject: (call: DemoCall) => void;
  },
): Promise<PublishResult> {
  const { tracker, signal } = how;
  const bar = progress(calls.length, 'calls');
  const ticker = setInterval(() => bar.update(tracker.finished), 200);
  try {
    const published = await publishTraffic(jetstream(how.nats.nc), how.prefix, calls, {
      signal,
      service: tracker,
      placeCall: how.placeCall,
      beforeReject: how.beforeReject,
    });
    const until = Date.now() + WINDOW_MS + 10_000;
    while (tracker.finished < calls.length && Date.now() < until && !signal.aborted) {
      await sleep(100);
    }
    return published;
  } finally {
    clearInterval(ticker);
    bar.update(tracker.finished);
    bar.stop();
  }
}

/**
 * With several instances, kill the last one (SIGKILL) `afterMs` into the
 * traffic: the others take its calls over. Graph's notifications go to the
 * first, which stays.
 */
function killHalfway(services: readonly DemoService[], afterMs: number) {
  let what: string | undefined;
  const victim = services.length > 1 ? services.at(-1) : undefined;
  const started = performance.now();
  const timer = victim
    ? setTimeout(() => {
        const at = ((performance.now() - started) / 1000).toFixed(1);
        what = `instance ${services.length} killed (SIGKILL) ${at} s into the traffic`;
        say(`service: ${what}; the others take its calls over`);
        void victim.kill();
      }, afterMs)
    : undefined;
  return { timer, what: () => what };
}

async function main(): Promise<number> {
  let opts: DemoOptions | 'help';
  try {
    opts = parseDemoArgs(process.argv.slice(2));
  } catch (error) {
    say(`${errorText(error)}\n\n${USAGE}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (name: string) => {
    if (++signals > 1) process.exit(130); // the children are killed on exit
    say(`\n${name}: stopping and cleaning up (again to force)`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const cleanups: Cleanup[] = [];
  let result: Result = { code: 1 };
  try {
    result = await run(opts, abort.signal, cleanups);
  } catch (error) {
    if (abort.signal.aborted) result = { code: 130 };
    else if (error instanceof NatsUnavailableError) {
      say(`\ncallgate demo: ${error.message}\n\n${INSTALL_HINT}`);
    } else {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      say(`\ncallgate demo failed: ${text}`);
    }
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => say(`cleanup: ${errorText(error)}`));
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  // The table comes last, after the clean-up messages.
  if (result.report) process.stdout.write(`\n${result.report}`);
  return result.code;
}

process.exit(await main());
