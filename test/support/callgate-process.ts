import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CONFIG_VARIABLES } from '../../src/config.js';
import { freePort } from './nats-server.js';

/** The repository root: the child runs `src/cli.ts` from here through tsx. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One `callgate` child process (`node --import tsx src/cli.ts …`). */
export interface CallgateProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** `http://127.0.0.1:<HTTP_PORT>`. */
  readonly httpUrl: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  stdout(): string;
  stderr(): string;
  /** `GET <path>` on the service's HTTP port: the status, or `null` when nothing answers. */
  get(path: string): Promise<number | null>;
  /** Poll `GET /readyz` until it answers 200 (fails early when the process exits). */
  ready(timeoutMs?: number): Promise<void>;
  /** Send `signal` (default SIGKILL) and wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<Exit>;
  /** Send `signal` and return at once (SIGSTOP freezes the process, SIGCONT resumes it). */
  signal(signal: NodeJS.Signals): void;
}

const live = new Set<CallgateProcess>();

/**
 * Spawn `callgate <args>` with `env` on top of the test's environment minus
 * every callgate variable. `HTTP_PORT` defaults to a free port, `HTTP_HOST`
 * to loopback.
 */
export async function spawnCallgate(
  env: Record<string, string>,
  args: string[] = ['serve'],
): Promise<CallgateProcess> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !CONFIG_VARIABLES.includes(key)),
  );
  const port = env.HTTP_PORT ?? String(await freePort());
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: ROOT,
    env: { ...inherited, HTTP_HOST: '127.0.0.1', HTTP_PORT: port, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const httpUrl = `http://127.0.0.1:${port}`;
  let done = false;
  const proc: CallgateProcess = {
    child,
    pid: child.pid ?? -1,
    httpUrl,
    exited,
    stdout: () => out,
    stderr: () => err,
    async get(path) {
      try {
        const response = await fetch(`${httpUrl}${path}`, { signal: AbortSignal.timeout(2_000) });
        await response.arrayBuffer();
        return response.status;
      } catch {
        return null;
      }
    },
    async ready(timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      while ((await proc.get('/readyz')) !== 200) {
        if (done) throw new Error(`callgate exited before it was ready:\n${err}${out}`);
        if (Date.now() > until)
          throw new Error(`callgate not ready in ${timeoutMs} ms:\n${err}${out}`);
        await sleep(50);
      }
    },
    async kill(signal = 'SIGKILL') {
      if (!done) child.kill(signal);
      return exited;
    },
    signal(signal) {
      if (!done) child.kill(signal);
    },
  };
  void exited.then(() => {
    done = true;
    live.delete(proc);
  });
  live.add(proc);
  return proc;
}

/** Spawn `callgate serve` and wait until `/readyz` answers 200. */
export async function startCallgate(env: Record<string, string>): Promise<CallgateProcess> {
  const proc = await spawnCallgate(env);
  await proc.ready();
  return proc;
}

/** SIGKILL every callgate process still running (for afterEach/afterAll). */
export async function killAllCallgates(): Promise<void> {
  await Promise.all([...live].map((proc) => proc.kill('SIGKILL')));
}
