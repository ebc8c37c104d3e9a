import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AuthorizationError,
  connect,
  credsAuthenticator,
  InvalidArgumentError,
  type NatsConnection,
  type NodeConnectionOptions,
  nkeyAuthenticator,
  UserAuthenticationExpiredError,
} from '@nats-io/transport-node';
import { type NatsAuth, type NatsTls, nkeySeed } from '../config.js';
import type { Log } from '../log.js';

/** What {@link connectNats} needs. */
export interface NatsConnectOptions {
  /** `nats://host:port` URLs (or `host:port`). */
  servers: string[];
  /** The connection's name, as the server's monitoring shows it. */
  name: string;
  log: Log;
  /** How to authenticate (default: not at all). */
  auth?: NatsAuth;
  /** TLS files; with any set, the server must offer TLS. */
  tls?: NatsTls | undefined;
  /**
   * `true` (default): while no server answers, keep trying (back-off between
   * tries) — but fail at once when one answers and refuses us (bad
   * credentials, untrusted certificate). `false`: fail after one round.
   */
  waitForServer?: boolean;
  /** How long one connection attempt may take (the client's default: 20 s). */
  attemptTimeoutMs?: number;
}

/**
 * Connecting to NATS failed for good. The message says where, how we tried
 * to authenticate (never with what) and what the server or TLS said.
 */
export class NatsConnectError extends Error {
  override readonly name = 'NatsConnectError';
  readonly code = 'NATS_CONNECT_FAILED';
}

/** Node's codes for a certificate it will not trust. */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const codeOf = (error: unknown): string | undefined => {
  const code = error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' ? code : undefined;
};

/**
 * A failure that trying again will not cure: the server answered and refused
 * us, TLS cannot be set up as configured, or a file we need is missing.
 */
function isPermanent(error: unknown): boolean {
  if (error instanceof AuthorizationError || error instanceof UserAuthenticationExpiredError) {
    return true;
  }
  if (error instanceof InvalidArgumentError) return true;
  const code = codeOf(error) ?? '';
  if (CERTIFICATE_CODES.has(code) || /^ERR_(SSL|OSSL|TLS)_/.test(code)) return true;
  if (['ENOENT', 'EACCES', 'EISDIR'].includes(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /does not support 'tls'|doesn't exist|unable to parse credentials/i.test(message);
}

/** The servers as they may be shown: without any `user:password@`. */
const shownServers = (servers: string[]): string =>
  servers.map((server) => server.replace(/\/\/[^/@\s]*@/, '//')).join(', ');

const AUTH_NAMES: Record<NatsAuth['kind'], string> = {
  none: 'no authentication',
  creds: 'a creds file (NATS_CREDS)',
  nkey: 'an nkey (NATS_NKEY)',
  userPassword: 'a user and password (NATS_USER, NATS_PASSWORD)',
  token: 'a token (NATS_TOKEN)',
};

/** What the failure says, with Node's code when it has one; never a credential. */
function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = codeOf(error);
  return code && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
}

/** The client options for `auth` and `tls`: credentials only ever live in these. */
function securityOptions(auth: NatsAuth, tls: NatsTls | undefined): NodeConnectionOptions {
  const options: NodeConnectionOptions = {};
  switch (auth.kind) {
    case 'creds':
      // Read at each (re)connection: a rotated file is picked up.
      options.authenticator = credsAuthenticator(() => readFileSync(auth.credsFile));
      break;
    case 'nkey':
      options.authenticator = nkeyAuthenticator(() => nkeySeed(readFileSync(auth.seedFile)));
      break;
    case 'userPassword':
      options.user = auth.user;
      options.pass = auth.password;
      break;
    case 'token':
      options.token = auth.token;
      break;
    case 'none':
      break;
  }
  if (tls) {
    options.tls = {
      ...(tls.caFile && { caFile: tls.caFile }),
      ...(tls.certFile && { certFile: tls.certFile }),
      ...(tls.keyFile && { keyFile: tls.keyFile }),
    };
  }
  return options;
}

/**
 * Connect to NATS (authenticated and over TLS as configured) and keep
 * reconnecting for ever (back-off between tries), logging every change of
 * the connection's state. Until the first connection, a server that is down
 * is waited for; one that refuses us fails the call with a
 * {@link NatsConnectError}.
 *
 * @example
 * const { nc, isConnected } = await connectNats({
 *   servers: ['nats://127.0.0.1:4222'],
 *   name: 'callgate',
 *   log,
 *   auth: { kind: 'userPassword', user: 'callgate', password },
 *   tls: { caFile: '/etc/callgate/nats-ca.pem' },
 * });
 */
export async function connectNats(
  options: NatsConnectOptions,
): Promise<{ nc: NatsConnection; isConnected: () => boolean }> {
  const auth = options.auth ?? { kind: 'none' };
  const log = options.log.child({ component: 'nats' });
  const settings: NodeConnectionOptions = {
    servers: options.servers,
    name: options.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    reconnectJitterTLS: 250,
    // The first connection is retried here (below), where a refusal can be
    // told apart from a server that is not up yet.
    waitOnFirstConnect: false,
    pingInterval: 10_000,
    // Every KV write is a request; an async stack trace for each costs more
    // than the write itself on the hot path.
    noAsyncTraces: true,
    ...(options.attemptTimeoutMs !== undefined && { timeout: options.attemptTimeoutMs }),
    ...securityOptions(auth, options.tls),
  };
  const described = {
    servers: shownServers(options.servers),
    auth: auth.kind,
    tls: options.tls !== undefined,
  };
  let nc: NatsConnection | undefined;
  let lastReason: string | undefined;
  while (!nc) {
    try {
      nc = await connect(settings);
    } catch (error) {
      const reason = reasonOf(error);
      if (options.waitForServer === false || isPermanent(error)) {
        throw new NatsConnectError(
          `could not connect to NATS at ${described.servers} with ${AUTH_NAMES[auth.kind]}${
            options.tls ? ' over TLS' : ''
          }: ${reason}`,
          { cause: error },
        );
      }
      if (reason !== lastReason) {
        log.warn({ ...described, reason }, 'NATS not reachable yet; retrying');
        lastReason = reason;
      }
      await sleep(500 + Math.random() * 250);
    }
  }
  log.info({ ...described, server: nc.getServer() }, 'connected to NATS');
  let connected = true;
  const connection = nc;
  void (async () => {
    for await (const status of connection.status()) {
      if (status.type === 'disconnect' || status.type === 'close') connected = false;
      if (status.type === 'reconnect') connected = true;
      const level = status.type === 'disconnect' || status.type === 'error' ? 'warn' : 'info';
      log[level](
        { status: status.type, server: 'server' in status ? status.server : undefined },
        `NATS ${status.type}`,
      );
    }
  })();
  return { nc: connection, isConnected: () => connected };
}
