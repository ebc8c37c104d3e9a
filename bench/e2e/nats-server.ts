import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onEarlyExit, track } from './procs.js';

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no free port'));
      });
    });
  });
}

export interface BenchNatsServer {
  readonly url: string;
  readonly pid: number;
  /** SIGTERM (SIGKILL after 5 s), then remove the store. */
  dispose(): Promise<void>;
}

/**
 * A fresh `nats-server` with JetStream on a free loopback port and a
 * temporary store, for one benchmark run (the bench does not import from
 * test/; this is the same recipe as test/support/nats-server.ts).
 */
export async function startNatsServer(): Promise<BenchNatsServer> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'callgate-bench-nats-'));
  const proc: ChildProcess = spawn(
    'nats-server',
    ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  track(proc);
  const forget = onEarlyExit(() => rmSync(storeDir, { recursive: true, force: true }));
  let log = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`nats-server did not become ready in 10 s:\n${log}`)),
        10_000,
      );
      proc.once('error', (error) => {
        clearTimeout(timer);
        reject(
          new Error(
            `could not start nats-server (${error.message}); run scripts/ensure-nats-server.sh`,
          ),
        );
      });
      proc.stderr?.on('data', (chunk: Buffer) => {
        if (log.length < 64_000) log += chunk.toString();
        if (log.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited ${code}:\n${log}`));
      });
    });
  } catch (error) {
    proc.kill('SIGKILL');
    rmSync(storeDir, { recursive: true, force: true });
    throw error;
  }
  // Keep draining stderr so the server never blocks on a full pipe.
  proc.stderr?.resume();
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: proc.pid ?? 0,
    async dispose() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(storeDir, { recursive: true, force: true });
      forget();
    },
  };
}
