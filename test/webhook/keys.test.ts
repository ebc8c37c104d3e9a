import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errors, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createKeyResolver, KeysUnavailableError } from '../../src/webhook/keys.js';
import {
  fakeClock,
  type KeyServer,
  mintToken,
  newSigningKey,
  type SigningKey,
  startKeyServer,
} from './support.js';

let server: KeyServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function setup(keys?: SigningKey[]) {
  const key = await newSigningKey();
  server = await startKeyServer(keys ?? [key]);
  const clock = fakeClock();
  const resolver = createKeyResolver({ openIdUrl: server.openIdUrl, now: clock.now });
  return { key, server, clock, resolver };
}

const verify = (token: string, getKey: Parameters<typeof jwtVerify>[1]) =>
  jwtVerify(token, getKey, { algorithms: ['RS256'] });

describe('createKeyResolver', () => {
  it('discovers the key set through jwks_uri on first use and caches it', async () => {
    const { key, server, resolver } = await setup();
    const token = await mintToken(key);
    await verify(token, resolver.getKey);
    await verify(token, resolver.getKey);
    expect(server.fetches).toEqual({ openId: 1, jwks: 1 });
  });

  it('shares one fetch among concurrent first uses', async () => {
    const { key, server, resolver } = await setup();
    const token = await mintToken(key);
    await Promise.all(Array.from({ length: 20 }, () => verify(token, resolver.getKey)));
    expect(server.fetches.jwks).toBe(1);
  });

  it('refreshes a set older than two hours in the background, serving the old one meanwhile', async () => {
    const { key, server, clock, resolver } = await setup();
    const token = await mintToken(key);
    await verify(token, resolver.getKey);
    clock.advance(2 * 60 * 60 * 1000 - 1);
    await verify(token, resolver.getKey);
    expect(server.fetches.jwks).toBe(1);
    clock.advance(1);
    await verify(token, resolver.getKey);
    await expect.poll(() => server.fetches.jwks).toBe(2);
  });

  it('keeps the old set when the refresh fails', async () => {
    const { key, server, clock, resolver } = await setup();
    const token = await mintToken(key);
    await verify(token, resolver.getKey);
    server.fail(500);
    clock.advance(3 * 60 * 60 * 1000);
    await verify(token, resolver.getKey);
    expect(await resolver.refresh()).toBe(false);
    await expect(verify(token, resolver.getKey)).resolves.toBeDefined();
  });

  it('refuses an unknown kid within the cool-down without fetching', async () => {
    const { key, server, resolver } = await setup();
    await verify(await mintToken(key), resolver.getKey);
    const stranger = await newSigningKey();
    await expect(verify(await mintToken(stranger), resolver.getKey)).rejects.toBeInstanceOf(
      errors.JWKSNoMatchingKey,
    );
    expect(server.fetches.jwks).toBe(1);
  });

  it('reports KeysUnavailableError when no set was ever fetched, and retries only after the cool-down', async () => {
    const { key, server, clock, resolver } = await setup();
    server.fail(503);
    const token = await mintToken(key);
    await expect(verify(token, resolver.getKey)).rejects.toBeInstanceOf(KeysUnavailableError);
    await expect(verify(token, resolver.getKey)).rejects.toBeInstanceOf(KeysUnavailableError);
    server.fail(undefined);
    await expect(verify(token, resolver.getKey)).rejects.toBeInstanceOf(KeysUnavailableError);
    expect(server.fetches.jwks).toBe(0);
    clock.advance(30_000);
    await expect(verify(token, resolver.getKey)).resolves.toBeDefined();
  });

  it('can be warmed up at start regardless of the cool-down', async () => {
    const { key, server, resolver } = await setup();
    expect(await resolver.refresh()).toBe(true);
    expect(await resolver.refresh()).toBe(true);
    await verify(await mintToken(key), resolver.getKey);
    expect(server.fetches.jwks).toBe(2);
  });

  it('counts key sets: a generation per different set fetched, none for the same set again', async () => {
    const { key, server, clock, resolver } = await setup();
    expect(resolver.generation()).toBe(0);
    expect(await resolver.refresh()).toBe(true);
    expect(resolver.generation()).toBe(1);
    expect(await resolver.refresh()).toBe(true);
    expect(resolver.generation()).toBe(1);

    const next = await newSigningKey();
    server.serve([key, next]);
    clock.advance(30_000);
    await verify(await mintToken(next), resolver.getKey);
    expect(server.fetches.jwks).toBe(3);
    expect(resolver.generation()).toBe(2);

    server.fail(500);
    expect(await resolver.refresh()).toBe(false);
    expect(resolver.generation()).toBe(2);
  });

  it('gives up on a key endpoint that does not answer within the timeout', async () => {
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const resolver = createKeyResolver({
        openIdUrl: `http://127.0.0.1:${port}/.well-known/openid-configuration`,
        timeoutMs: 200,
      });
      const started = performance.now();
      expect(await resolver.refresh()).toBe(false);
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('refuses documents that are not an OpenID configuration or a key set', async () => {
    const documents: Record<string, string> = {
      '/no-jwks-uri': '{"issuer": "x"}',
      '/bad-jwks-uri': '{"jwks_uri": "file:///etc/passwd"}',
      '/not-json': '<html>',
      '/bad-set': '{"jwks_uri": "SELF/set"}',
      '/set': '{"keys": "none"}',
    };
    const odd = createServer((req, res) => {
      const origin = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
      res.end((documents[req.url ?? ''] ?? '').replace('SELF', origin));
    });
    await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
    try {
      const port = (odd.address() as AddressInfo).port;
      for (const path of ['/no-jwks-uri', '/bad-jwks-uri', '/not-json', '/bad-set']) {
        const resolver = createKeyResolver({ openIdUrl: `http://127.0.0.1:${port}${path}` });
        expect(await resolver.refresh()).toBe(false);
      }
    } finally {
      odd.closeAllConnections();
      await new Promise((resolve) => odd.close(resolve));
    }
  });
});
