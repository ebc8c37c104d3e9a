import { errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { KeysUnavailableError } from './keys.js';
import { TokenCache } from './token-cache.js';

/**
 * Verification of the bearer token Graph puts on every notification: an
 * RS256-family JWT signed by a key of the configured key set, from one of the
 * accepted issuers, for this app, within its lifetime, naming a tenant.
 */

/** The only algorithms accepted: `none` and every HMAC are refused before any key is looked up. */
export const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;

/** The tenant claim's two spellings, in the order they are read. */
export const TENANT_CLAIMS = ['tid', 'http://schemas.microsoft.com/identity/claims/tenantid'];

/** A token longer than this is refused unread. */
const MAX_TOKEN_CHARS = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const BEARER = /^Bearer +(\S+) *$/i;

export type VerifyFailure =
  | 'missing'
  | 'scheme'
  | 'malformed'
  | 'algorithm'
  | 'key'
  | 'signature'
  | 'issuer'
  | 'audience'
  | 'expired'
  | 'not-yet-valid'
  | 'claims'
  | 'tenant-missing'
  | 'tenant-not-allowed'
  /** No key set could be fetched: the service's failure, not the token's. */
  | 'keys-unavailable'
  | 'invalid';

/** `detail` is safe to log: it never contains the token or its claims. */
export type VerifyResult =
  | { readonly ok: true; readonly tenantId: string; readonly claims: JWTPayload }
  | { readonly ok: false; readonly reason: VerifyFailure; readonly detail: string };

/**
 * A key function whose key set can change, such as `createKeyResolver(…)`: its
 * generation tells the verifier when tokens it cached must be verified again.
 */
export interface KeySource {
  readonly getKey: JWTVerifyGetKey;
  /** Changes whenever the key set in use changes. */
  generation(): number;
  /** Refresh a stale key set in the background (a cached token looks no key up). */
  freshen?(): void;
}

export interface VerifyOptions {
  /**
   * The key resolver (`createKeyResolver(…)`), or a fixed key function
   * (`createLocalJWKSet(…)`). Only with a resolver are verified tokens
   * cached: its generation says when its key set changed.
   */
  readonly keys: KeySource | JWTVerifyGetKey;
  /** Accepted `iss` values (at least one). */
  readonly issuers: readonly string[];
  /** The required `aud`: the bot's app id. */
  readonly audience: string;
  /** When given and not empty, the only tenants accepted (compared without case). */
  readonly tenants?: readonly string[];
  /** Allowed clock skew for `nbf` and `exp` (default 60 s). */
  readonly clockToleranceSec?: number;
  /** Verified tokens kept (default {@link DEFAULT_CACHED_TOKENS}; 0 keeps none). */
  readonly cachedTokens?: number;
  /** Epoch ms (tests move it). */
  readonly now?: () => number;
}

/** Verified tokens kept by default: Graph puts one token on many notifications, so few are in use at once. */
export const DEFAULT_CACHED_TOKENS = 256;

/**
 * Verify an `Authorization` header value. Never throws; a refusal names its
 * reason.
 *
 * @example
 * const result = await verifyNotificationToken(req.headers.authorization, {
 *   keys: resolver,
 *   issuers: ['https://api.botframework.com'],
 *   audience: config.webhook.appId,
 * });
 * if (result.ok) publish(body, { 'tenant-id': result.tenantId });
 * else log.warn({ reason: result.reason }, 'notification refused');
 */
export async function verifyNotificationToken(
  authorizationHeader: string | undefined,
  options: VerifyOptions,
): Promise<VerifyResult> {
  return createNotificationVerifier({ ...options, cachedTokens: 0 })(authorizationHeader);
}

/**
 * {@link verifyNotificationToken} with its options checked once and, when
 * `keys` is a resolver, a cache of the tokens that verified (see
 * {@link TokenCache}). A cached token is accepted without its signature being
 * checked again, as long as it is within its lifetime now and the resolver's
 * key set is the one it was verified with; issuers, audience and tenants are
 * fixed per verifier, so its verdict holds for them.
 *
 * @throws TypeError when the issuers or the audience are empty, the tolerance is negative, or `cachedTokens` is not a whole number ≥ 0.
 * @example
 * const verify = createNotificationVerifier({ keys: resolver, issuers, audience: appId });
 * const result = await verify('Bearer eyJ…');
 */
export function createNotificationVerifier(
  options: VerifyOptions,
): (authorizationHeader: string | undefined) => Promise<VerifyResult> {
  const verifyInFull = fullVerifier(options);
  const now = options.now ?? Date.now;
  const cache = tokenCache(options);
  const keys = options.keys;
  if (cache === undefined || typeof keys === 'function') {
    return async (authorizationHeader) => {
      const token = bearerToken(authorizationHeader);
      return token.ok ? verifyInFull(token.value, now()) : token;
    };
  }

  return async (authorizationHeader) => {
    const token = bearerToken(authorizationHeader);
    if (!token.ok) return token;
    const nowMs = now();
    // A key that left the published set is noticed by its age even while only cached tokens come.
    keys.freshen?.();
    const at = { nowSec: Math.floor(nowMs / 1000), generation: keys.generation() };
    const cached = cache.get(token.value, at);
    if (cached) return cached;
    const result = await verifyInFull(token.value, nowMs);
    if (result.ok) {
      const { exp, nbf } = Object.freeze(result.claims); // shared by every request that hits
      // Generation 0 had no key set: the token was verified against the one its check fetched.
      const generation = at.generation === 0 ? keys.generation() : at.generation;
      const entry = { value: result, exp: Number(exp), nbf, generation };
      cache.set(token.value, entry, at.nowSec);
    }
    return result;
  };
}

/** The cache of verified tokens, when `keys` is a resolver and `cachedTokens` is not 0. */
function tokenCache(options: VerifyOptions): TokenCache<Accepted> | undefined {
  const cachedTokens = options.cachedTokens ?? DEFAULT_CACHED_TOKENS;
  if (!(Number.isInteger(cachedTokens) && cachedTokens >= 0)) {
    throw new TypeError('cachedTokens: must be a whole number ≥ 0');
  }
  if (typeof options.keys === 'function' || cachedTokens === 0) return undefined;
  return new TokenCache({
    maxEntries: cachedTokens,
    clockToleranceSec: options.clockToleranceSec ?? 60,
  });
}

type Accepted = Extract<VerifyResult, { ok: true }>;

/** The signature, the claims and the tenant, checked from scratch at `nowMs`. */
function fullVerifier(
  options: VerifyOptions,
): (token: string, nowMs: number) => Promise<VerifyResult> {
  const issuers = [...options.issuers];
  const clockTolerance = options.clockToleranceSec ?? 60;
  if (issuers.length === 0 || issuers.some((issuer) => issuer === '')) {
    throw new TypeError('issuers: at least one, none empty');
  }
  if (options.audience === '') throw new TypeError('audience: must not be empty');
  if (!(clockTolerance >= 0)) throw new TypeError('clockToleranceSec: must be ≥ 0');
  const tenants = new Set((options.tenants ?? []).map((tenant) => tenant.toLowerCase()));
  const getKey = typeof options.keys === 'function' ? options.keys : options.keys.getKey;

  return async (token, nowMs) => {
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, getKey, {
        algorithms: [...ALGORITHMS],
        issuer: issuers,
        audience: options.audience,
        clockTolerance,
        currentDate: new Date(nowMs),
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      return refusal(error);
    }
    const tenantId = tenantOf(claims);
    if (tenantId === undefined) {
      return { ok: false, reason: 'tenant-missing', detail: 'the token names no tenant' };
    }
    if (tenants.size > 0 && !tenants.has(tenantId.toLowerCase())) {
      return { ok: false, reason: 'tenant-not-allowed', detail: `tenant ${tenantId} not allowed` };
    }
    return { ok: true, tenantId, claims };
  };
}

type Failure = Extract<VerifyResult, { ok: false }>;

function bearerToken(header: string | undefined): { ok: true; value: string } | Failure {
  if (header === undefined || header.trim() === '') {
    return { ok: false, reason: 'missing', detail: 'no Authorization header' };
  }
  const match = BEARER.exec(header);
  if (!match?.[1]) return { ok: false, reason: 'scheme', detail: 'the scheme must be Bearer' };
  const token = match[1];
  if (token.length > MAX_TOKEN_CHARS || !COMPACT_JWS.test(token)) {
    return { ok: false, reason: 'malformed', detail: 'not a compact JWT' };
  }
  return { ok: true, value: token };
}

function tenantOf(claims: JWTPayload): string | undefined {
  for (const name of TENANT_CLAIMS) {
    const value = claims[name];
    if (typeof value === 'string' && value.trim() !== '') return value;
  }
  return undefined;
}

/** jose's error, as a reason; the message is jose's own and never quotes the token. */
function refusal(error: unknown): Failure {
  const detail = error instanceof Error ? error.message : String(error);
  return { ok: false, reason: reasonOf(error), detail };
}

function reasonOf(error: unknown): VerifyFailure {
  if (error instanceof KeysUnavailableError) return 'keys-unavailable';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'algorithm';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature';
  if (error instanceof errors.JWTExpired) return 'expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return 'issuer';
    if (error.claim === 'aud') return 'audience';
    if (error.claim === 'nbf') return 'not-yet-valid';
    return 'claims';
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'malformed';
  if (
    error instanceof errors.JWKSNoMatchingKey ||
    error instanceof errors.JWKSMultipleMatchingKeys ||
    error instanceof errors.JWKSInvalid ||
    error instanceof errors.JWKInvalid ||
    error instanceof errors.JOSENotSupported
  ) {
    return 'key';
  }
  return 'invalid';
}
