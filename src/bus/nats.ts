import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Log } from '../log.js';

/**
 * Connect to NATS and keep reconnecting for ever (back-off between tries),
 * logging every change of the connection's state.
 *
 * @example
 * const { nc, isConnected } = await connectNats({ servers: ['nats://127.0.0.1:4222'], name: 'callgate', log });
 */
export async function connectNats(options: {
  servers: string[];
  name: string;
  log: Log;
}): Promise<{ nc: NatsConnection; isConnected: () => boolean }> {
  const nc = await connect({
    servers: options.servers,
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    waitOnFirstConnect: true,
    pingInterval: 10_000,
    // Every KV write is a request; an async stack trace for each costs more
    // than the write itself on the hot path.
    noAsyncTraces: true,
  });
  const log = options.log.child({ component: 'nats' });
  log.info({ server: nc.getServer() }, 'connected to NATS');
  let connected = true;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect' || status.type === 'close') connected = false;
      if (status.type === 'reconnect') connected = true;
      const level = status.type === 'disconnect' || status.type === 'error' ? 'warn' : 'info';
      log[level](
        { status: status.type, server: 'server' in status ? status.server : undefined },
        `NATS ${status.type}`,
      );
    }
  })();
  return { nc, isConnected: () => connected };
}
