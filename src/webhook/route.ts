import type { IncomingMessage, ServerResponse } from 'node:http';
import { isLegacyNotification } from '../contract/graph-notifications.js';
import type { Route } from '../http/server.js';
import type { Log } from '../log.js';
import { type BodyRead, readBody } from './body.js';
import type { VerifyResult } from './verify.js';

/**
 * `POST {WEBHOOK_PATH}`: Graph's callback. Answers, in this order: `415` when
 * the body is not declared JSON, `413` when it declares more than allowed,
 * `401` for a missing or bad token (checked before a byte of the body is
 * read), `503` when too many bodies are being read at once, `413` when more
 * arrives than allowed (read no further), `400` when the body is not a JSON
 * object, `204` for a legacy notification, and otherwise `202` once
 * `publish` has resolved (`503` when it failed, so Graph retries). A body
 * must arrive within a time limit. Nothing is published for a refused
 * request, and the token is never logged.
 */

/** Graph's correlation headers, passed to `publish` when present (lower case). */
export const CORRELATION_HEADERS = [
  'scenario-id',
  'x-microsoft-skype-chain-id',
  'x-microsoft-skype-message-id',
  'client-request-id',
] as const;

/** The header `publish` receives with the verified tenant id. */
export const TENANT_HEADER = 'tenant-id';

/** A correlation header longer than this is not passed on. */
const MAX_HEADER_CHARS = 256;
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/;

export interface WebhookRouteOptions {
  /** Usually `createNotificationVerifier(…)`. */
  readonly verify: (authorizationHeader: string | undefined) => Promise<VerifyResult>;
  /** Store the batch (JetStream `graph.notifications`, ack awaited); reject to answer 503. */
  readonly publish: (body: Uint8Array, headers: Record<string, string>) => Promise<void>;
  /** The largest body accepted (default 1 MiB). */
  readonly maxBytes?: number;
  /** Bodies read at once, at most (default 64); beyond, the answer is 503 with Retry-After. */
  readonly maxConcurrentBodies?: number;
  /** A body must have arrived whole within this time (default 10 s). */
  readonly bodyTimeoutMs?: number;
  readonly log: Log;
}

/**
 * @example
 * const route = createWebhookRoute({
 *   verify: createNotificationVerifier({ keys: resolver, issuers, audience: appId }),
 *   publish: async (body, headers) => { await js.publish('graph.notifications', body, { headers: toNats(headers) }); },
 *   log: log.child({ component: 'webhook' }),
 * });
 * createHttpServer({ metrics, isReady, routes: { [`POST ${config.webhook.path}`]: route } });
 */
export function createWebhookRoute(options: WebhookRouteOptions): Route {
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 10_000;
  const log = options.log;
  const bodies = new Slots(options.maxConcurrentBodies ?? 64);

  return async (req, res) => {
    const started = performance.now();
    const answer = (status: number, fields: Record<string, unknown> = {}, close = false) => {
      send(res, status, close);
      const ms = Math.round((performance.now() - started) * 100) / 100;
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'debug';
      log[level]({ status, ms, ...fields }, 'webhook answered');
    };

    if (!JSON_TYPE.test(mediaType(req.headers['content-type']))) {
      return answer(415, { reason: 'content type' }, true);
    }
    if (declaredLength(req) > maxBytes) return answer(413, { reason: 'declared size' }, true);
    // The token first: nobody without one gets a byte of the body read.
    const verdict = await options.verify(req.headers.authorization);
    if (!verdict.ok) {
      const status = verdict.reason === 'keys-unavailable' ? 503 : 401;
      return answer(status, { reason: verdict.reason, detail: verdict.detail }, true);
    }
    if (!bodies.take()) return answer(503, { reason: 'too many bodies at once' }, true);
    let read: BodyRead;
    try {
      read = await readBody(req, maxBytes, bodyTimeoutMs);
    } finally {
      bodies.give();
    }
    if (read.kind === 'too-large') return answer(413, { reason: 'size' }, true);
    if (read.kind === 'aborted') return void res.destroy();

    const payload = parseJson(read.body);
    if (!isObject(payload)) return answer(400, { reason: 'not a JSON object' });
    if (isLegacyNotification(payload)) return answer(204, { reason: 'legacy notification' });

    const headers = messageHeaders(req, verdict.tenantId);
    try {
      await options.publish(read.body, headers);
    } catch (error) {
      return answer(503, { reason: 'publish failed', err: (error as Error).message });
    }
    answer(202, { tenantId: verdict.tenantId, bytes: read.body.byteLength });
  };
}

/** A fixed number of places, taken and given back. */
class Slots {
  #free: number;

  constructor(count: number) {
    this.#free = count;
  }

  take(): boolean {
    if (this.#free === 0) return false;
    this.#free--;
    return true;
  }

  give(): void {
    this.#free++;
  }
}

function send(res: ServerResponse, status: number, close: boolean): void {
  const headers: Record<string, string> = {};
  if (close) headers.connection = 'close';
  if (status === 401) headers['www-authenticate'] = 'Bearer error="invalid_token"';
  if (status === 503) headers['retry-after'] = '1';
  res.writeHead(status, headers);
  res.end();
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** The declared Content-Length, or 0 when there is none (chunked). */
function declaredLength(req: IncomingMessage): number {
  const value = req.headers['content-length'];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : 0;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(strictUtf8.decode(body));
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function messageHeaders(req: IncomingMessage, tenantId: string): Record<string, string> {
  const headers: Record<string, string> = { [TENANT_HEADER]: tenantId };
  for (const name of CORRELATION_HEADERS) {
    const value = req.headers[name];
    if (typeof value === 'string' && value !== '' && value.length <= MAX_HEADER_CHARS) {
      headers[name] = value;
    }
  }
  return headers;
}
