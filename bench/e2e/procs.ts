import { type ChildProcess, fork, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { FaultRule } from '../../src/tools/emulator/emulator.js';
import type { EmulatorCollected, EmulatorCount, EmulatorOp } from './emulator-child.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
/** The service measured: this tree's build, or another's (`E2E_SERVICE=<other>/dist/src/cli.js`). */
export const SERVICE_ENTRY = process.env.E2E_SERVICE || join(ROOT, 'dist/src/cli.js');

/** Every child started by the bench, so that none outlives it. */
const children = new Set<ChildProcess>();

/** Count a child started elsewhere (the nats-server) among those killed on exit. */
export function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** Synchronous clean-ups (temp dirs) for when the bench exits early. */
const cleanups = new Set<() => void>();
export function onEarlyExit(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // best effort
    }
  }
}
process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** `performance.timeOrigin + performance.now()`: epoch ms with sub-ms precision. */
export const abs = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll `check` every `intervalMs` until it returns a value other than `undefined`, or throw. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Fails with a clear message when the service has not been built (or is older than src/). */
export function checkBuilt(): string | undefined {
  if (!existsSync(SERVICE_ENTRY)) {
    throw new Error(
      `bench e2e runs the built service (${SERVICE_ENTRY}), which is missing: run \`npm run build\` first`,
    );
  }
  const built = statSync(SERVICE_ENTRY).mtimeMs;
  const newer = (dir: string): boolean => {
    for (const name of readdirNames(dir)) {
      const path = join(dir, name);
      const stat = statSync(path);
      if (stat.isDirectory() ? newer(path) : name.endsWith('.ts') && stat.mtimeMs > built)
        return true;
    }
    return false;
  };
  if (newer(join(ROOT, 'src')) || newer(join(ROOT, 'machines'))) {
    return 'warning: dist/ is older than src/ or machines/: run `npm run build` to measure the current code';
  }
  return undefined;
}

function readdirNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** CPU time (user + system) of a process so far, in ms, from /proc. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after "(comm) ".
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}
const CLOCK_TICKS = 100;

/** CPU time (ms) the whole machine has spent busy so far (all cores), from /proc/stat. */
export function machineBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    // cpu  user nice system idle iowait irq softirq steal …
    const [, user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).map(Number);
    return (
      (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0)) * 1000) /
      CLOCK_TICKS
    );
  } catch {
    return Number.NaN;
  }
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
export function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** GET a loopback URL: status and body, or status 0 when nothing answers. */
export function httpGet(url: string, timeoutMs = 2_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', () => resolve({ status: 0, body: '' }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

/** A child process of the bench with the tail of its output, for error messages. */
export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly spawnedAt: number;
  /** The last few KB the child wrote (stdout and stderr). */
  output(): string;
  readonly exited: Promise<void>;
  isRunning(): boolean;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL, resolves once it has exited. */
  kill9(): Promise<void>;
  /** The next line the child writes that starts with `prefix` (without it), within `timeoutMs`. */
  nextLine(prefix: string, timeoutMs?: number): Promise<string>;
}

export function startChild(
  command: string,
  args: string[],
  env: Record<string, string>,
  onLine?: (line: string) => void,
): Child {
  const spawnedAt = abs();
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let tail = '';
  const waiters = new Set<(line: string) => boolean>();
  const lineReader = () => {
    let pending = '';
    return (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-8_000);
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        onLine?.(line);
        for (const waiter of waiters) if (waiter(line)) waiters.delete(waiter);
      }
    };
  };
  proc.stdout?.on('data', lineReader());
  proc.stderr?.on('data', lineReader());
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      children.delete(proc);
      resolve();
    });
    proc.once('error', (error) => {
      tail += `\n(spawn failed: ${error.message})`;
      children.delete(proc);
      resolve();
    });
  });
  const isRunning = () => proc.exitCode === null && proc.signalCode === null;
  return {
    proc,
    pid: proc.pid ?? 0,
    spawnedAt,
    output: () => tail,
    exited,
    isRunning,
    async stop(graceMs = 12_000) {
      if (!isRunning()) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    async kill9() {
      if (!isRunning()) return;
      proc.kill('SIGKILL');
      await exited;
    },
    nextLine: (prefix, timeoutMs = 10_000) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no "${prefix}" line from pid ${proc.pid} in ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = (line: string) => {
          if (!line.startsWith(prefix)) return false;
          clearTimeout(timer);
          resolve(line.slice(prefix.length));
          return true;
        };
        waiters.add(waiter);
      }),
  };
}

/** What `bench/e2e/observe.mjs` reports from inside a measured process. */
export interface Observed {
  /** Bytes allocated on the V8 heap since the process started. */
  readonly allocated: number;
  readonly collections: number;
  readonly scavenges: number;
  /** Every collection's pause, summed (µs). */
  readonly pauseUs: number;
  readonly over10ms: number;
  /** The longest pause since the previous report (µs). */
  readonly windowMaxUs: number;
  /** Bytes the scavenges kept young, and promoted to the old generation. */
  readonly survived: number;
  readonly promoted: number;
  /** The event loop's lateness since the previous report (ms). */
  readonly loopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

const OBSERVER = join(ROOT, 'bench/e2e/observe.mjs');

/** Ask a child preloaded with the observer for its figures (SIGUSR2, one line back). */
export async function observe(child: Child): Promise<Observed> {
  const line = child.nextLine('bench-observe ');
  child.proc.kill('SIGUSR2');
  return JSON.parse(await line) as Observed;
}

/**
 * Node flags of the measured children: {@link PIPELINE_NODE_FLAGS}, the
 * observer preload (`bench/e2e/observe.mjs`) when `observed`, and with
 * `E2E_CPU_PROF=<dir>` a CPU profile each.
 */
export function pipelineFlags(options: { observed?: boolean } = {}): string[] {
  const dir = process.env.E2E_CPU_PROF;
  return [
    ...PIPELINE_NODE_FLAGS,
    ...(options.observed ? ['--import', OBSERVER] : []),
    ...(dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []),
  ];
}

/**
 * Node flags of both pipelines' processes: the service's as `npm start` and
 * the Docker image run it, given to the naive pipeline too so the ratio
 * compares code, not settings. E2E_NODE_FLAGS overrides (empty: none).
 */
export const PIPELINE_NODE_FLAGS = (process.env.E2E_NODE_FLAGS ?? '')
  .split(' ')
  .filter((flag) => flag !== '');

/** The emulator child, steered over IPC. */
export interface EmulatorHandle {
  readonly url: string;
  readonly pid: number;
  /** Emulator clock minus bench clock (ms), from the best of several round trips. */
  calibrate(): Promise<{ offsetMs: number; rttMs: number }>;
  reset(): Promise<void>;
  setFault(rule: FaultRule): Promise<void>;
  clearFaults(): Promise<void>;
  release(): Promise<number>;
  count(): Promise<EmulatorCount>;
  collect(from?: number): Promise<EmulatorCollected>;
  close(): Promise<void>;
}

export async function startEmulator(): Promise<EmulatorHandle> {
  const proc = fork(join(ROOT, 'bench/e2e/emulator-child.ts'), [], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(proc);
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      children.delete(proc);
      resolve();
    }),
  );
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let next = 1;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the emulator did not start in 20 s')), 20_000);
    proc.on('message', (message: { ready?: boolean; url?: string; id?: number } & object) => {
      if (message.ready && message.url) {
        clearTimeout(timer);
        resolve(message.url);
        return;
      }
      const entry = message.id === undefined ? undefined : waiting.get(message.id);
      if (!entry || message.id === undefined) return;
      waiting.delete(message.id);
      if ('error' in message) entry.reject(new Error(`emulator: ${String(message.error)}`));
      else entry.resolve((message as { result: unknown }).result);
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the emulator exited (${code}) before it was ready`));
      for (const entry of waiting.values()) entry.reject(new Error('the emulator exited'));
    });
  });
  const call = <T>(message: EmulatorOp): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = next++;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      proc.send({ id, ...message });
    });
  return {
    url,
    pid: proc.pid ?? 0,
    async calibrate() {
      let best = { offsetMs: 0, rttMs: Number.POSITIVE_INFINITY };
      for (let i = 0; i < 30; i++) {
        const t0 = abs();
        const remote = await call<number>({ op: 'now' });
        const t1 = abs();
        if (t1 - t0 < best.rttMs) best = { offsetMs: remote - (t0 + t1) / 2, rttMs: t1 - t0 };
      }
      return best;
    },
    reset: () => call({ op: 'reset' }),
    setFault: (rule) => call({ op: 'setFault', rule }),
    clearFaults: () => call({ op: 'clearFaults' }),
    release: () => call({ op: 'release' }),
    count: () => call({ op: 'count' }),
    collect: (from = 0) => call({ op: 'collect', from }),
    async close() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A positive whole number from the environment variable `name`, or `fallback`. */
export const num = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return Math.round(value);
};

export const round = (value: number, digits = 0): number => Number(value.toFixed(digits));

/** `n` call ids `<tag>0` … `<tag>{n-1}`. */
export const ids = (tag: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${tag}${i}`);

/** Wait until the emulator has received `n` requests since its reset (or progress stalls). */
export async function waitForPosts(
  emulator: EmulatorHandle,
  n: number,
  stallMs: number,
  settled?: () => Promise<boolean>,
): Promise<number> {
  let last = -1;
  let lastChange = Date.now();
  let lastSettledCheck = Date.now();
  for (;;) {
    const { requests } = await emulator.count();
    if (requests >= n) return requests;
    // Nothing more will come: every call the service was given is final (asked once a
    // second, so that scraping /metrics does not load the service under test).
    if (settled && Date.now() - lastSettledCheck >= 1_000) {
      lastSettledCheck = Date.now();
      if (await settled()) return (await emulator.count()).requests;
    }
    if (requests !== last) {
      last = requests;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > stallMs) {
      return requests;
    }
    await sleep(100);
  }
}
