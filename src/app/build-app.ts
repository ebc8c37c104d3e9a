import type { Server } from 'node:http';
import { jetstream } from '@nats-io/jetstream';
import { connectNats } from '../bus/nats.js';
import { NotificationIntake } from '../bus/notifications.js';
import type { Config } from '../config.js';
import { createGraphClient } from '../graph/client.js';
import { createHttpServer, type Route } from '../http/server.js';
import { type CallInspector, createCallInspector } from '../inspect/inspector.js';
import { createLiveHub, type LiveHub } from '../live/hub.js';
import { createLogger, type Log } from '../log.js';
import { RequestsInFlight } from '../runtime/logic.js';
import { createMetrics, type Metrics } from '../service/metrics.js';
import { type ServiceOptions, startService } from '../service/service.js';
import type { Shares } from '../service/shares.js';
import { createKeyResolver } from '../webhook/keys.js';
import { createWebhookRoute } from '../webhook/route.js';
import { createNotificationVerifier } from '../webhook/verify.js';
import { CloseStack } from './close-stack.js';
import { measured, tokensFor } from './graph.js';
import { startHeapCompaction } from './heap.js';
import { mayActOn, openLeases, sharesOf } from './replicas.js';

/** Starting failed for a reason the operator can act on; the message says which. */
export class StartError extends Error {
  override readonly name = 'StartError';
  readonly code = 'START_FAILED';
}

export interface App {
  readonly log: Log;
  readonly metrics: Metrics;
  readonly http: Server;
  /** Listen, connect to NATS, restore the calls and consume; resolves once ready. */
  start(): Promise<void>;
  /** True while NATS, the stream, the consumer and the bucket are there and consuming. */
  isReady(): boolean;
  /** Close everything started, in reverse order (the service hands its work over first). */
  close(): Promise<void>;
}

/**
 * The composition root of `callgate serve`: every part is made here and
 * nowhere else, and every resource started is closed in reverse order. HTTP
 * listens first, so `/healthz` answers while NATS is still being reached.
 *
 * @example
 * const app = buildApp(loadConfig(process.env));
 * await app.start();
 * process.once('SIGTERM', () => void app.close());
 */
export function buildApp(config: Config): App {
  const log = createLogger({ level: config.logLevel, logPii: config.logPii });
  const metrics = createMetrics();
  const live = createLiveHub({ token: config.liveToken });
  const intake = new NotificationIntake(config.notificationsSubject);
  const stack = new CloseStack();
  let running: { isReady(): boolean; describe(): string } | undefined;
  const isReady = () => running?.isReady() ?? false;
  const http = createHttpServer({
    metrics: metrics.registry,
    isReady,
    routes: routesFor(config, live, intake, log),
  });

  async function start(): Promise<void> {
    await listen(http, config.http.port, config.http.host);
    stack.push('HTTP server', () => new Promise((resolve) => http.close(resolve)));
    // Its event streams end before the HTTP server closes, which waits for them.
    stack.push('live page', () => live.close());
    log.info({ port: portOf(http, config.http.port) }, 'HTTP listening');
    const connection = await connect(config, log);
    stack.push('NATS', () => connection.nc.drain());
    const inspector = config.inspect ? await inspect(config, log) : undefined;
    if (inspector) stack.push('inspector', () => inspector.stop());
    const replicas = {
      nc: connection.nc,
      subjectPrefix: config.subjectPrefix,
      replicas: config.streamReplicas,
      metrics,
      log,
    };
    // Identical replicas share the calls by partition leases; PARTITIONS > 1
    // keeps the hand-numbered partitions instead.
    let shares: Shares | undefined;
    const leases =
      config.partitions.count > 1
        ? undefined
        : await serve(() => openLeases(replicas, () => void shares?.plan()), log);
    const requests = new RequestsInFlight();
    const graph = createGraphClient({
      baseUrl: config.graph.baseUrl,
      apiVersion: config.graph.apiVersion,
      tokens: tokensFor(config, log),
      log: log.child({ component: 'graph' }),
      ...(leases && { mayAct: mayActOn(leases) }),
    });
    stack.push('Graph client', () => graph.close());
    const options: ServiceOptions = {
      nc: connection.nc,
      control: measured(graph, metrics, requests),
      log,
      metrics,
      subjectPrefix: config.subjectPrefix,
      notificationsSubject: config.notificationsSubject,
      answerTimeoutMs: config.answerTimeoutMs,
      retentionMs: config.retentionMs,
      isConnected: connection.isConnected,
      onRecord: (record, facts) => live.record(record, facts),
      // One running actor per call, so the inspector sees each call as one actor.
      ...(inspector && { inspect: inspector.inspect, keepAwake: true }),
    };
    const graceMs = Math.min(config.shutdownTimeoutMs, 8_000);
    if (leases) {
      const share = sharesOf(leases, options, {
        ...replicas,
        onOwned: (description) => live.instance(description),
      });
      shares = share;
      running = { isReady: () => share.isReady(), describe: () => share.description };
      await serve(() => share.start(), log);
      stack.push('service', () => share.stop(graceMs));
    } else {
      const one = await serve(
        () => startService({ ...options, partitions: config.partitions }),
        log,
      );
      running = { isReady: () => one.isReady(), describe: () => one.ownership.description };
      live.instance(one.ownership.description);
      stack.push('service', () => one.stop(graceMs));
    }
    intake.open(jetstream(connection.nc), isReady);
    if (config.collectWhenQuiet) {
      const stop = startHeapCompaction({
        log,
        inFlight: () => requests.count,
        onCollected: (pauseMs) => metrics.heapCollections.observe(pauseMs / 1000),
      });
      stack.push('heap collection', stop);
    }
    log.info({ owns: running.describe() }, 'ready');
  }

  return {
    log,
    metrics,
    http,
    start,
    isReady,
    close: () =>
      stack.close((name, error) => log.error({ err: error }, `closing the ${name} failed`)),
  };
}

/** The live page, and Graph's webhook when an app id is configured. */
function routesFor(
  config: Config,
  live: LiveHub,
  intake: NotificationIntake,
  log: Log,
): Record<string, Route> {
  const routes: Record<string, Route> = { ...live.routes };
  const { webhook } = config;
  if (!webhook.appId) {
    log.warn('webhook off: set WEBHOOK_APP_ID (or GRAPH_CLIENT_ID) to accept Graph notifications');
    return routes;
  }
  const keys = createKeyResolver({ openIdUrl: webhook.openIdUrl, log });
  void keys.refresh().catch(() => {});
  routes[`POST ${webhook.path}`] = createWebhookRoute({
    verify: createNotificationVerifier({
      keys,
      issuers: webhook.issuers,
      audience: webhook.appId,
      ...(webhook.tenants && { tenants: webhook.tenants }),
    }),
    publish: (body, fields) => intake.publish(body, fields),
    maxBytes: webhook.maxBytes,
    log: log.child({ component: 'webhook' }),
  });
  return routes;
}

async function connect(config: Config, log: Log) {
  try {
    return await connectNats({
      servers: config.nats.servers,
      auth: config.nats.auth,
      tls: config.nats.tls,
      name: 'callgate',
      log,
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.fatal({ err: message }, 'cannot connect to NATS');
    throw new StartError(message, { cause: error });
  }
}

/** The service started, or a start error saying why not (too little JetStream storage, say). */
async function serve<T>(start: () => Promise<T>, log: Log): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.fatal({ err: message }, 'cannot start the service');
    throw new StartError(
      `cannot set up the stream, the consumer or the bucket in JetStream: ${message}`,
      {
        cause: error,
      },
    );
  }
}

async function inspect(config: Config, log: Log): Promise<CallInspector> {
  try {
    return await createCallInspector({
      port: config.inspector.port,
      host: config.inspector.host,
      log: log.child({ component: 'inspector' }),
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.fatal({ err: message }, 'cannot start the Stately inspector');
    throw new StartError(`INSPECT=1: ${message}`, { cause: error });
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

function portOf(server: Server, configured: number): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : configured;
}
