import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';

/** A NATS server with JetStream the demo can use, and how to let go of it. */
export interface DemoNats {
  readonly nc: NatsConnection;
  readonly url: string;
  /** True when the demo started this server itself. */
  readonly started: boolean;
  /** Close the connection; stop the server and remove its store if the demo started it. */
  close(): Promise<void>;
}

/** Neither the configured NATS nor a `nats-server` from the PATH could be used. */
export class NatsUnavailableError extends Error {
  override readonly name = 'NatsUnavailableError';
}

/** Where distributions put the binary when `PATH` (e.g. a non-root one) does not list it. */
const FALLBACK_BINARIES = ['/usr/sbin/nats-server', '/usr/local/bin/nats-server'];

export const INSTALL_HINT = `The demo needs NATS with JetStream. Either
  - point NATS_URL at a running server started with JetStream (nats-server -js), or
  - put nats-server on the PATH (or name it in NATS_SERVER_BIN) and the demo starts its own:
      sudo apt-get install nats-server          (Debian, Ubuntu)
      sudo bash scripts/ensure-nats-server.sh   (installs it as root)
      brew install nats-server                  (macOS)
      go install github.com/nats-io/nats-server/v2@latest`;

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

/** Connect and check that JetStream answers; throws when either fails. */
async function connectWithJetStream(url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url.split(','), timeout: 2_000, name: 'callgate-demo' });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 2_000 });
    await jsm.getAccountInfo();
    return nc;
  } catch (error) {
    await nc.close().catch(() => {});
    throw new Error(`no JetStream there: ${errorText(error)}`);
  }
}

/** Run `nats-server` with JetStream on a free port; resolves once it says it is ready. */
function spawnServer(binary: string, port: number, storeDir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir];
    const proc = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let log = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${binary} was not ready within 10 s:\n${log}`));
    }, 10_000);
    proc.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('Server is ready')) {
        clearTimeout(timer);
        proc.stderr?.removeAllListeners('data');
        proc.stderr?.resume();
        resolve(proc);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${binary} exited with code ${code}:\n${log}`));
    });
  });
}

async function stopServer(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Use the NATS at `url` if it answers with JetStream; otherwise start a
 * private `nats-server` (`NATS_SERVER_BIN`, else the one on the PATH). Throws `NatsUnavailableError` with
 * both causes when neither works.
 */
export async function findOrStartNats(url: string, say: (line: string) => void): Promise<DemoNats> {
  try {
    const nc = await connectWithJetStream(url);
    say(`NATS: using ${url} (JetStream enabled)`);
    return { nc, url, started: false, close: () => nc.close() };
  } catch (error) {
    say(`NATS: nothing usable at ${url} (${errorText(error)}); starting its own nats-server`);
    const first = errorText(error);
    const port = await freePort();
    const storeDir = mkdtempSync(join(tmpdir(), 'callgate-demo-nats-'));
    const removeStore = () => rmSync(storeDir, { recursive: true, force: true });
    const tried: string[] = [];
    const chosen = process.env.NATS_SERVER_BIN;
    for (const binary of chosen ? [chosen] : ['nats-server', ...FALLBACK_BINARIES]) {
      let proc: ChildProcess | undefined;
      try {
        proc = await spawnServer(binary, port, storeDir);
        const own = `nats://127.0.0.1:${port}`;
        const nc = await connectWithJetStream(own);
        const server = proc;
        process.once('exit', () => server.kill('SIGKILL'));
        say(`NATS: started ${binary} on ${own} (store ${storeDir})`);
        return {
          nc,
          url: own,
          started: true,
          async close() {
            await nc.close().catch(() => {});
            await stopServer(server);
            removeStore();
            say(`NATS: stopped the demo's nats-server and removed its store`);
          },
        };
      } catch (spawnError) {
        if (proc) await stopServer(proc);
        tried.push(`${binary}: ${errorText(spawnError)}`);
        // Only a missing binary is worth looking for elsewhere.
        if ((spawnError as NodeJS.ErrnoException).code !== 'ENOENT') break;
      }
    }
    removeStore();
    throw new NatsUnavailableError(
      `could not use NATS at ${url} (${first}), and could not start nats-server:\n  ${tried.join('\n  ')}`,
    );
  }
}

export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'not found' : error.message;
  }
  return String(error);
}
