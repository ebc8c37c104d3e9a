import { createLocalJWKSet, SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { KeysUnavailableError } from '../../src/webhook/keys.js';
import {
  createNotificationVerifier,
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
