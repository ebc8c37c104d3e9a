import { afterAll, afterEach, beforeAll } from 'vitest';
import { createGraphEmulator, type GraphEmulator } from '../../src/tools/emulator/emulator.js';
import { type CallBus, openCallBus, serviceEnv } from './call-bus.js';
import { killAllCallgates } from './callgate-process.js';
import { type NatsServer, startNatsServer } from './nats-server.js';

/** What an end-to-end test file runs against. */
export interface E2e {
  readonly server: NatsServer;
  readonly graph: GraphEmulator;
  /** A call bus on `prefix`, closed with the test (`scope: 'test'`) or the file. */
  openBus(prefix: string): Promise<CallBus>;
  /**
   * A prefix not used before in this file (`name` and a number), its call
   * bus, and the environment of a service on it: each test its own subjects,
   * stream, consumer and store.
   */
  fresh(
    name: string,
    answerTimeoutMs: number,
    extra?: Record<string, string>,
  ): Promise<{ prefix: string; bus: CallBus; env: Record<string, string> }>;
  /** The environment `callgate serve` runs with against this server and emulator. */
  env(
    prefix: string,
    answerTimeoutMs: number,
    extra?: Record<string, string>,
  ): Record<string, string>;
}

/**
 * A real nats-server and the Graph emulator for one test file, started before
 * its first test, with their teardown. `scope: 'test'`: after each test every
 * `callgate` process is killed, the call buses are closed and the emulator is
 * reset, so each test starts its own service on its own prefix. `scope:
 * 'file'`: one service (started by the file) lives through all its tests.
 */
export function useE2e(options: { scope: 'test' | 'file' }): E2e {
  let server: NatsServer | undefined;
  let graph: GraphEmulator | undefined;
  const buses: CallBus[] = [];
  const closeBuses = () => Promise.all(buses.splice(0).map((bus) => bus.close()));
  let prefixes = 0;

  beforeAll(async () => {
    server = await startNatsServer();
    graph = await createGraphEmulator();
  });
  if (options.scope === 'test') {
    afterEach(async () => {
      await killAllCallgates();
      graph?.reset();
      await closeBuses();
    });
  }
  afterAll(async () => {
    await killAllCallgates();
    await closeBuses();
    await graph?.close();
    await server?.dispose();
  });

  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useE2e: used before its beforeAll ran');
    return value;
  };
  return {
    get server() {
      return started(server);
    },
    get graph() {
      return started(graph);
    },
    async openBus(prefix) {
      const bus = await openCallBus(started(server).url, prefix);
      buses.push(bus);
      return bus;
    },
    async fresh(name, answerTimeoutMs, extra) {
      const prefix = `${name}${++prefixes}`;
      const bus = await this.openBus(prefix);
      return { prefix, bus, env: this.env(prefix, answerTimeoutMs, extra) };
    },
    env(prefix, answerTimeoutMs, extra) {
      return serviceEnv({
        natsUrl: started(server).url,
        graphUrl: started(graph).url,
        prefix,
        answerTimeoutMs,
        ...(extra && { extra }),
      });
    },
  };
}
