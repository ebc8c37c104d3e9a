import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { request } from 'undici';
import { createHttpServer } from '../../src/http/server.js';
import { createLogger, type Log } from '../../src/log.js';
import { createMetrics } from '../../src/service/metrics.js';
import { createKeyResolver, type KeyResolverOptions } from '../../src/webhook/keys.js';
import { createWebhookRoute } from '../../src/webhook/route.js';
import { createNotificationVerifier, type VerifyOptions } from '../../src/webhook/verify.js';

export const APP_ID = '3f1b2c4d-0000-4000-8000-00000000a99b';
export const ISSUER = 'https://api.botframework.com';
export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const PATH = '/api/calling';

/** A signing key pair made at test time; `jwk` is the public half as a key set serves it. */
export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly jwk: JWK;
}

export async function newSigningKey(kid: string = randomUUID()): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig' };
  return { kid, privateKey, publicKey, jwk };
}

const nowSec = () => Math.floor(Date.now() / 1000);

/**
 * A token as Graph signs it (RS256, `kid`, app audience, botframework issuer,
 * `tid`, valid from a minute ago for an hour); `claims` override or add
 * claims, an `undefined` claim is left out.
 */
export function mintToken(key: SigningKey, claims: Record<string, unknown> = {}): Promise<string> {
  const payload: JWTPayload = {
    iss: ISSUER,
    aud: APP_ID,
    tid: TENANT,
    iat: nowSec() - 60,
    nbf: nowSec() - 60,
    exp: nowSec() + 3600,
    ...claims,
  };
  for (const [name, value] of Object.entries(payload)) {
    if (value === undefined) delete payload[name];
  }
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
    .sign(key.privateKey);
}

export function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A local OpenID configuration and JWKS, counting how often each is fetched. */
export interface KeyServer {
  readonly openIdUrl: string;
  readonly fetches: { openId: number; jwks: number };
  /** Serve these keys from now on (a rotation). */
  serve(keys: readonly SigningKey[]): void;
  /** Answer every request with this status instead (500: the endpoint is down). */
  fail(status: number | undefined): void;
  close(): Promise<void>;
}

export async function startKeyServer(keys: readonly SigningKey[]): Promise<KeyServer> {
  let served = keys.map((key) => key.jwk);
  let failWith: number | undefined;
  const fetches = { openId: 0, jwks: 0 };
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (failWith !== undefined) {
      res.writeHead(failWith).end();
      return;
    }
    if (path === '/.well-known/openid-configuration') {
      fetches.openId += 1;
      json(res, { issuer: ISSUER, jwks_uri: `${origin(server)}/keys` });
    } else if (path === '/keys') {
      fetches.jwks += 1;
      json(res, { keys: served });
    } else {
      res.writeHead(404).end();
    }
  });
  await listen(server);
  return {
    openIdUrl: `${origin(server)}/.well-known/openid-configuration`,
    fetches,
    serve(next) {
      served = next.map((key) => key.jwk);
    },
    fail(status) {
      failWith = status;
    },
    close() {
      server.closeAllConnections();
      return close(server);
    },
  };
}

/** A settable epoch-ms clock for the key resolver's cache and cool-down, and the verifier. */
export function fakeClock(start = Date.now()) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

/** Log lines of a real service logger (with its redaction), read back as text. */
export function captureLog(): { log: Log; text: () => string } {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return { log: createLogger({ level: 'trace', destination }), text: () => text };
}

export interface Published {
  readonly body: string;
  readonly headers: Record<string, string>;
}

export interface WebhookHarness {
  readonly url: string;
  readonly port: number;
  readonly published: Published[];
  readonly keys: KeyServer;
  readonly clock: ReturnType<typeof fakeClock>;
  readonly logText: () => string;
  /** Make the next publishes fail (a JetStream outage). */
  failPublish(fail: boolean): void;
  close(): Promise<void>;
}

/**
 * The webhook as `callgate serve` would mount it: `createHttpServer` with the
 * route at {@link PATH}, the real verifier (caching verified tokens) and key
 * resolver against a local key server, both on `clock`, and a publish that
 * records what it was given.
 */
export async function startWebhook(
  options: {
    keys?: readonly SigningKey[];
    resolver?: Partial<KeyResolverOptions>;
    verify?: Partial<VerifyOptions>;
    maxBytes?: number;
    maxConcurrentBodies?: number;
    bodyTimeoutMs?: number;
  } = {},
): Promise<WebhookHarness> {
  const keys = await startKeyServer(options.keys ?? []);
  const clock = fakeClock();
  const { log, text } = captureLog();
  const resolver = createKeyResolver({
    openIdUrl: keys.openIdUrl,
    now: clock.now,
    timeoutMs: 2_000,
    log,
    ...options.resolver,
  });
  const verify = createNotificationVerifier({
    keys: resolver,
    issuers: [ISSUER, 'https://graph.microsoft.com'],
    audience: APP_ID,
    now: clock.now,
    ...options.verify,
  });
  const published: Published[] = [];
  let publishFails = false;
  const route = createWebhookRoute({
    verify,
    publish: async (body, headers) => {
      if (publishFails) throw new Error('no JetStream ack');
      published.push({ body: Buffer.from(body).toString('utf8'), headers });
    },
    log,
    ...(options.maxBytes !== undefined && { maxBytes: options.maxBytes }),
    ...(options.maxConcurrentBodies !== undefined && {
      maxConcurrentBodies: options.maxConcurrentBodies,
    }),
    ...(options.bodyTimeoutMs !== undefined && { bodyTimeoutMs: options.bodyTimeoutMs }),
  });
  const server = createHttpServer({
    metrics: createMetrics().registry,
    isReady: () => true,
    routes: { [`POST ${PATH}`]: route },
  });
  await listen(server);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${PATH}`,
    port,
    published,
    keys,
    clock,
    logText: text,
    failPublish(fail) {
      publishFails = fail;
    },
    async close() {
      server.closeAllConnections();
      await close(server);
      await keys.close();
    },
  };
}

/** A Graph-format incoming-call batch. */
export function incomingBatch(callId = randomUUID()): Record<string, unknown> {
  return {
    '@odata.type': '#microsoft.graph.commsNotifications',
    value: [
      {
        '@odata.type': '#microsoft.graph.commsNotification',
        changeType: 'created',
        resourceUrl: `/communications/calls/${callId}`,
        resourceData: {
          '@odata.type': '#microsoft.graph.call',
          state: 'incoming',
          direction: 'incoming',
          tenantId: TENANT,
        },
      },
    ],
  };
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** POST to the webhook, JSON by default; `token: null` sends no Authorization header. */
export async function post(
  url: string,
  options: {
    token?: string | null;
    authorization?: string;
    body?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    ...options.headers,
  };
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  else if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await request(url, {
    method: 'POST',
    headers,
    body: options.body ?? JSON.stringify(incomingBatch()),
  });
  await response.body.dump();
  return { status: response.statusCode, headers: response.headers };
}

function json(res: import('node:http').ServerResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

function origin(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
