import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;

export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Prometheus text, as `GET /metrics` serves it (a prom-client `Registry` is one). */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface HttpServerOptions {
  readonly metrics: MetricsSource;
  /** True once NATS, the stream and the consumer are ready. */
  readonly isReady: () => boolean;
  /** Extra routes by "METHOD /path" (the webhook, the live page). */
  readonly routes?: Readonly<Record<string, Route>>;
}

/**
 * The service's HTTP routes: `GET /healthz`, `GET /readyz`, `GET /metrics`,
 * and whatever `routes` adds.
 *
 * @example
 * const server = createHttpServer({ metrics: metrics.registry, isReady: () => service.isReady() });
 * server.listen(8080);
 */
export function createHttpServer(options: HttpServerOptions): Server {
  const routes: Record<string, Route> = {
    'GET /healthz': (_req, res) => text(res, 200, 'ok\n'),
    'GET /readyz': (_req, res) =>
      options.isReady() ? text(res, 200, 'ready\n') : text(res, 503, 'not ready\n'),
    'GET /metrics': async (_req, res) => {
      const body = await options.metrics.metrics();
      res.writeHead(200, { 'content-type': options.metrics.contentType });
      res.end(body);
    },
    ...options.routes,
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const route = routes[`${req.method} ${path}`];
    if (!route) {
      text(res, 404, 'not found\n');
      return;
    }
    Promise.resolve(route(req, res)).catch((error: unknown) => {
      if (!res.headersSent) text(res, 500, `${(error as Error).message}\n`);
      else res.destroy();
    });
  });
  // A client that is slow to send its headers or its request is let go.
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  return server;
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
}
