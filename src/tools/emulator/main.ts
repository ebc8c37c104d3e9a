import { once } from 'node:events';
import { pino } from 'pino';
import { createGraphEmulator, type GraphEmulator } from './emulator.js';

export interface EmulateGraphOptions {
  /** Default 4010; 0 picks a free port (the log line gives the URL). */
  readonly port?: number;
  /** Default `127.0.0.1`. */
  readonly host?: string;
  /** Delay added before every reject answer. Default 0. */
  readonly latencyMs?: number;
  /** `expires_in` of issued tokens. Default 3599. */
  readonly tokenTtlSeconds?: number;
  /** With `clientSecret`: the only credentials that get tokens. */
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** How long a placed call rings before the emulator ends it, as Graph would. Default 15000. */
  readonly answerTimeoutMs?: number;
  /** pino level. Default `LOG_LEVEL`, else `info`. */
  readonly logLevel?: string;
  /** Where the JSON log lines go. Default stdout. */
  readonly destination?: NodeJS.WritableStream;
  /** Stops the emulator when it aborts (besides SIGINT and SIGTERM). */
  readonly signal?: AbortSignal;
  /** Called once it listens. */
  readonly onReady?: (emulator: GraphEmulator) => void;
}

export const DEFAULT_EMULATOR_PORT = 4010;

/**
 * `callgate emulate-graph`: run the loopback Graph emulator until SIGINT,
 * SIGTERM or `signal`. Logs one JSON line `{"url": …, "openIdUrl": …,
 * "issuer": …, "msg": "graph emulator listening"}` when ready, so a parent
 * process can find the port (and configure the webhook: `WEBHOOK_OPENID_URL`,
 * `WEBHOOK_ISSUERS`).
 *
 * @example
 * // src/cli.ts
 * program.command('emulate-graph').option('--port <n>', 'port', Number)
 *   .action((o) => runEmulateGraph({ port: o.port }));
 */
export async function runEmulateGraph(options: EmulateGraphOptions = {}): Promise<void> {
  const log = pino(
    { name: 'graph-emulator', level: options.logLevel ?? process.env.LOG_LEVEL ?? 'info' },
    options.destination ?? process.stdout,
  );
  const credentials =
    options.clientId !== undefined && options.clientSecret !== undefined
      ? { clientId: options.clientId, clientSecret: options.clientSecret }
      : undefined;
  const emulator = await createGraphEmulator({
    port: options.port ?? DEFAULT_EMULATOR_PORT,
    host: options.host ?? '127.0.0.1',
    latencyMs: options.latencyMs ?? 0,
    tokenTtlSeconds: options.tokenTtlSeconds ?? 3599,
    ...(credentials && { credentials }),
    ...(options.answerTimeoutMs !== undefined && { answerTimeoutMs: options.answerTimeoutMs }),
    log,
  });
  log.info(
    {
      url: emulator.url,
      port: emulator.port,
      control: `${emulator.url}/_emulator/stats`,
      openIdUrl: emulator.openIdUrl,
      issuer: emulator.issuer,
    },
    'graph emulator listening',
  );
  options.onReady?.(emulator);

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  options.signal?.addEventListener('abort', onSignal, { once: true });
  try {
    if (!options.signal?.aborted) await once(stop.signal, 'abort');
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    options.signal?.removeEventListener('abort', onSignal);
    await emulator.close();
    log.info(emulator.stats(), 'graph emulator stopped');
  }
}
