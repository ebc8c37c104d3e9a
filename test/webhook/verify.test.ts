import { createLocalJWKSet, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { KeysUnavailableError } from '../../src/webhook/keys.js';
import {
  createNotificationVerifier,
  type KeySource,
  type VerifyFailure,
  verifyNotificationToken,
} from '../../src/webhook/verify.js';
import {
  APP_ID,
  base64url,
  ISSUER,
  mintToken,
  newSigningKey,
  type SigningKey,
  TENANT,
} from './support.js';

const nowSec = () => Math.floor(Date.now() / 1000);

let key: SigningKey;
let keys: ReturnType<typeof createLocalJWKSet>;

beforeAll(async () => {
  key = await newSigningKey();
  keys = createLocalJWKSet({ keys: [key.jwk] });
});

const options = () => ({ keys, issuers: [ISSUER], audience: APP_ID });

describe('verifyNotificationToken', () => {
  it('accepts a valid token and returns its tenant and claims', async () => {
    const result = await verifyNotificationToken(`Bearer ${await mintToken(key)}`, options());
    expect(result).toMatchObject({ ok: true, tenantId: TENANT, claims: { aud: APP_ID } });
  });

  it('accepts the scheme in any case', async () => {
    const result = await verifyNotificationToken(`bearer ${await mintToken(key)}`, options());
    expect(result.ok).toBe(true);
  });

  const refusals: Array<[string, () => Promise<string | undefined>, VerifyFailure]> = [
    ['no header at all', async () => undefined, 'missing'],
    ['a Basic header', async () => `Basic ${await mintToken(key)}`, 'scheme'],
    ['a token that is not a compact JWT', async () => 'Bearer a.b', 'malformed'],
    ['a token whose parts are not JSON', async () => 'Bearer aaaa.bbbb.cccc', 'malformed'],
    ['a token for another audience', async () => bearer({ aud: 'other' }), 'audience'],
    ['a token from another issuer', async () => bearer({ iss: 'https://evil.example' }), 'issuer'],
    ['a token expired 10 minutes ago', async () => bearer({ exp: nowSec() - 600 }), 'expired'],
    [
      'a token valid only in 10 minutes',
      async () => bearer({ nbf: nowSec() + 600 }),
      'not-yet-valid',
    ],
    ['a token without exp', async () => bearer({ exp: undefined }), 'claims'],
    ['a token without a tenant', async () => bearer({ tid: undefined }), 'tenant-missing'],
    ['an unsigned token (alg none)', async () => `Bearer ${unsigned()}`, 'algorithm'],
    [
      'an HS256 token keyed with the public key',
      async () => `Bearer ${await hs256()}`,
      'algorithm',
    ],
    [
      'a token signed by an unknown key',
      async () => `Bearer ${await mintToken(await newSigningKey())}`,
      'key',
    ],
    [
      'a token signed by another key under a known kid',
      async () => `Bearer ${await mintToken(await newSigningKey(key.kid))}`,
      'signature',
    ],
  ];

  for (const [what, header, reason] of refusals) {
    it(`refuses ${what} as ${reason}`, async () => {
      const result = await verifyNotificationToken(await header(), options());
      expect(result).toMatchObject({ ok: false, reason });
    });
  }

  it('applies the tenant allow-list without regard to case', async () => {
    const verify = createNotificationVerifier({ ...options(), tenants: [TENANT.toUpperCase()] });
    expect((await verify(await bearer())).ok).toBe(true);
    const other = await verify(await bearer({ tid: '0b9a6b9e-3c1f-4f55-8a0e-1c2d3e4f5a6b' }));
    expect(other).toMatchObject({ ok: false, reason: 'tenant-not-allowed' });
  });

  it('honours a custom clock tolerance', async () => {
    const strict = createNotificationVerifier({ ...options(), clockToleranceSec: 0 });
    const result = await strict(await bearer({ exp: nowSec() - 5 }));
    expect(result).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('names an unreachable key set keys-unavailable, the service’s fault', async () => {
    const result = await verifyNotificationToken(await bearer(), {
      ...options(),
      keys: async () => {
        throw new KeysUnavailableError('down');
      },
    });
    expect(result).toMatchObject({ ok: false, reason: 'keys-unavailable' });
  });

  it('never puts the token in the refusal detail', async () => {
    const header = await bearer({ aud: 'other' });
    const result = await verifyNotificationToken(header, options());
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.detail).not.toContain(header.slice(7, 40));
  });

  it('refuses to be built without issuers or audience', () => {
    expect(() => createNotificationVerifier({ ...options(), issuers: [] })).toThrow(TypeError);
    expect(() => createNotificationVerifier({ ...options(), audience: '' })).toThrow(TypeError);
    expect(() => createNotificationVerifier({ ...options(), clockToleranceSec: -1 })).toThrow(
      TypeError,
    );
  });
});

async function bearer(claims: Record<string, unknown> = {}): Promise<string> {
  return `Bearer ${await mintToken(key, claims)}`;
}

function unsigned(): string {
  const claims = { iss: ISSUER, aud: APP_ID, tid: TENANT, exp: nowSec() + 3600 };
  return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
}

function hs256(): Promise<string> {
  return new SignJWT({ iss: ISSUER, aud: APP_ID, tid: TENANT })
    .setProtectedHeader({ alg: 'HS256', kid: key.kid })
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(JSON.stringify(key.jwk)));
}

describe('a verifier with a key resolver: tokens that verified are cached', () => {
  const T = nowSec();
  /** A key set as a resolver: key look-ups counted, the set and the generation settable. */
  function source() {
    const counted = { lookups: 0, generation: 1, set: keys };
    const keySource: KeySource = {
      getKey: (...args: Parameters<typeof keys>) => {
        counted.lookups += 1;
        return counted.set(...args);
      },
      generation: () => counted.generation,
    };
    return { counted, keySource };
  }
  function verifier(keySource: KeySource, extra: { cachedTokens?: number } = {}) {
    const clock = { ms: T * 1000 };
    const verify = createNotificationVerifier({
      ...options(),
      keys: keySource,
      now: () => clock.ms,
      ...extra,
    });
    return { verify, clock };
  }
  const at = (sec: number) => sec * 1000;

  it('accepts a token seen before without looking up its key again', async () => {
    const { counted, keySource } = source();
    const { verify } = verifier(keySource);
    const header = await bearer({ iat: T, nbf: T, exp: T + 300 });
    const first = await verify(header);
    const second = await verify(header);
    expect(first).toMatchObject({ ok: true, tenantId: TENANT });
    expect(second).toEqual(first);
    expect(counted.lookups).toBe(1);
  });

  it('refuses a cached token once it has expired, with the same clock tolerance', async () => {
    const { counted, keySource } = source();
    const { verify, clock } = verifier(keySource);
    const header = await bearer({ iat: T, nbf: T, exp: T + 300 });
    expect((await verify(header)).ok).toBe(true);
    clock.ms = at(T + 300 + 59);
    expect((await verify(header)).ok).toBe(true);
    expect(counted.lookups).toBe(1);
    clock.ms = at(T + 300 + 60);
    expect(await verify(header)).toMatchObject({ ok: false, reason: 'expired' });
    clock.ms = at(T);
    expect((await verify(header)).ok).toBe(true);
    expect(counted.lookups).toBe(3);
  });

  it('refuses a cached token when the clock is set back before its nbf', async () => {
    const { keySource } = source();
    const { verify, clock } = verifier(keySource);
    const header = await bearer({ iat: T, nbf: T + 50, exp: T + 300 });
    expect((await verify(header)).ok).toBe(true);
    clock.ms = at(T - 20);
    expect(await verify(header)).toMatchObject({ ok: false, reason: 'not-yet-valid' });
  });

  it('does not cache a token that is not yet valid, and accepts it once it is', async () => {
    const { counted, keySource } = source();
    const { verify, clock } = verifier(keySource);
    const header = await bearer({ iat: T, nbf: T + 600, exp: T + 900 });
    expect(await verify(header)).toMatchObject({ ok: false, reason: 'not-yet-valid' });
    expect(await verify(header)).toMatchObject({ ok: false, reason: 'not-yet-valid' });
    clock.ms = at(T + 600);
    expect((await verify(header)).ok).toBe(true);
    expect((await verify(header)).ok).toBe(true);
    expect(counted.lookups).toBe(3);
  });

  it('verifies a cached token in full again once the key set changed', async () => {
    const { counted, keySource } = source();
    const { verify } = verifier(keySource);
    const header = await bearer();
    expect((await verify(header)).ok).toBe(true);
    counted.generation = 2;
    expect((await verify(header)).ok).toBe(true);
    expect((await verify(header)).ok).toBe(true);
    expect(counted.lookups).toBe(2);
  });

  it('refuses a cached token whose key was rotated out of the key set', async () => {
    const { counted, keySource } = source();
    const { verify } = verifier(keySource);
    const header = await bearer();
    expect((await verify(header)).ok).toBe(true);
    counted.set = createLocalJWKSet({ keys: [(await newSigningKey()).jwk] });
    counted.generation = 2;
    expect(await verify(header)).toMatchObject({ ok: false, reason: 'key' });
    expect(await verify(header)).toMatchObject({ ok: false, reason: 'key' });
    expect(counted.lookups).toBe(3);
  });

  it('refuses a cached token changed in its payload or its signature', async () => {
    const { keySource } = source();
    const { verify } = verifier(keySource);
    const token = await mintToken(key);
    expect((await verify(`Bearer ${token}`)).ok).toBe(true);
    const [head, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as object;
    const otherTenant = base64url({ ...claims, tid: '0b9a6b9e-3c1f-4f55-8a0e-1c2d3e4f5a6b' });
    const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
    for (const tampered of [
      `${head}.${otherTenant}.${signature}`,
      `${head}.${payload}.${flipped}`,
    ]) {
      expect(await verify(`Bearer ${tampered}`)).toMatchObject({ ok: false, reason: 'signature' });
    }
    expect((await verify(`Bearer ${token}`)).ok).toBe(true);
  });

  it('caches only successes: a refused token is verified every time', async () => {
    const { counted, keySource } = source();
    const verify = createNotificationVerifier({
      ...options(),
      keys: keySource,
      tenants: ['0b9a6b9e-3c1f-4f55-8a0e-1c2d3e4f5a6b'],
    });
    const header = await bearer();
    for (let i = 0; i < 3; i++) {
      expect(await verify(header)).toMatchObject({ ok: false, reason: 'tenant-not-allowed' });
    }
    expect(counted.lookups).toBe(3);
  });

  it('keeps at most cachedTokens tokens, the least recently used leaving first', async () => {
    const { counted, keySource } = source();
    const { verify } = verifier(keySource, { cachedTokens: 2 });
    const [a, b, c] = await Promise.all([1, 2, 3].map((n) => bearer({ exp: T + 600 + n })));
    for (const header of [a, b, c]) expect((await verify(header)).ok).toBe(true);
    expect(counted.lookups).toBe(3);
    expect((await verify(c)).ok).toBe(true);
    expect((await verify(b)).ok).toBe(true);
    expect(counted.lookups).toBe(3);
    expect((await verify(a)).ok).toBe(true);
    expect(counted.lookups).toBe(4);
  });

  it('verifies every token in full with cachedTokens 0 or a fixed key function', async () => {
    const { counted, keySource } = source();
    const { verify } = verifier(keySource, { cachedTokens: 0 });
    const fixed = createNotificationVerifier({ ...options(), keys: keySource.getKey });
    const header = await bearer();
    for (const check of [verify, verify, fixed, fixed]) expect((await check(header)).ok).toBe(true);
    expect(counted.lookups).toBe(4);
    expect(() => createNotificationVerifier({ ...options(), cachedTokens: -1 })).toThrow(TypeError);
  });
});
