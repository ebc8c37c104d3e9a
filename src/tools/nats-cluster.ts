import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freePort, type NatsServerProcess, startNatsServer } from './nats-server.js';

/** A JetStream cluster of `nats-server` children on loopback, each with its own ports and store. */
export interface NatsCluster {
  readonly nodes: readonly NatsServerProcess[];
  /** Every node's client URL, comma-separated (`NATS_URL`). */
  readonly url: string;
  /** Resolves once JetStream answers through every node (a meta leader is elected). */
  ready(timeoutMs?: number): Promise<void>;
  /** Stop every node and remove the stores. */
  dispose(): Promise<void>;
}

/**
 * Start `size` nats-servers routed to each other as one JetStream cluster
 * (JetStream clustering needs 2.2 or newer; three nodes to keep a quorum
 * when one is lost).
 *
 * @example
 * const cluster = await startNatsCluster(3);
 * await cluster.ready();
 * // NATS_URL=cluster.url, STREAM_REPLICAS=3
 */
export async function startNatsCluster(
  size: number,
  options: { binary?: string; name?: string } = {},
): Promise<NatsCluster> {
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((port) => `nats-route://127.0.0.1:${port}`).join(',');
  const name = options.name ?? `callgate-${process.pid}`;
  const nodes = await Promise.all(
    routePorts.map((port, i) =>
      startNatsServer({
        ...(options.binary && { binary: options.binary }),
        args: [
          '--server_name',
          `${name}-n${i}`,
          '--cluster_name',
          name,
          '--cluster',
          `nats://127.0.0.1:${port}`,
          '--routes',
          routes,
        ],
      }),
    ),
  );
  const url = nodes.map((node) => node.url).join(',');
  return {
    nodes,
    url,
    // Each node answers JetStream requests (a meta leader is known to all).
    ready: async (timeoutMs = 30_000) => {
      for (const node of nodes) await jetStreamReady(node.url, timeoutMs);
    },
    async dispose() {
      await Promise.all(nodes.map((node) => node.dispose()));
    },
  };
}

/** Poll until JetStream answers an account info request through `url`. */
export async function jetStreamReady(url: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  const nc = await connect({ servers: url.split(','), reconnect: true });
  try {
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2_000 });
        await jsm.getAccountInfo();
        return;
      } catch (error) {
        if (Date.now() > until) throw error;
        await sleep(200);
      }
    }
  } finally {
    await nc.close();
  }
}
