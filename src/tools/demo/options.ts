import { parseArgs } from 'node:util';

export const USAGE = `usage: npm run demo -- [--calls N] [--rate R] [--seed S] [--replicas N]

Starts the Graph emulator and the service, places a realistic mix of calls
through the webhook, publishes the bot's decisions over NATS JetStream, then
prints how every call ended, the rate offered and sustained, and the latency.
  --calls N   calls to place (default 1500)
  --rate R    new calls a second (default 100); when the machine cannot keep
              up, new calls wait and the table shows the rate sustained
  --seed S    seed of the mix and timing (default 1)
  --replicas N  run N identical instances (1-5, default 1); with more than one,
              one is killed (SIGKILL) halfway and the others take its calls over,
              on a three-node cluster when the demo starts its own servers
NATS_URL (default nats://127.0.0.1:4222) is used when it answers with JetStream;
otherwise the demo starts its own nats-server (NATS_SERVER_BIN, else the one fetched into .tools/, else from the PATH).`;

export interface DemoOptions {
  readonly calls: number;
  readonly rate: number;
  readonly seed: number;
  readonly replicas: number;
}

/**
 * The demo's flags; `'help'` for `--help`. Throws an `Error` naming the bad
 * flag (unknown flags included).
 *
 * @example
 * parseDemoArgs(['--calls', '300']) // { calls: 300, rate: 100, seed: 1, replicas: 1 }
 */
export function parseDemoArgs(args: string[]): DemoOptions | 'help' {
  const { values } = parseArgs({
    args,
    options: {
      calls: { type: 'string', default: '1500' },
      rate: { type: 'string', default: '100' },
      seed: { type: 'string', default: '1' },
      replicas: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const whole = (name: 'calls' | 'rate' | 'seed' | 'replicas', min: number, max = 2 ** 53 - 1) => {
    const text = values[name];
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
      const range = max < 2 ** 53 - 1 ? `from ${min} to ${max}` : `≥ ${min}`;
      throw new Error(`--${name}: must be a whole number ${range} (got "${text}")`);
    }
    return n;
  };
  return {
    calls: whole('calls', 1),
    rate: whole('rate', 1),
    seed: whole('seed', 0),
    replicas: whole('replicas', 1, 5),
  };
}
