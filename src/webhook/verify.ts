import { errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { KeysUnavailableError } from './keys.js';

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

export interface VerifyOptions {
  /** The key function, usually `createKeyResolver(…).getKey`. */
  readonly keys: JWTVerifyGetKey;
  /** Accepted `iss` values (at least one). */
  readonly issuers: readonly string[];
  /** The required `aud`: the bot's app id. */
  readonly audience: string;
  /** When given and not empty, the only tenants accepted (compared without case). */
  readonly tenants?: readonly string[];
  /** Allowed clock skew for `nbf` and `exp` (default 60 s). */
  readonly clockToleranceSec?: number;
}

/**
 * Verify an `Authorization` header value. Never throws; a refusal names its
 * reason.
 *
 * @example
 * const result = await verifyNotificationToken(req.headers.authorization, {
 *   keys: resolver.getKey,
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
  return createNotificationVerifier(options)(authorizationHeader);
}

/**
 * {@link verifyNotificationToken} with its options checked once.
 *
 * @throws TypeError when the issuers or the audience are empty, or the tolerance is negative.
 * @example
 * const verify = createNotificationVerifier({ keys: resolver.getKey, issuers, audience: appId });
 * const result = await verify('Bearer eyJ…');
 */
export function createNotificationVerifier(
  options: VerifyOptions,
): (authorizationHeader: string | undefined) => Promise<VerifyResult> {
  const issuers = [...options.issuers];
  const clockTolerance = options.clockToleranceSec ?? 60;
  if (issuers.length === 0 || issuers.some((issuer) => issuer === '')) {
    throw new TypeError('issuers: at least one, none empty');
  }
  if (options.audience === '') throw new TypeError('audience: must not be empty');
  if (!(clockTolerance >= 0)) throw new TypeError('clockToleranceSec: must be ≥ 0');
  const tenants = new Set((options.tenants ?? []).map((tenant) => tenant.toLowerCase()));

  return async (authorizationHeader) => {
    const token = bearerToken(authorizationHeader);
    if (!token.ok) return token;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token.value, options.keys, {
        algorithms: [...ALGORITHMS],
        issuer: issuers,
        audience: options.audience,
        clockTolerance,
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
