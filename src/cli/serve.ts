import { buildApp, StartError } from '../app/build-app.js';
import { type Config, ConfigError, loadConfig } from '../config.js';

/** SIGTERM/SIGINT to exit, at most. */
const EXIT_WITHIN_MS = 10_000;

/**
 * `callgate serve`: the service. Exit codes: 0 after a clean shutdown, 1 on a
 * fatal error, 2 on bad configuration.
 */
export async function runServe(
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`callgate serve: ${error.message}\n`);
    return 2;
  }
  const app = buildApp(config);
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      app.log.info({ signal }, 'shutting down');
      setTimeout(() => {
        app.log.error('shutdown took too long; exiting');
        process.exit(1);
      }, EXIT_WITHIN_MS - 500).unref();
      void app.close().then(() => {
        app.log.info('stopped');
        resolve(0);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  try {
    await app.start();
  } catch (error) {
    if (!(error instanceof StartError)) throw error;
    process.stderr.write(`callgate serve: ${error.message}\n`);
    return 1;
  }
  return stopped;
}
