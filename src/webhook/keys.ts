import {
  type CompactJWSHeaderParameters,
  type CryptoKey,
  createLocalJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWK,
  type LocalJWKSet,
} from 'jose';
import { z } from 'zod';
import type { Log } from '../log.js';

/**
 * The signing keys of Graph's notification tokens: discovered from an OpenID
 * configuration (its `jwks_uri`), kept about 2 h, and re-fetched early when a
 * token names a key id the cached set does not hold — at most once per
 * cool-down, and by one request however many tokens miss at once. A flood of
 * tokens with made-up key ids therefore costs the key endpoint at most one
 * request per cool-down. The set in use has a generation, so that what was
 * verified with an earlier set can be told apart.
 */

/** Thrown by {@link KeyResolver.getKey} when no key set could be obtained at all. */
export class KeysUnavailableError extends Error {
  override readonly name = 'KeysUnavailableError';
  readonly code = 'WEBHOOK_KEYS_UNAVAILABLE';
}

export interface KeyResolverOptions {
  /** The OpenID configuration document that names `jwks_uri`. */
  readonly openIdUrl: string;
  /** How long a fetched key set is used before it is refreshed in the background (default 2 h). */
  readonly maxAgeMs?: number;
  /** The least time between two fetches, whatever the cause (default 30 s). */
  readonly cooldownMs?: number;
  /** Per HTTP request: the OpenID configuration, then the key set (default 5 s). */
  readonly timeoutMs?: number;
  /** The largest document accepted from either endpoint (default 256 KiB). */
  readonly maxDocumentBytes?: number;
  readonly fetch?: typeof globalThis.fetch;
  /** Epoch ms (tests move it). */
  readonly now?: () => number;
  readonly log?: Log;
}

/** The key function {@link KeyResolver.getKey} accepts, as jose's `jwtVerify` calls it. */
export type GetKey = (
  protectedHeader: CompactJWSHeaderParameters,
  token: FlattenedJWSInput,
) => Promise<CryptoKey>;

export interface KeyResolver {
  /** For jose's `jwtVerify(token, resolver.getKey, options)`. */
  readonly getKey: GetKey;
  /**
   * Fetch the key set now, single-flight and regardless of the cool-down (for
   * start-up). Resolves false when it failed; the failure is logged.
   */
  refresh(): Promise<boolean>;
  /**
   * The key set in use: 0 before the first fetch, one more each time a fetch
   * brings keys that differ from the ones held (a fetch of the same keys
   * leaves it). The verifier drops a cached token verified under another.
   */
  generation(): number;
  /**
   * Start a fetch in the background when the set is older than its maximum
   * age (and the cool-down allows): what a key lookup does, for a token that
   * needs none because it was verified before.
   */
  freshen(): void;
}

const OpenIdConfiguration = z.object({
  jwks_uri: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
});
const KeySet = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

const TWO_HOURS_MS = 2 * 60 * 60 * 1000;

interface Cached {
  readonly set: LocalJWKSet;
  readonly fetchedAt: number;
  /** The keys as fetched, in JSON: the same text is the same set. */
  readonly text: string;
}

/**
 * @example
 * const resolver = createKeyResolver({ openIdUrl: config.webhook.openIdUrl, log });
 * await resolver.refresh(); // optional warm-up
 * const { payload } = await jwtVerify(token, resolver.getKey, { algorithms: ['RS256'] });
 */
export function createKeyResolver(options: KeyResolverOptions): KeyResolver {
  const maxAgeMs = options.maxAgeMs ?? TWO_HOURS_MS;
  const cooldownMs = options.cooldownMs ?? 30_000;
  const now = options.now ?? Date.now;
  const fetchJson = jsonFetcher(options);
  let cached: Cached | undefined;
  let inFlight: Promise<Cached> | undefined;
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let generation = 0;

  const mayFetch = () => inFlight !== undefined || now() - lastAttemptAt >= cooldownMs;

  async function download(): Promise<Cached> {
    const discovery = OpenIdConfiguration.safeParse(await fetchJson(options.openIdUrl));
    if (!discovery.success) {
      throw new Error(`OpenID configuration: jwks_uri ${discovery.error.issues[0]?.message}`);
    }
    const jwks = KeySet.safeParse(await fetchJson(discovery.data.jwks_uri));
    if (!jwks.success) throw new Error('key set: must be {"keys": [JWK, …]}');
    const set = createLocalJWKSet({ keys: jwks.data.keys as JWK[] } satisfies JSONWebKeySet);
    options.log?.info(
      { jwksUri: discovery.data.jwks_uri, keys: jwks.data.keys.length },
      'webhook signing keys fetched',
    );
    return { set, fetchedAt: now(), text: JSON.stringify(jwks.data.keys) };
  }

  /** One fetch at a time; every caller during it shares its outcome. */
  function load(): Promise<Cached> {
    if (inFlight) return inFlight;
    lastAttemptAt = now();
    inFlight = download()
      .then((fresh) => {
        if (fresh.text !== cached?.text) generation += 1;
        cached = fresh;
        return fresh;
      })
      .catch((error: unknown) => {
        options.log?.warn(
          { url: options.openIdUrl, err: (error as Error).message },
          'webhook signing keys could not be fetched',
        );
        throw new KeysUnavailableError('the token signing keys could not be fetched', {
          cause: error,
        });
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  }

  /** A fetch in the background once the set is stale; the stale set serves meanwhile. */
  function freshen(): void {
    if (cached && now() - cached.fetchedAt >= maxAgeMs && mayFetch()) {
      load().catch(() => {}); // logged in load
    }
  }

  /** The set to try first: fetched on first use, refreshed in the background once stale. */
  async function current(): Promise<LocalJWKSet> {
    if (!cached) {
      if (!mayFetch()) throw new KeysUnavailableError('the token signing keys are not available');
      return (await load()).set;
    }
    freshen();
    return cached.set;
  }

  return {
    async getKey(protectedHeader, token) {
      const set = await current();
      try {
        return await set(protectedHeader, token);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey) || !mayFetch()) throw error;
      }
      const fresh = await load();
      return fresh.set(protectedHeader, token);
    },
    async refresh() {
      try {
        await load();
        return true;
      } catch {
        return false;
      }
    },
    generation: () => generation,
    freshen,
  };
}

/** GET a JSON document with a time limit and a size limit. */
function jsonFetcher(options: KeyResolverOptions): (url: string) => Promise<unknown> {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const maxBytes = options.maxDocumentBytes ?? 256 * 1024;
  return async (url) => {
    const response = await fetchImpl(url, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`GET ${url}: HTTP ${response.status}`);
    }
    const declared = Number(response.headers.get('content-length') ?? 0);
    if (declared > maxBytes) {
      await response.body?.cancel();
      throw new Error(`GET ${url}: larger than ${maxBytes} bytes`);
    }
    const text = await response.text();
    if (text.length > maxBytes) throw new Error(`GET ${url}: larger than ${maxBytes} bytes`);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new Error(`GET ${url}: not JSON`);
    }
  };
}
