import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './nats.js';
import { type DemoService, startDemoService } from './service.js';

/** The demo's `callgate serve` processes: identical but for their HTTP ports. */
export interface DemoInstances {
  readonly services: readonly DemoService[];
  /** The first instance's HTTP port: Graph's notifications go there. */
  readonly httpPort: number;
  /** Where their logs are (`service-<n>.log`). */
  readonly logDir: string;
}

/**
 * Start `count` identical instances with `env`, each ready before this
 * resolves; their logs go to `logDir` (default: a new temporary folder).
 */
export async function startInstances(options: {
  count: number;
  env: Record<string, string>;
  signal: AbortSignal;
  started: (service: DemoService) => void;
  logDir?: string;
}): Promise<DemoInstances> {
  const logDir = options.logDir ?? mkdtempSync(join(tmpdir(), 'callgate-demo-'));
  const ports = await Promise.all(Array.from({ length: options.count }, () => freePort()));
  const services = await Promise.all(
    ports.map(async (httpPort, i) => {
      const service = await startDemoService({
        env: { ...options.env, HTTP_PORT: String(httpPort), HTTP_HOST: '127.0.0.1' },
        httpPort,
        logFile: join(logDir, options.count > 1 ? `service-${i + 1}.log` : 'service.log'),
        signal: options.signal,
      });
      options.started(service);
      return service;
    }),
  );
  return { services, httpPort: ports[0] ?? 0, logDir };
}
