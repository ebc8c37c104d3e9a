import type { Config } from '../config.js';
import { clientCredentials, staticToken, type TokenSource } from '../graph/tokens.js';
import type { Log } from '../log.js';
import { RequestsInFlight } from '../runtime/logic.js';
import type { CallControl } from '../runtime/ports.js';
import type { Metrics } from '../service/metrics.js';

/** Graph tokens as configured: a static token, or the client credentials flow. */
export function tokensFor(config: Config, log: Log): TokenSource {
  const auth = config.graph.auth;
  if (auth.kind === 'token') return staticToken(auth.token);
  return clientCredentials({
    tenantId: auth.tenantId,
    clientId: auth.clientId,
    clientSecret: auth.clientSecret,
    authority: auth.authorityUrl,
    ...(auth.tokenEndpoint && { tokenEndpoint: auth.tokenEndpoint }),
    log: log.child({ component: 'tokens' }),
  });
}

/**
 * Graph's reject with its duration and outcome counted, and counted in
 * `requests` while in flight (across the instance's partitions).
 */
export function measured(
  graph: CallControl,
  metrics: Metrics,
  requests = new RequestsInFlight(),
): CallControl {
  return {
    async reject(request, signal) {
      const started = performance.now();
      metrics.inFlight.inc();
      try {
        const outcome = await requests.track(graph.reject(request, signal));
        metrics.requestDuration.observe(
          { status: String(outcome.status ?? 'none') },
          (performance.now() - started) / 1000,
        );
        return outcome;
      } finally {
        metrics.inFlight.dec();
      }
    },
  };
}
