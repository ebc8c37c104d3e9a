import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, createWriteStream, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import { z } from 'zod';
import type { FaultRule, PlaceCallOptions } from '../emulator/emulator.js';
import { callKey } from '../emulator/faults.js';
import { callgateCommand, exited, tail } from './service.js';

/**
 * The Graph emulator in a process of its own (`callgate emulate-graph`),
 * steered over its control API: the traffic generator does not share its
 * event loop with the emulator's signing and HTTP.
 */
export interface DemoEmulator {
  /** `http://127.0.0.1:<port>`: use as `GRAPH_BASE_URL`. */
  readonly url: string;
  /** Use as `WEBHOOK_OPENID_URL` and in `WEBHOOK_ISSUERS`. */
  readonly openIdUrl: string;
  readonly issuer: string;
  readonly logFile: string;
  /** Place a call (`POST /_emulator/calls`); resolves with the webhook's status (null: none). */
  placeCall(options: PlaceCallOptions): Promise<number | null>;
  /** Add fault rules (`POST /_emulator/faults`, a few at a time). */
  setFaults(rules: readonly FaultRule[]): Promise<void>;
  /** Every reject request it received, with its arrival on this process's `performance.now()`. */
  received(): Promise<Array<{ callId: string; receivedPerf: number }>>;
  /** Its answers by status, and the rejects it accepted per call. */
  stats(): Promise<{ byStatus: Record<string, number>; acceptedCount(callId: string): number }>;
  /** SIGTERM, and wait for the exit (SIGKILL after `graceMs`); the exit code, or null. */
  stop(graceMs?: number): Promise<number | null>;
}

/** The line `callgate emulate-graph` logs once it listens. */
const Ready = z.object({
  msg: z.literal('graph emulator listening'),
  url: z.string(),
  openIdUrl: z.string(),
  issuer: z.string(),
});
const Placed = z.object({ status: z.number().nullable() });
const Requests = z.array(z.object({ callId: z.string(), receivedPerf: z.number() }));
const Stats = z.object({
  byStatus: z.record(z.string(), z.number()),
  accepted: z.record(z.string(), z.number()),
  timeOrigin: z.number(),
});

/**
 * Start `callgate emulate-graph --port 0` and wait for the line that names
 * its URL. Its log goes to `logFile`.
 *
 * @example
 * const graph = await startDemoEmulator({ answerTimeoutMs: 4000, logFile, signal });
 * await graph.placeCall({ callbackUrl: 'http://127.0.0.1:8080/api/calling', appId: 'bot' }); // 202
 * await graph.stop();
 */
export async function startDemoEmulator(options: {
  answerTimeoutMs: number;
  logFile: string;
  signal: AbortSignal;
  readyWithinMs?: number;
}): Promise<DemoEmulator> {
  const args = ['emulate-graph', '--port', '0', '--log-level', 'info'];
  args.push('--answer-timeout-ms', String(options.answerTimeoutMs));
  const err = openSync(options.logFile, 'a');
  const child = spawn(process.execPath, callgateCommand(args), {
    stdio: ['ignore', 'pipe', err],
    detached: true,
  });
  closeSync(err);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exit = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      process.off('exit', killOnExit);
      resolve(code);
    });
  });
  const stop = async (graceMs = 5_000) => {
    if (!exited(child) && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    }
    return child.exitCode;
  };
  try {
    const ready = await readyLine(child, options);
    return emulatorClient(ready, options.logFile, stop);
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Copy the child's stdout to the log; resolve with its ready line. */
function readyLine(
  child: ChildProcess,
  options: { logFile: string; signal: AbortSignal; readyWithinMs?: number },
): Promise<z.infer<typeof Ready>> {
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const withinMs = options.readyWithinMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const fail = (why: string) => () =>
      reject(
        new Error(
          `the Graph emulator ${why}; its log (${options.logFile}) ends:\n${tail(options.logFile)}`,
        ),
      );
    const timer = setTimeout(fail(`was not ready within ${withinMs / 1000} s`), withinMs);
    const onAbort = () => reject(new Error('interrupted'));
    options.signal.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
    };
    child.once('error', (error) => {
      done();
      reject(new Error(`could not start the Graph emulator: ${error.message}`));
    });
    child.once('exit', (code) => {
      done();
      // The log stream may still be writing its last lines.
      log.end(() => fail(`exited with code ${code} before it was ready`)());
    });
    lines.on('line', (line) => {
      log.write(`${line}\n`);
      const ready = Ready.safeParse(parseJson(line));
      if (ready.success) {
        done();
        resolve(ready.data);
      }
    });
  });
}

function emulatorClient(
  ready: z.infer<typeof Ready>,
  logFile: string,
  stop: (graceMs?: number) => Promise<number | null>,
): DemoEmulator {
  // One connection per call in flight: a queue here would delay the notifications.
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const res = await request(`${ready.url}${path}`, {
      method,
      dispatcher: agent,
      ...(body !== undefined && {
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      }),
    });
    const text = await res.body.text();
    if (res.statusCode >= 300) {
      throw new Error(
        `the Graph emulator answered ${res.statusCode} to ${method} ${path}: ${text}`,
      );
    }
    return JSON.parse(text) as unknown;
  };
  return {
    url: ready.url,
    openIdUrl: ready.openIdUrl,
    issuer: ready.issuer,
    logFile,
    async placeCall(options) {
      return Placed.parse(await call('POST', '/_emulator/calls', options)).status;
    },
    async setFaults(rules) {
      const queue = [...rules];
      const worker = async () => {
        for (let rule = queue.shift(); rule; rule = queue.shift()) {
          await call('POST', '/_emulator/faults', rule);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    },
    async received() {
      const [records, stats] = await Promise.all([
        call('GET', '/_emulator/requests').then((json) => Requests.parse(json)),
        call('GET', '/_emulator/stats').then((json) => Stats.parse(json)),
      ]);
      // Processes on one machine share the wall clock their time origins are read from.
      const offset = stats.timeOrigin - performance.timeOrigin;
      return records.map((r) => ({ callId: r.callId, receivedPerf: r.receivedPerf + offset }));
    },
    async stats() {
      const stats = Stats.parse(await call('GET', '/_emulator/stats'));
      return {
        byStatus: stats.byStatus,
        acceptedCount: (callId) => stats.accepted[callKey(callId)] ?? 0,
      };
    },
    async stop(graceMs) {
      const code = await stop(graceMs);
      await agent.close();
      return code;
    },
  };
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}
