import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { BusNames } from '../../bus/jetstream.js';
import { sleep } from './traffic.js';

/** The service as a child process: `callgate serve`, logging to a file. */
export interface DemoService {
  readonly logFile: string;
  /** SIGTERM, then wait for the exit (SIGKILL after `graceMs`); the exit code, or null. */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
}

/**
 * Node's arguments for `callgate <args>`: `dist/src/cli.js`, two folders up;
 * through tsx when running from the sources.
 */
export function callgateCommand(args: readonly string[], nodeFlags: readonly string[] = []) {
  const here = fileURLToPath(import.meta.url);
  const cli = join(dirname(here), '..', '..', extname(here) === '.ts' ? 'cli.ts' : 'cli.js');
  return [...nodeFlags, ...(extname(here) === '.ts' ? ['--import', 'tsx'] : []), cli, ...args];
}

/** The last `lines` lines of a log file, for an error message. */
export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Start the service with `env` on top of this process's environment and wait
 * until `GET /readyz` answers 200 on `httpPort`.
 */
export async function startDemoService(options: {
  env: Record<string, string>;
  httpPort: number;
  logFile: string;
  signal: AbortSignal;
  readyWithinMs?: number;
}): Promise<DemoService> {
  const log = openSync(options.logFile, 'a');
  const child = spawn(process.execPath, callgateCommand(['serve']), {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', log, log],
    detached: true,
  });
  closeSync(log);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  const exit = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      process.off('exit', killOnExit);
      resolve(code);
    });
  });

  const service: DemoService = {
    logFile: options.logFile,
    async kill() {
      if (exited(child) || spawnError) return;
      child.kill('SIGKILL');
      await exit;
    },
    async stop(graceMs = 12_000) {
      if (exited(child) || spawnError) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };

  const url = `http://127.0.0.1:${options.httpPort}/readyz`;
  const until = Date.now() + (options.readyWithinMs ?? 30_000);
  while (Date.now() < until && !options.signal.aborted) {
    if (spawnError) throw new Error(`could not start the service: ${spawnError.message}`);
    if (exited(child)) {
      throw new Error(
        `the service exited with code ${child.exitCode} before it was ready; its log (${options.logFile}) ends:\n${tail(options.logFile)}`,
      );
    }
    const status = await fetch(url, { signal: AbortSignal.timeout(1_000) })
      .then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      })
      .catch(() => 0);
    if (status === 200) return service;
    await sleep(100);
  }
  await service.stop();
  if (options.signal.aborted) throw new Error('interrupted');
  throw new Error(
    `the service was not ready within ${(options.readyWithinMs ?? 30_000) / 1000} s; its log (${options.logFile}) ends:\n${tail(options.logFile)}`,
  );
}

/** Delete the stream and the KV buckets the service created, so nothing is left behind. */
export async function removeBusObjects(nc: NatsConnection, names: BusNames): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const stream of [names.stream, `KV_${names.bucket}`, `KV_${names.owners}`]) {
    await jsm.streams.delete(stream).catch((error: unknown) => {
      // 10059: stream not found (the service never got that far).
      if (!(error instanceof JetStreamApiError && error.code === 10059)) throw error;
    });
  }
}
