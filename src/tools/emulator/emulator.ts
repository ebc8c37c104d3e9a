import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  handleCallsControl,
  handleNotificationKeys,
  handleNotificationOpenId,
} from './calls-route.js';
import { CONTROL_PREFIX, handleControl } from './control-route.js';
import { callKey, createFaultBook, type FaultRule, parseFaultRule } from './faults.js';
import { BodyTooLargeError, send, sendGraphError } from './http.js';
import {
  createNotificationKeys,
  createNotifier,
  type EmulatedCall,
  type HangUpOptions,
  NOTIFICATION_ISSUER,
  type NotificationKeys,
  type Notifier,
  type NotifierOptions,
  type PlaceCallOptions,
  type PlacedCall,
  type SentNotification,
  signNotificationToken,
} from './notifier.js';
import { handleReject, type RejectRouteOptions } from './reject-route.js';
import * as State from './state.js';
import { handleOpenIdConfiguration, handleToken, type TokenRouteOptions } from './token-route.js';

export type { Fault, FaultRule } from './faults.js';
export type {
  EmulatedCall,
  HangUpOptions,
  PlaceCallOptions,
  PlacedCall,
  SentNotification,
} from './notifier.js';
export type { EmulatorStats, ReceivedReject } from './state.js';

/** The slice of a pino logger the emulator uses. */
export interface EmulatorLog {
  debug(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface GraphEmulatorOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Default `127.0.0.1`. */
  readonly host?: string;
  /** Added before every reject answer. Default 0. */
  readonly latencyMs?: number;
  /** `expires_in` of issued tokens. Default 3599, as Entra ID. */
  readonly tokenTtlSeconds?: number;
  /** Only these credentials get tokens; by default any client id and secret do. */
  readonly credentials?: { readonly clientId: string; readonly clientSecret: string };
  /** For `rate` faults. Default `Math.random`. */
  readonly random?: () => number;
  /** `iss` of the notification tokens. Default `https://api.botframework.com`. */
  readonly issuer?: string;
  /** Lifetime of each notification token. Default 300 s. */
  readonly notificationTokenTtlSeconds?: number;
  /** How long a placed call rings before the emulator ends it as Graph would (default 15000 ms). */
  readonly answerTimeoutMs?: number;
  readonly log?: EmulatorLog;
}

export interface GraphEmulator {
  /** `http://host:port`: use as `GRAPH_BASE_URL`. */
  readonly url: string;
  readonly port: number;
  /** Every reject request so far, oldest first (copies). */
  received(): State.ReceivedReject[];
  /** Accepted rejects for a call (any spelling of its id): 0 or 1. */
  acceptedCount(callId: string): number;
  /** Add a fault rule; throws a `TypeError` naming the bad field. */
  setFault(rule: FaultRule): void;
  clearFaults(): void;
  /** Answer held requests of one call, or of all; returns how many. */
  release(callId?: string): number;
  stats(): State.EmulatorStats;
  /** The token endpoint for a tenant, for `clientCredentials({ tokenEndpoint })`. */
  tokenEndpoint(tenant: string): string;
  reset(): void;
  close(): Promise<void>;
  /** The OpenID configuration naming the notification keys: use as `WEBHOOK_OPENID_URL`. */
  readonly openIdUrl: string;
  /** `iss` of the notification tokens: use in `WEBHOOK_ISSUERS`. */
  readonly issuer: string;
  /**
   * Announce a call: POST Graph's signed incoming-call batch to `callbackUrl`
   * and resolve with the webhook's answer. Throws a `TypeError` naming a bad field.
   */
  placeCall(options: PlaceCallOptions): Promise<PlacedCall>;
  /** `updated`, state `established`, for a placed call still incoming. */
  answer(callId: string): Promise<SentNotification>;
  /** `deleted`, state `terminated` with `resultInfo`, for a placed call not final yet. */
  hangUp(callId: string, resultInfo?: HangUpOptions): Promise<SentNotification>;
  /** Every placed call with its state as Graph sees it. */
  calls(): EmulatedCall[];
  /** Every notification sent so far with the webhook's answer, oldest first (copies). */
  notifications(): SentNotification[];
  /** Wait until every notification sent so far has been answered (or failed). */
  notificationsSettled(): Promise<void>;
  /** A notification token signed with the emulator's key (for benchmarks and tests). */
  signNotificationToken(claims: { appId: string; tenantId?: string }): Promise<string>;
}

const REJECT = /^\/(v1\.0|beta)\/communications\/calls\/([^/]+)\/reject$/;
const TOKEN = /^\/([^/]+)\/oauth2\/v2\.0\/token$/;
const OPENID = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/;

/**
 * A loopback stand-in for Graph's reject API and Entra ID's token endpoint,
 * with fault injection and a control API (see `handleControl`). A plain
 * `node:http` server: nothing between the client under test and the socket.
 *
 * @example
 * const graph = await createGraphEmulator();
 * graph.setFault({ callId, fault: { kind: 'status', status: 429, retryAfterSeconds: 1 } });
 * // … point the client at graph.url, reject twice …
 * graph.acceptedCount(callId); // 1
 * await graph.close();
 */
export async function createGraphEmulator(
  options: GraphEmulatorOptions = {},
): Promise<GraphEmulator> {
  const issuer = options.issuer ?? NOTIFICATION_ISSUER;
  const keys = notificationKeysOnFirstUse();
  const context: RouteContext = {
    state: State.createState(createFaultBook(options.random ?? Math.random)),
    notifier: createNotifier(notifierOptions(options, keys, issuer)),
    keys,
    issuer,
    rejectOptions: { latencyMs: options.latencyMs ?? 0 },
    tokenOptions: {
      tokenTtlSeconds: options.tokenTtlSeconds ?? 3599,
      credentials: options.credentials,
    },
    url: '',
  };
  const server = createServer((req, res) => {
    route(req, res, context).catch((error: unknown) => answerFailure(req, res, error, options.log));
  });
  const host = options.host ?? '127.0.0.1';
  const port = await listen(server, options.port ?? 0, host);
  context.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  options.log?.debug({ url: context.url }, 'graph emulator listening');
  return emulatorApi(server, port, context, options.notificationTokenTtlSeconds);
}

/** What the routes answer from; one per emulator. */
interface RouteContext {
  readonly state: State.EmulatorState;
  readonly notifier: Notifier;
  readonly keys: () => Promise<NotificationKeys>;
  /** `iss` of the notification tokens. */
  readonly issuer: string;
  readonly rejectOptions: RejectRouteOptions;
  readonly tokenOptions: TokenRouteOptions;
  /** `http://host:port`, known once the server listens. */
  url: string;
}

/**
 * The notification signing key, made on first use (RSA key generation
 * takes a while): the first `/keys` fetch, token or placed call.
 */
function notificationKeysOnFirstUse(): () => Promise<NotificationKeys> {
  let keysMade: Promise<NotificationKeys> | undefined;
  return () => {
    keysMade ??= createNotificationKeys();
    return keysMade;
  };
}

function notifierOptions(
  options: GraphEmulatorOptions,
  keys: () => Promise<NotificationKeys>,
  issuer: string,
): NotifierOptions {
  return {
    keys,
    issuer,
    ...(options.answerTimeoutMs !== undefined && { answerTimeoutMs: options.answerTimeoutMs }),
    ...(options.notificationTokenTtlSeconds !== undefined && {
      tokenTtlSeconds: options.notificationTokenTtlSeconds,
    }),
    ...(options.log && { log: options.log }),
  };
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  context: RouteContext,
): Promise<void> {
  const { state, notifier } = context;
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const method = req.method ?? 'GET';
  if (path.startsWith(CONTROL_PREFIX)) {
    if (await handleCallsControl(req, res, path, notifier)) return;
    return handleControl(req, res, path, state, { onReset: () => notifier.reset() });
  }
  const reject = REJECT.exec(path);
  if (reject && method === 'POST') {
    const apiVersion = reject[1] === 'beta' ? 'beta' : 'v1.0';
    const callId = decodeURIComponent(reject[2] ?? '');
    await handleReject(req, res, { apiVersion, callId }, state, context.rejectOptions);
    // Graph follows an accepted reject with a bare `deleted` (once per announced call).
    if (state.accepted.has(callKey(callId))) notifier.rejectAccepted(callId);
    return;
  }
  if (method === 'GET' && path === '/.well-known/openid-configuration') {
    return handleNotificationOpenId(res, context.url, context.issuer);
  }
  if (method === 'GET' && path === '/keys')
    return handleNotificationKeys(res, await context.keys());
  const token = TOKEN.exec(path);
  if (token?.[1] && method === 'POST') {
    return handleToken(req, res, token[1], state, context.tokenOptions);
  }
  const openid = OPENID.exec(path);
  if (openid?.[1] && method === 'GET')
    return handleOpenIdConfiguration(res, openid[1], context.url);
  const ids = { requestId: randomUUID(), clientRequestId: null };
  if (reject || token) {
    return sendGraphError(res, 405, 'Request_BadRequest', `${method} is not allowed here.`, ids);
  }
  sendGraphError(res, 404, 'UnknownUrl', `No route for ${method} ${path}.`, ids);
}

/** The answer to a request whose route failed. */
function answerFailure(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  log: EmulatorLog | undefined,
) {
  if (error instanceof BodyTooLargeError) return send(res, 413);
  if (error instanceof URIError) return send(res, 400);
  // The client went away mid-request (or the emulator is closing): nobody to answer.
  if (req.destroyed || res.destroyed) return;
  log?.error({ err: String(error) }, 'graph emulator route failed');
  send(res, 500);
}

/** Listen on `host:port` (port 0: a free one); resolves with the port taken. */
async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** The emulator's API over its listening server and the parts the routes share. */
function emulatorApi(
  server: Server,
  port: number,
  context: RouteContext,
  notificationTokenTtlSeconds: number | undefined,
): GraphEmulator {
  const { state, notifier, url, issuer } = context;
  return {
    url,
    port,
    received: () => state.records.map((record) => ({ ...record })),
    acceptedCount: (callId) => state.accepted.get(callKey(callId)) ?? 0,
    setFault(rule) {
      const parsed = parseFaultRule(rule);
      if (!parsed.ok) throw new TypeError(`invalid fault rule: ${parsed.error}`);
      state.faults.add(parsed.value);
    },
    clearFaults: () => state.faults.clear(),
    release: (callId) => State.release(state, callId),
    stats: () => State.stats(state),
    tokenEndpoint: (tenant) => `${url}/${tenant}/oauth2/v2.0/token`,
    reset: () => {
      State.reset(state);
      notifier.reset();
    },
    close: () => closeEmulator(server, state, notifier),
    openIdUrl: `${url}/.well-known/openid-configuration`,
    issuer,
    placeCall: (call) => notifier.placeCall(call),
    answer: (callId) => notifier.answer(callId),
    hangUp: (callId, resultInfo) => notifier.hangUp(callId, resultInfo),
    calls: () => notifier.calls(),
    notifications: () => notifier.notifications(),
    notificationsSettled: () => notifier.settled(),
    signNotificationToken: async (claims) =>
      signNotificationToken(await context.keys(), {
        ...claims,
        issuer,
        ...(notificationTokenTtlSeconds !== undefined && {
          ttlSeconds: notificationTokenTtlSeconds,
        }),
      }),
  };
}

/** Stop listening, drop held answers, then close the notifier's connections. */
async function closeEmulator(server: Server, state: State.EmulatorState, notifier: Notifier) {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    // Cut open connections first, so held answers released below go nowhere.
    server.closeAllConnections();
    State.release(state);
  });
  await notifier.close();
}
