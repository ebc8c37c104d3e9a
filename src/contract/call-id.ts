/**
 * Graph spells one call id in more than one way (lower case with dashes,
 * upper case without). Ids that differ only in case and dashes name the same
 * call; everything downstream uses the canonical form.
 */

const HEX32 = /^[0-9a-f]{32}$/;
/** What a call id may be made of: it is a NATS subject token and a KV key. */
const ALLOWED = /^[A-Za-z0-9_-]*$/;
/** A GUID in braces, `{…}`: the same call as the bare GUID. */
const BRACED = /^\{([0-9A-Fa-f-]+)\}$/;
/** The longest canonical id. */
export const MAX_CALL_ID_LENGTH = 128;
/** Longer input is refused before any work on it. */
const MAX_RAW_LENGTH = 2 * MAX_CALL_ID_LENGTH;

export const CALL_ID_CHARACTERS =
  'must be ASCII letters, digits, "-" and "_" only (no ".", "*", ">", white space, ":" or other characters)';
const TOO_LONG = `must be at most ${MAX_CALL_ID_LENGTH} characters`;

export type CallIdResult = { ok: true; callId: string } | { ok: false; rule: string };

/**
 * Canonical call id: lower case, dashes removed, and the 8-4-4-4-12 form when
 * what is left is 32 hex digits (a GUID in braces is the bare GUID). A
 * canonical id is 1 to 128 ASCII letters, digits, `-` and `_`.
 *
 * @example
 * canonicalCallId('2F1A1100726E4C1EB6F2A1B2C3D4E5F6')   // { ok: true, callId: '2f1a1100-726e-4c1e-b6f2-a1b2c3d4e5f6' }
 * canonicalCallId('{2F1A1100-726E-4C1E-B6F2-A1B2C3D4E5F6}') // the same
 * canonicalCallId('a.b')                                // { ok: false, rule: '…' }
 */
export function canonicalCallId(raw: string): CallIdResult {
  if (raw.length > MAX_RAW_LENGTH) return { ok: false, rule: TOO_LONG };
  const braced = BRACED.exec(raw)?.[1];
  const text = braced ?? raw;
  if (!ALLOWED.test(text)) return { ok: false, rule: CALL_ID_CHARACTERS };
  const compact = text.toLowerCase().replaceAll('-', '');
  if (compact.length === 0) return { ok: false, rule: 'must not be empty' };
  if (HEX32.test(compact)) {
    return {
      ok: true,
      callId: `${compact.slice(0, 8)}-${compact.slice(8, 12)}-${compact.slice(12, 16)}-${compact.slice(16, 20)}-${compact.slice(20)}`,
    };
  }
  if (braced !== undefined) return { ok: false, rule: 'may be in braces only when it is a GUID' };
  if (compact.length > MAX_CALL_ID_LENGTH) return { ok: false, rule: TOO_LONG };
  return { ok: true, callId: compact };
}

const ENCODER = new TextEncoder();

/**
 * FNV-1a (32 bits) of a call id's UTF-8 bytes: the hash nats-server's subject
 * mapping `{{partition(n,…)}}` computes for a subject token, so a call's
 * partition can be computed here and by the server alike. Also the key of
 * final calls remembered only by a hash.
 */
export function callIdHash(callId: string): number {
  let hash = 0x811c9dc5;
  for (const byte of ENCODER.encode(callId)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
