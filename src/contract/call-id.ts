/**
 * Graph spells one call id in more than one way (lower case with dashes,
 * upper case without). Ids that differ only in case and dashes name the same
 * call; everything downstream uses the canonical form.
 */

const HEX32 = /^[0-9a-f]{32}$/;
/** Characters that cannot appear in a NATS subject token. */
const NOT_A_TOKEN = /[.*>\s]/;

export type CallIdResult = { ok: true; callId: string } | { ok: false; rule: string };

/**
 * Canonical call id: lower case, dashes removed, and the 8-4-4-4-12 form when
 * what is left is 32 hex digits.
 *
 * @example
 * canonicalCallId('2F1A1100726E4C1EB6F2A1B2C3D4E5F6') // { ok: true, callId: '2f1a1100-726e-4c1e-b6f2-a1b2c3d4e5f6' }
 * canonicalCallId('a.b')                              // { ok: false, rule: '…' }
 */
export function canonicalCallId(raw: string): CallIdResult {
  if (NOT_A_TOKEN.test(raw)) {
    return { ok: false, rule: 'must not contain ".", "*", ">" or white space' };
  }
  const compact = raw.toLowerCase().replaceAll('-', '');
  if (compact.length === 0) {
    return { ok: false, rule: 'must not be empty' };
  }
  if (HEX32.test(compact)) {
    return {
      ok: true,
      callId: `${compact.slice(0, 8)}-${compact.slice(8, 12)}-${compact.slice(12, 16)}-${compact.slice(16, 20)}-${compact.slice(20)}`,
    };
  }
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
