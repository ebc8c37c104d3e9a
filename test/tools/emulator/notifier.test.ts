import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createNotificationKeys,
  createNotifier,
  NOTIFICATION_ISSUER,
  type NotificationKeys,
  type Notifier,
} from '../../../src/tools/emulator/notifier.js';
import { createNotificationVerifier } from '../../../src/webhook/verify.js';

/** The notifier's tokens: one per app and tenant, reused as Graph reuses its token. */

const APP_ID = 'bot-app-id';
const START = new Date('2026-12-02T12:00:00Z').getTime();

let callback: Server;
let callbackUrl: string;
let tokens: string[] = [];
let keys: NotificationKeys;
let notifier: Notifier | undefined;

beforeAll(async () => {
  keys = await createNotificationKeys();
  callback = createServer((req, res) => {
    tokens.push((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    req.resume().on('end', () => res.writeHead(202).end());
  });
  await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
  callbackUrl = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/api/calling`;
});

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(START);
});

afterEach(async () => {
  vi.useRealTimers();
  await notifier?.close();
  notifier = undefined;
  tokens = [];
});

afterAll(async () => {
  callback?.closeAllConnections();
  await new Promise((resolve) => callback?.close(resolve));
});

function start(options: { ttl?: number; keys?: () => Promise<NotificationKeys> } = {}): Notifier {
  notifier = createNotifier({
    keys: options.keys ?? (async () => keys),
    issuer: NOTIFICATION_ISSUER,
    ...(options.ttl !== undefined && { tokenTtlSeconds: options.ttl }),
  });
  return notifier;
}

const place = (graph: Notifier, tenantId?: string, appId = APP_ID) =>
  graph.placeCall({ callbackUrl, appId, ...(tenantId && { tenantId }) });
const at = (seconds: number) => vi.setSystemTime(START + seconds * 1000);

describe('the notifier’s token', () => {
  it('is the same on every notification of a call and of the next call, and verifies', async () => {
    const graph = start();
    const { callId } = await place(graph);
    await graph.answer(callId);
    at(120);
    await place(graph);
    expect(tokens).toHaveLength(3);
    expect(new Set(tokens).size).toBe(1);
    const verify = createNotificationVerifier({
      keys: createLocalJWKSet({ keys: [keys.jwk] }),
      issuers: [NOTIFICATION_ISSUER],
      audience: APP_ID,
    });
    expect(await verify(`Bearer ${tokens[0]}`)).toMatchObject({ ok: true });
  });

  it('is signed anew once less than a minute of its lifetime is left', async () => {
    const graph = start({ ttl: 300 });
    await place(graph);
    at(239);
    await place(graph);
    at(240);
    await place(graph);
    const [first, second, third] = tokens;
    expect(second).toBe(first);
    expect(third).not.toBe(first);
    expect(decodeJwt(third ?? '').exp).toBe(START / 1000 + 240 + 300);
  });

  it('is signed anew after half its lifetime when that is shorter than a minute', async () => {
    const graph = start({ ttl: 20 });
    await place(graph);
    at(9);
    await place(graph);
    at(10);
    await place(graph);
    expect(tokens[1]).toBe(tokens[0]);
    expect(tokens[2]).not.toBe(tokens[0]);
  });

  it('is one of its own for another tenant or another app', async () => {
    const graph = start();
    await place(graph, 'tenant-1');
    await place(graph, 'tenant-2');
    await place(graph, 'tenant-1', 'other-app');
    at(30);
    await place(graph, 'tenant-1');
    expect(new Set(tokens).size).toBe(3);
    expect(tokens[3]).toBe(tokens[0]);
    expect(tokens.map((token) => decodeJwt(token).tid)).toEqual([
      'tenant-1',
      'tenant-2',
      'tenant-1',
      'tenant-1',
    ]);
    expect(decodeJwt(tokens[2] ?? '').aud).toBe('other-app');
  });

  it('is signed anew with the new key when the signing key changes', async () => {
    let current = keys;
    const graph = start({ keys: async () => current });
    await place(graph);
    current = await createNotificationKeys();
    await place(graph);
    expect(tokens[1]).not.toBe(tokens[0]);
    expect(decodeProtectedHeader(tokens[0] ?? '').kid).toBe(keys.kid);
    expect(decodeProtectedHeader(tokens[1] ?? '').kid).toBe(current.kid);
  });
});
