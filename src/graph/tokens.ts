import { ConfidentialClientApplication } from '@azure/msal-node';
import { msalConfiguration } from './msal-config.js';

/** Where the Graph client gets its bearer token. */
export interface TokenSource {
  /** A valid access token; rejects with `signal.reason` when `signal` aborts first. */
  getToken(signal?: AbortSignal): Promise<string>;
  /**
   * Graph answered 401 to `token`: forget it, if it is still the one held, so
   * the next `getToken` fetches a new one instead of handing it out until it
   * expires (a revoked or rotated token). A static token cannot be replaced.
   */
  invalidate?(token: string): void;
}

/** The slice of a pino logger the token sources use. */
export interface TokenLog {
  debug(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
const REFRESH_MARGIN_MS = 5 * 60_000;
const TOKEN_TIMEOUT_MS = 10_000;
/** After a failed refresh, wait this long before the next try while the old token still works. */
const RETRY_REFRESH_MS = 5_000;
const NO_LOG: TokenLog = { debug: () => {}, warn: () => {} };

/**
 * A fixed token (`GRAPH_TOKEN`: development, tests, the emulator).
 *
 * @example
 * const tokens = staticToken(process.env.GRAPH_TOKEN ?? '');
 */
export function staticToken(token: string): TokenSource {
  if (token === '') throw new TypeError('staticToken: the token must not be empty');
  const ready = Promise.resolve(token);
  return { getToken: () => ready };
}

export interface ClientCredentialsOptions {
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Authority host, `https:` only (msal refuses others). Default `https://login.microsoftonline.com`. */
  readonly authority?: string;
  /** Default `https://graph.microsoft.com/.default`. */
  readonly scope?: string;
  /**
   * Post token requests here instead of the authority's own endpoint (a
   * loopback emulator, an egress proxy). The authority is then never
   * contacted, not even for discovery.
   */
  readonly tokenEndpoint?: string;
  /** Refresh this long before expiry (at most half the token's lifetime). Default 5 minutes. */
  readonly refreshMarginMs?: number;
  /** Give up on one token request after this long. Default 10 s. */
  readonly timeoutMs?: number;
  readonly log?: TokenLog;
  readonly now?: () => number;
}

interface Held {
  readonly token: string;
  readonly expiresAt: number;
  refreshAt: number;
}

/**
 * App-only tokens through msal-node's client-credentials flow. The token is
 * kept in memory and handed out without asking msal until it is due for
 * refresh: a cached `acquireTokenByClientCredential` costs about 120 µs,
 * more than a whole reject on the hot path. Refresh starts `refreshMarginMs`
 * before expiry, in the background while the old token is still valid; one
 * token request at a time, whoever asks.
 *
 * @example
 * const tokens = clientCredentials({
 *   tenantId: env.GRAPH_TENANT_ID,
 *   clientId: env.GRAPH_CLIENT_ID,
 *   clientSecret: env.GRAPH_CLIENT_SECRET,
 *   log,
 * });
 * const token = await tokens.getToken(signal);
 */
export function clientCredentials(options: ClientCredentialsOptions): TokenSource {
  const now = options.now ?? Date.now;
  const log = options.log ?? NO_LOG;
  const margin = options.refreshMarginMs ?? REFRESH_MARGIN_MS;
  const timeoutMs = options.timeoutMs ?? TOKEN_TIMEOUT_MS;
  const scopes = [options.scope ?? GRAPH_SCOPE];
  const app = new ConfidentialClientApplication(msalConfiguration(options, log));
  let held: Held | null = null;
  let pending: Promise<string> | null = null;

  async function acquire(): Promise<string> {
    // Our copy is the cache; msal's would hand back the token we are replacing.
    const request = app.acquireTokenByClientCredential({ scopes, skipCache: true });
    const result = await withTimeout(request, timeoutMs, 'the token request timed out');
    if (!result?.accessToken) throw new Error('the token endpoint returned no access token');
    const issuedAt = now();
    const expiresAt = result.expiresOn?.getTime() ?? issuedAt;
    let refreshAt = expiresAt - Math.min(margin, (expiresAt - issuedAt) / 2);
    // `refresh_in` from the token endpoint, when it sends one, asks for earlier.
    if (result.refreshOn) refreshAt = Math.min(refreshAt, result.refreshOn.getTime());
    held = { token: result.accessToken, expiresAt, refreshAt };
    log.debug(
      {
        expiresAt: new Date(expiresAt).toISOString(),
        refreshAt: new Date(refreshAt).toISOString(),
      },
      'graph token acquired',
    );
    return result.accessToken;
  }

  function refresh(): Promise<string> {
    pending ??= acquire()
      .catch((error: unknown) => {
        if (held) held.refreshAt = now() + RETRY_REFRESH_MS;
        log.warn({ err: messageOf(error) }, 'graph token request failed');
        throw error;
      })
      .finally(() => {
        pending = null;
      });
    return pending;
  }

  return {
    invalidate(token) {
      if (held?.token !== token) return;
      held = null;
      log.warn({}, 'graph refused the token (401): fetching a new one for the next request');
    },
    getToken(signal) {
      const t = now();
      if (held && t < held.expiresAt) {
        if (t >= held.refreshAt && !pending) refresh().catch(() => {});
        return Promise.resolve(held.token);
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
      return abortable(refresh(), signal);
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Stop waiting when `signal` aborts; the shared request goes on for the others. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
