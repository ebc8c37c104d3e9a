import type { Server } from 'node:http';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { connectNats } from '../bus/nats.js';
import { type Config, ConfigError, loadConfig } from '../config.js';
import { createGraphClient, type GraphClient } from '../graph/client.js';
import { clientCredentials, staticToken, type TokenSource } from '../graph/tokens.js';
import { type CallInspector, createCallInspector } from '../inspect/inspector.js';
import { createLiveHub } from '../live/hub.js';
import { createLogger, type Log } from '../log.js';
import type { CallControl } from '../runtime/ports.js';
import { createHttpServer, type Route } from '../service/http.js';
import { createMetrics, type Metrics } from '../service/metrics.js';
import { type Service, startService } from '../service/service.js';
import { createKeyResolver } from '../webhook/keys.js';
import { createWebhookRoute } from '../webhook/route.js';
import { createNotificationVerifier } from '../webhook/verify.js';

/** SIGTERM/SIGINT to exit, at most. */
const EXIT_WITHIN_MS = 10_000;

function tokensFor(config: Config, log: Log): TokenSource {
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

/** Graph's reject with its duration and outcome counted. */
function measured(graph: CallControl, metrics: Metrics): CallControl {
  return {
    async reject(request, signal) {
      const started = performance.now();
      metrics.inFlight.inc();
      try {
        const outcome = await graph.reject(request, signal);
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

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

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
    if (error instanceof ConfigError) {
      process.stderr.write(`callgate serve: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const log = createLogger({ level: config.logLevel, logPii: config.logPii });
  const metrics = createMetrics();
  let service: Service | undefined;
  let nc: NatsConnection | undefined;
  let graph: GraphClient | undefined;
  let inspector: CallInspector | undefined;
  // The live page (`GET /`, `GET /events`), fed every lifecycle record.
  const live = createLiveHub({
    deadlineOf: (callId) => service?.runtime.contextOf(callId)?.deadline,
  });
  const routes: Record<string, Route> = { ...live.routes };
  if (config.webhook.appId) {
    const keys = createKeyResolver({ openIdUrl: config.webhook.openIdUrl, log });
    void keys.refresh().catch(() => {});
    routes[`POST ${config.webhook.path}`] = createWebhookRoute({
      verify: createNotificationVerifier({
        keys: keys.getKey,
        issuers: config.webhook.issuers,
        audience: config.webhook.appId,
        ...(config.webhook.tenants && { tenants: config.webhook.tenants }),
      }),
      // Stored in JetStream (ack awaited) before Graph hears 202; until the
      // bus is up this throws, and Graph, answered 503, sends it again.
      publish: async (body, fields) => {
        if (!nc || !service?.isReady()) throw new Error('not connected to NATS yet');
        const h = natsHeaders();
        for (const [name, value] of Object.entries(fields)) h.set(name, value);
        const messageId = fields['x-microsoft-skype-message-id'];
        await jetstream(nc).publish(config.notificationsSubject, body, {
          headers: h,
          ...(messageId && { msgID: messageId }),
        });
      },
      maxBytes: config.webhook.maxBytes,
      log: log.child({ component: 'webhook' }),
    });
  } else {
    log.warn('webhook off: set WEBHOOK_APP_ID (or GRAPH_CLIENT_ID) to accept Graph notifications');
  }
  const http = createHttpServer({
    metrics,
    isReady: () => service?.isReady() ?? false,
    routes,
  });
  await listen(http, config.http.port, config.http.host);
  const address = http.address();
  log.info(
    { port: typeof address === 'object' && address ? address.port : config.http.port },
    'HTTP listening',
  );

  let stopping: Promise<number> | undefined;
  const shutdown = (signal: string) => {
    stopping ??= (async () => {
      log.info({ signal }, 'shutting down');
      setTimeout(() => {
        log.error('shutdown took too long; exiting');
        process.exit(1);
      }, EXIT_WITHIN_MS - 500).unref();
      await service?.stop(Math.min(config.shutdownTimeoutMs, EXIT_WITHIN_MS - 2_000));
      await graph?.close();
      await nc?.drain();
      await inspector?.stop();
      live.close();
      await new Promise((resolve) => http.close(resolve));
      log.info('stopped');
      return 0;
    })();
    return stopping;
  };
  const stopped = new Promise<number>((resolve) => {
    process.once('SIGTERM', () => void shutdown('SIGTERM').then(resolve));
    process.once('SIGINT', () => void shutdown('SIGINT').then(resolve));
  });

  let connection: Awaited<ReturnType<typeof connectNats>>;
  try {
    connection = await connectNats({
      servers: config.nats.servers,
      auth: config.nats.auth,
      tls: config.nats.tls,
      name: 'callgate',
      log,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.fatal({ err: message }, 'cannot connect to NATS');
    process.stderr.write(`callgate serve: ${message}\n`);
    return 1;
  }
  nc = connection.nc;
  if (config.inspect) {
    try {
      inspector = await createCallInspector({
        port: config.inspector.port,
        host: config.inspector.host,
        log: log.child({ component: 'inspector' }),
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log.fatal({ err: message }, 'cannot start the Stately inspector');
      process.stderr.write(`callgate serve: INSPECT=1: ${message}\n`);
      return 1;
    }
  }
  graph = createGraphClient({
    baseUrl: config.graph.baseUrl,
    apiVersion: config.graph.apiVersion,
    tokens: tokensFor(config, log),
    log: log.child({ component: 'graph' }),
  });
  service = await startService({
    nc,
    control: measured(graph, metrics),
    log,
    metrics,
    subjectPrefix: config.subjectPrefix,
    notificationsSubject: config.notificationsSubject,
    answerTimeoutMs: config.answerTimeoutMs,
    retentionMs: config.retentionMs,
    partitions: config.partitions,
    isConnected: connection.isConnected,
    onRecord: live.record,
    // One running actor per call, so the inspector sees each call as one actor.
    ...(inspector && { inspect: inspector.inspect, keepAwake: true }),
  });
  const { partition } = service.names;
  log.info(
    {
      stream: service.names.stream,
      consumer: service.names.consumer,
      ...(partition && {
        partition: `${partition.index} of ${partition.count}`,
        router: partition.router !== undefined,
      }),
    },
    'ready',
  );
  const jsm = await jetstreamManager(nc);
  const lag = setInterval(() => {
    const names = service?.names;
    if (!names) return;
    jsm.consumers
      .info(names.stream, names.consumer)
      .then((info) => metrics.consumerLag.set(info.num_pending + info.num_ack_pending))
      .catch(() => {});
  }, 5_000);
  lag.unref();
  return stopped;
}
