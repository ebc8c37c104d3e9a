import { rmSync } from 'node:fs';
import {
  freePort,
  type NatsServerProcess,
  startNatsServer as startServer,
} from '../../src/tools/nats-server.js';
import { onEarlyExit } from './procs.js';

export { freePort };

export interface BenchNatsServer {
  readonly url: string;
  readonly pid: number;
  /** SIGTERM (SIGKILL after 5 s), then remove the store. */
  dispose(): Promise<void>;
}

/**
 * A fresh `nats-server` with JetStream on a free loopback port and a
 * temporary store, for one benchmark run; killed and removed even when the
 * bench is interrupted.
 */
export async function startNatsServer(): Promise<BenchNatsServer> {
  const server: NatsServerProcess = await startServer();
  const forget = onEarlyExit(() => {
    if (server.pid) process.kill(server.pid, 'SIGKILL');
    rmSync(server.storeDir, { recursive: true, force: true });
  });
  return {
    url: server.url,
    get pid() {
      return server.pid;
    },
    async dispose() {
      await server.dispose();
      forget();
    },
  };
}
