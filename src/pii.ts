import { createHmac, randomBytes } from 'node:crypto';

/**
 * Personal data in what callgate writes out (logs, the Stately inspector):
 * the one place that says what is personal and how it is hidden.
 */

/** What a credential, a cycle or a too deep value is replaced with. */
export const REDACTED = '[redacted]';

/**
 * Fields that hold a caller's identity: Graph's `participantInfo` as
 * `source` and `targets`, an `identitySet`, one identity, or a bare name, id
 * or number. The logger hashes them at the top of a log line.
 */
export const PII_PATHS = [
  'source',
  'targets',
  'identity',
  'user',
  'phone',
  'displayName',
  'userId',
] as const;

/** Keys whose whole value is a caller's identity, wherever they appear. */
export const PII_KEYS: ReadonlySet<string> = new Set([
  ...PII_PATHS,
  'guest',
  'email',
  'mail',
  'userPrincipalName',
  'phoneNumber',
]);

/**
 * Keys kept as they are inside a caller's identity: they say which tenant,
 * which kind of endpoint, which region, not who.
 */
export const KEPT_IN_IDENTITIES: ReadonlySet<string> = new Set([
  'tenantId',
  '@odata.type',
  'identityProvider',
  'endpointType',
  'region',
  'languageId',
  'countryCode',
]);

/** A phone number written as one (`+4930…`, `tel:+1 555 …`), wherever it is. */
const PHONE = /^(tel:)?\+\d[\d ().-]{5,}\d$/i;
/** What {@link piiHasher} gives: not hashed again when a value is sanitized twice. */
const HASHED = /^h:[0-9a-f]{12}$/;
/** Values nested deeper than this are not walked. */
const MAX_DEPTH = 12;

/**
 * A keyed hash for personal data: `h:` and the first 12 hex digits of
 * HMAC-SHA256 under `key` (by default 32 fresh random bytes: one key per
 * process). The same value gives the same hash under one key, so the lines
 * about one caller can be followed through a run; without the key, a hash
 * cannot be turned back into the value, nor checked against a guess.
 *
 * @example
 * const hash = piiHasher();
 * hash('Ada Lovelace'); // 'h:3f9a0c2b7d41'
 */
export function piiHasher(key: Uint8Array = randomBytes(32)): (value: string) => string {
  return (value) => `h:${createHmac('sha256', key).update(value).digest('hex').slice(0, 12)}`;
}

export interface PiiSanitizer {
  /** A JSON-safe copy of a value that is an identity: every string and number hashed but under {@link KEPT_IN_IDENTITIES}. */
  identity(value: unknown): unknown;
  /** A JSON-safe copy of any value: identities under {@link PII_KEYS} hashed, and any string that is a phone number. */
  anywhere(value: unknown): unknown;
}

/**
 * The sanitizer for personal data. Booleans and `null` stay; functions are
 * dropped; `toJSON` is honoured; cycles and very deep values become
 * `[redacted]`; a value already hashed is not hashed again.
 *
 * @example
 * const { identity } = createPiiSanitizer(piiHasher());
 * identity({ user: { displayName: 'Ada', tenantId: 't' } }); // { user: { displayName: 'h:…', tenantId: 't' } }
 */
export function createPiiSanitizer(hash: (value: string) => string): PiiSanitizer {
  const once = (value: string) => (HASHED.test(value) ? value : hash(value));
  const ancestors = new Set<object>();
  const scrub = (input: unknown, depth: number, identity: boolean): unknown => {
    const value = jsonOf(input);
    if (typeof value === 'string') return identity || PHONE.test(value) ? once(value) : value;
    if (typeof value === 'number' || typeof value === 'bigint') {
      return identity ? once(String(value)) : typeof value === 'bigint' ? String(value) : value;
    }
    if (typeof value === 'function' || typeof value === 'symbol') return undefined;
    if (typeof value !== 'object' || value === null) return value;
    if (depth >= MAX_DEPTH || ancestors.has(value)) return REDACTED;
    ancestors.add(value);
    try {
      if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1, identity));
      const copy: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        const inside = identity ? !KEPT_IN_IDENTITIES.has(key) : PII_KEYS.has(key);
        const clean = scrub(item, depth + 1, inside);
        if (clean !== undefined) copy[key] = clean;
      }
      return copy;
    } finally {
      ancestors.delete(value);
    }
  };
  return {
    identity: (value) => scrub(value, 0, true),
    anywhere: (value) => scrub(value, 0, false),
  };
}

function jsonOf(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || !('toJSON' in value)) return value;
  const toJSON = (value as { toJSON: unknown }).toJSON;
  return typeof toJSON === 'function' ? toJSON.call(value) : value;
}
