import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { mintToken, newSigningKey, post, startWebhook, type WebhookHarness } from './support.js';

let hook: WebhookHarness | undefined;

afterEach(async () => {
  await hook?.close();
  hook = undefined;
});

describe('a kid the cached key set does not hold', () => {
  it('is fetched once when the keys rotate, and the token is then accepted', async () => {
    const before = await newSigningKey();
    hook = await startWebhook({ keys: [before] });
    expect((await post(hook.url, { token: await mintToken(before) })).status).toBe(202);
    expect(hook.keys.fetches).toEqual({ openId: 1, jwks: 1 });

    const after = await newSigningKey();
    hook.keys.serve([after]);
    hook.clock.advance(31_000);
    expect((await post(hook.url, { token: await mintToken(after) })).status).toBe(202);
    expect(hook.keys.fetches).toEqual({ openId: 2, jwks: 2 });
    expect(hook.published).toHaveLength(2);

    expect((await post(hook.url, { token: await mintToken(after) })).status).toBe(202);
    expect(hook.keys.fetches.jwks).toBe(2);
  });

  it('within the cool-down after a fetch is refused without fetching again', async () => {
    const before = await newSigningKey();
    hook = await startWebhook({ keys: [before] });
    expect((await post(hook.url, { token: await mintToken(before) })).status).toBe(202);

    const after = await newSigningKey();
    hook.keys.serve([before, after]);
    hook.clock.advance(29_000);
    expect((await post(hook.url, { token: await mintToken(after) })).status).toBe(401);
    expect(hook.keys.fetches.jwks).toBe(1);

    hook.clock.advance(2_000);
    expect((await post(hook.url, { token: await mintToken(after) })).status).toBe(202);
    expect(hook.keys.fetches.jwks).toBe(2);
  });
});

describe('a token accepted before, after its key left the key set', () => {
  it('is refused with 401, though it was cached', async () => {
    const before = await newSigningKey();
    hook = await startWebhook({ keys: [before] });
    const old = await mintToken(before);
    expect((await post(hook.url, { token: old })).status).toBe(202);
    expect((await post(hook.url, { token: old })).status).toBe(202);

    const after = await newSigningKey();
    hook.keys.serve([after]);
    hook.clock.advance(31_000);
    expect((await post(hook.url, { token: await mintToken(after) })).status).toBe(202);
    expect(hook.keys.fetches.jwks).toBe(2);

    expect((await post(hook.url, { token: old })).status).toBe(401);
    expect(hook.logText()).toContain('"reason":"key"');
    expect(hook.published).toHaveLength(3);
  });

  it('is refused once the key set has aged out and been fetched again, though only cached tokens came', async () => {
    const before = await newSigningKey();
    hook = await startWebhook({ keys: [before], resolver: { maxAgeMs: 60_000 } });
    const old = await mintToken(before);
    expect((await post(hook.url, { token: old })).status).toBe(202);

    hook.keys.serve([await newSigningKey()]);
    hook.clock.advance(61_000);
    // The stale set still serves while the fresh one is fetched in the background.
    expect((await post(hook.url, { token: old })).status).toBe(202);
    await eventually(() => hook?.keys.fetches.jwks === 2);
    expect((await post(hook.url, { token: old })).status).toBe(401);
    expect(hook.logText()).toContain('"reason":"key"');
  });

  it('is accepted while its key is still in the new set', async () => {
    const before = await newSigningKey();
    hook = await startWebhook({ keys: [before] });
    const old = await mintToken(before);
    expect((await post(hook.url, { token: old })).status).toBe(202);

    const after = await newSigningKey();
    hook.keys.serve([before, after]);
    hook.clock.advance(31_000);
    expect((await post(hook.url, { token: await mintToken(after) })).status).toBe(202);
    expect((await post(hook.url, { token: old })).status).toBe(202);
    expect(hook.keys.fetches.jwks).toBe(2);
  });
});

describe('a flood of 200 tokens with random unknown kids', () => {
  it('is refused with 401 throughout, fetches the keys at most twice, and a valid request right after is answered promptly', async () => {
    const key = await newSigningKey();
    hook = await startWebhook({ keys: [key] });
    const attacker = await newSigningKey();
    const forged = await Promise.all(
      Array.from({ length: 200 }, () => mintToken({ ...attacker, kid: randomUUID() })),
    );
    const url = hook.url;

    const cold = await Promise.all(forged.slice(0, 100).map((token) => post(url, { token })));
    hook.clock.advance(60_000);
    const warm = await Promise.all(forged.slice(100).map((token) => post(url, { token })));

    expect([...cold, ...warm].every((answer) => answer.status === 401)).toBe(true);
    expect(hook.keys.fetches.jwks).toBeLessThanOrEqual(2);
    expect(hook.keys.fetches.openId).toBeLessThanOrEqual(2);
    expect(hook.published).toEqual([]);

    const token = await mintToken(key);
    const started = performance.now();
    const answer = await post(url, { token });
    const ms = performance.now() - started;
    expect(answer.status).toBe(202);
    expect(ms).toBeLessThan(500);
    expect(hook.keys.fetches.jwks).toBeLessThanOrEqual(2);
  });
});

describe('the key endpoint', () => {
  it('being down at start answers 503, so Graph retries, and publishes nothing', async () => {
    const key = await newSigningKey();
    hook = await startWebhook({ keys: [key] });
    hook.keys.fail(500);
    expect((await post(hook.url, { token: await mintToken(key) })).status).toBe(503);
    expect(hook.published).toEqual([]);

    hook.keys.fail(undefined);
    hook.clock.advance(31_000);
    expect((await post(hook.url, { token: await mintToken(key) })).status).toBe(202);
  });
});
