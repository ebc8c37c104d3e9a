import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGraphEmulator, type GraphEmulator } from '../../../src/tools/emulator/emulator.js';
import { createKeyResolver } from '../../../src/webhook/keys.js';
import { createNotificationVerifier } from '../../../src/webhook/verify.js';
import { call, graphError, postReject } from './support.js';

/** The emulator as Graph's notifier, against a callback that records what it receives. */

const APP_ID = 'bot-app-id';

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: {
    '@odata.type': string;
    value: {
      changeType: string;
      resourceUrl: string;
      resourceData?: Record<string, unknown> & { state?: string };
    }[];
  };
}

let graph: GraphEmulator;
let callback: Server;
let callbackUrl: string;
let received: Received[] = [];
let answerWith = 202;

beforeAll(async () => {
  graph = await createGraphEmulator();
  callback = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(text) });
      res.writeHead(answerWith).end();
    });
  });
  await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
  callbackUrl = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/api/calling`;
});

afterEach(() => {
  graph.reset();
  received = [];
  answerWith = 202;
});

afterAll(async () => {
  callback?.closeAllConnections();
  await new Promise((resolve) => callback?.close(resolve));
  await graph?.close();
});

describe('signing keys', () => {
  it('serves an OpenID configuration whose JWKS verifies the notification tokens', async () => {
    const config = await call(graph.openIdUrl);
    expect(config.json).toMatchObject({ issuer: graph.issuer, jwks_uri: `${graph.url}/keys` });
    const keys = (await call(`${graph.url}/keys`)).json as { keys: Record<string, unknown>[] };
    expect(keys.keys).toHaveLength(1);
    expect(keys.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(keys.keys[0]).not.toHaveProperty('d');

    await graph.placeCall({ callbackUrl, appId: APP_ID, tenantId: 'tenant-1' });
    const verify = createNotificationVerifier({
      keys: createKeyResolver({ openIdUrl: graph.openIdUrl }).getKey,
      issuers: [graph.issuer],
      audience: APP_ID,
    });
    const verdict = await verify(received[0]?.headers.authorization);
    expect(verdict).toMatchObject({ ok: true, tenantId: 'tenant-1' });
    const exp = verdict.ok ? Number(verdict.claims.exp) : 0;
    expect(exp - Date.now() / 1000).toBeLessThanOrEqual(300);
    expect(graph.issuer).toBe('https://api.botframework.com');
  });
});

describe('POST /_emulator/calls', () => {
  it('POSTs Graph’s incoming-call batch with its headers and records the answer', async () => {
    answerWith = 503;
    const answer = await call(`${graph.url}/_emulator/calls`, {
      body: { callbackUrl, appId: APP_ID, callId: 'call-1' },
    });
    expect(answer.status).toBe(201);
    expect(answer.json).toMatchObject({ callId: 'call-1', status: 503 });
    const [first] = received;
    expect(first?.headers['scenario-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(first?.headers['x-microsoft-skype-chain-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(first?.headers['x-microsoft-skype-message-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(first?.headers['content-type']).toMatch(/^application\/json/);
    expect(first?.body['@odata.type']).toBe('#microsoft.graph.commsNotifications');
    expect(first?.body.value[0]).toMatchObject({
      changeType: 'created',
      resourceUrl: '/communications/calls/call-1',
      resourceData: {
        '@odata.type': '#microsoft.graph.call',
        state: 'incoming',
        direction: 'incoming',
        tenantId: expect.any(String),
        source: { identity: { user: expect.any(Object) } },
        targets: [{ identity: { application: { id: APP_ID } } }],
      },
    });
    expect((await call(`${graph.url}/_emulator/notifications`)).json).toMatchObject([
      { callId: 'call-1', changeType: 'created', state: 'incoming', status: 503 },
    ]);
  });

  it('names the bad field', async () => {
    const missing = await call(`${graph.url}/_emulator/calls`, { body: { callbackUrl } });
    expect(missing.status).toBe(400);
    expect(graphError(missing).message).toMatch(/^appId: /);
    const badUrl = await call(`${graph.url}/_emulator/calls`, {
      body: { callbackUrl: 'not a url', appId: APP_ID },
    });
    expect(graphError(badUrl).message).toMatch(/^callbackUrl: /);
    expect((await call(`${graph.url}/_emulator/calls`, { body: '[1]' })).status).toBe(400);
    await expect(graph.placeCall({ callbackUrl, appId: '' })).rejects.toThrow(/appId/);
    expect(received).toEqual([]);
  });

  it('records no status when nobody answers', async () => {
    const placed = await graph.placeCall({ callbackUrl: 'http://127.0.0.1:1/x', appId: APP_ID });
    expect(placed.status).toBeNull();
    expect(placed.notification.error).toBeTruthy();
  });
});

describe('follow-up notifications', () => {
  it('an accepted reject is followed by one bare deleted', async () => {
    const { callId } = await graph.placeCall({ callbackUrl, appId: APP_ID });
    expect((await postReject(graph.url, callId)).status).toBe(202);
    expect((await postReject(graph.url, callId)).status).toBe(404);
    await graph.notificationsSettled();
    expect(received.map((r) => r.body.value[0]?.changeType)).toEqual(['created', 'deleted']);
    expect(received[1]?.body.value[0]).toEqual({
      '@odata.type': '#microsoft.graph.commsNotification',
      changeType: 'deleted',
      resource: `/app/calls/${callId}`,
      resourceUrl: `/communications/calls/${callId}`,
    });
    // The same call's correlation headers on every notification.
    expect(received[1]?.headers['scenario-id']).toBe(received[0]?.headers['scenario-id']);
  });

  it('a refused reject, or one for a call never placed, sends nothing', async () => {
    const { callId } = await graph.placeCall({ callbackUrl, appId: APP_ID });
    graph.setFault({ callId, times: 1, fault: { kind: 'status', status: 503 } });
    expect((await postReject(graph.url, callId)).status).toBe(503);
    expect((await postReject(graph.url, 'never-placed')).status).toBe(202);
    await graph.notificationsSettled();
    expect(received).toHaveLength(1);
  });

  it('answer → updated/established; hang-up → deleted/terminated with resultInfo', async () => {
    const { callId } = await graph.placeCall({ callbackUrl, appId: APP_ID });
    const answered = await call(`${graph.url}/_emulator/calls/${callId}/answer`, {
      method: 'POST',
    });
    expect(answered.status).toBe(200);
    expect(answered.json).toMatchObject({ changeType: 'updated', state: 'established' });
    const again = await call(`${graph.url}/_emulator/calls/${callId}/answer`, { method: 'POST' });
    expect(again.status).toBe(409);
    const hungUp = await call(`${graph.url}/_emulator/calls/${callId}/hangup`, {
      body: { subcode: 540200 },
    });
    expect(hungUp.status).toBe(200);
    expect(received.map((r) => r.body.value[0])).toMatchObject([
      { changeType: 'created' },
      { changeType: 'updated', resourceData: { state: 'established' } },
      {
        changeType: 'deleted',
        resourceData: { state: 'terminated', resultInfo: { code: 0, subcode: 540200 } },
      },
    ]);
    expect(
      (await call(`${graph.url}/_emulator/calls/${callId}/hangup`, { method: 'POST' })).status,
    ).toBe(409);
    expect(
      (await call(`${graph.url}/_emulator/calls/unknown/answer`, { method: 'POST' })).status,
    ).toBe(404);
    expect((await call(`${graph.url}/_emulator/calls`)).json).toMatchObject([
      { callId, state: 'terminated' },
    ]);
  });

  it('a call nobody answers or rejects ends with deleted/terminated when its window passes', async () => {
    const quick = await createGraphEmulator({ answerTimeoutMs: 100 });
    try {
      const { callId } = await quick.placeCall({ callbackUrl, appId: APP_ID });
      await expect
        .poll(() => quick.notifications().map((n) => [n.changeType, n.state]))
        .toEqual([
          ['created', 'incoming'],
          ['deleted', 'terminated'],
        ]);
      expect(quick.calls()).toMatchObject([{ callId, state: 'terminated' }]);
    } finally {
      await quick.close();
    }
  });

  it('POST /_emulator/reset forgets placed calls', async () => {
    await graph.placeCall({ callbackUrl, appId: APP_ID, callId: 'call-r' });
    expect((await call(`${graph.url}/_emulator/reset`, { method: 'POST' })).status).toBe(204);
    expect(graph.calls()).toEqual([]);
    expect(graph.notifications()).toEqual([]);
  });
});
