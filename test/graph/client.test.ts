import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGraphClient, type GraphClient } from '../../src/graph/client.js';
import { staticToken } from '../../src/graph/tokens.js';
import { createGraphEmulator, type GraphEmulator } from '../../src/tools/emulator/emulator.js';
import { captureLog, openSignal, rejectRequest, UUID } from './support.js';

const TOKEN = 'eyJ0eXAi.secret-bearer-token.5f2c';

let graph: GraphEmulator;
let client: GraphClient;
let logs: ReturnType<typeof captureLog>;

beforeEach(async () => {
  graph = await createGraphEmulator();
  logs = captureLog();
  client = createGraphClient({
    baseUrl: graph.url,
    apiVersion: 'v1.0',
    tokens: staticToken(TOKEN),
    log: logs.log,
  });
});

afterEach(async () => {
  await client.close();
  await graph.close();
});

describe('a reject Graph accepts', () => {
  it('posts the reason to /v1.0/communications/calls/{id}/reject and reports 202', async () => {
    const request = rejectRequest({ reason: 'busy' });

    const outcome = await client.reject(request, openSignal());

    expect(outcome).toEqual({ status: 202, maybeDelivered: false });
    expect(graph.received()).toMatchObject([
      { apiVersion: 'v1.0', callId: request.callId, reason: 'busy', status: 202 },
    ]);
    expect(graph.acceptedCount(request.callId)).toBe(1);
  });

  it('sends the bearer token, a JSON content type and a client-request-id', async () => {
    await client.reject(rejectRequest(), openSignal());

    const [received] = graph.received();
    expect(received?.token).toBe(TOKEN);
    expect(received?.contentType).toBe('application/json');
    expect(received?.clientRequestId).toMatch(UUID);
  });

  it('sends a fresh client-request-id with every attempt', async () => {
    const first = rejectRequest({ attempt: 1 });
    graph.setFault({ callId: first.callId, fault: { kind: 'status', status: 503 } });

    await client.reject(first, openSignal());
    await client.reject({ ...first, attempt: 2 }, openSignal());

    const ids = graph.received().map((r) => r.clientRequestId);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
  });

  it('leaves callbackUri out of the body when there is none', async () => {
    await client.reject(rejectRequest({ reason: 'none', callbackUri: null }), openSignal());

    expect(JSON.parse(graph.received()[0]?.body ?? '')).toEqual({ reason: 'none' });
  });

  it('sends callbackUri when there is one', async () => {
    const callbackUri = 'https://bot.contoso.com/api/calling';

    await client.reject(rejectRequest({ reason: 'forbidden', callbackUri }), openSignal());

    expect(JSON.parse(graph.received()[0]?.body ?? '')).toEqual({
      reason: 'forbidden',
      callbackUri,
    });
  });

  it('uses the beta path when configured for beta', async () => {
    const beta = createGraphClient({
      baseUrl: graph.url,
      apiVersion: 'beta',
      tokens: staticToken(TOKEN),
    });

    await beta.reject(rejectRequest(), openSignal());
    await beta.close();

    expect(graph.received()[0]?.apiVersion).toBe('beta');
  });

  it('accepts each of many concurrent rejects once', async () => {
    const requests = Array.from({ length: 200 }, () => rejectRequest());

    const outcomes = await Promise.all(requests.map((r) => client.reject(r, openSignal())));

    expect(outcomes.every((o) => o.status === 202)).toBe(true);
    expect(requests.every((r) => graph.acceptedCount(r.callId) === 1)).toBe(true);
  });
});

describe('Graph refusing a reject', () => {
  it('reports 429 with its Retry-After in ms', async () => {
    const request = rejectRequest();
    graph.setFault({
      callId: request.callId,
      fault: { kind: 'status', status: 429, retryAfterSeconds: 2 },
    });

    const outcome = await client.reject(request, openSignal());

    expect(outcome).toMatchObject({
      status: 429,
      code: 'TooManyRequests',
      retryAfterMs: 2000,
      maybeDelivered: false,
    });
    expect(outcome.message).toMatch(/Too many requests/);
  });

  it.each([500, 502, 503, 504] as const)('reports %i with the Graph error code', async (status) => {
    const request = rejectRequest();
    graph.setFault({ callId: request.callId, fault: { kind: 'status', status } });

    const outcome = await client.reject(request, openSignal());

    expect(outcome.status).toBe(status);
    expect(outcome.code).toEqual(expect.any(String));
    expect(outcome.retryAfterMs).toBeUndefined();
  });

  it('reports Retry-After on a 503 too', async () => {
    const request = rejectRequest();
    graph.setFault({
      callId: request.callId,
      fault: { kind: 'status', status: 503, retryAfterSeconds: 5 },
    });

    expect(await client.reject(request, openSignal())).toMatchObject({
      status: 503,
      retryAfterMs: 5000,
    });
  });

  it('reports 404 8522 "Call not found." for a call that is gone', async () => {
    const request = rejectRequest();
    graph.setFault({ callId: request.callId, fault: { kind: 'notFound' } });

    expect(await client.reject(request, openSignal())).toEqual({
      status: 404,
      maybeDelivered: false,
      code: '8522',
      message: 'Call not found.',
    });
  });

  it('reports 404 8522 for a second reject of a call Graph already accepted', async () => {
    const request = rejectRequest();

    await client.reject(request, openSignal());
    const second = await client.reject({ ...request, attempt: 2 }, openSignal());

    expect(second).toMatchObject({ status: 404, code: '8522' });
    expect(graph.acceptedCount(request.callId)).toBe(1);
  });

  it('reports 403 7504 with its code and message', async () => {
    const request = rejectRequest();
    graph.setFault({ callId: request.callId, fault: { kind: 'forbidden' } });

    expect(await client.reject(request, openSignal())).toEqual({
      status: 403,
      maybeDelivered: false,
      code: '7504',
      message: 'Insufficient enterprise tenant permissions',
    });
  });
});

describe('a 401 from Graph', () => {
  it('reports it, and tells the token source to drop that token', async () => {
    const request = rejectRequest();
    graph.setFault({ callId: request.callId, fault: { kind: 'unauthorized' } });
    const invalidated: string[] = [];
    const own = createGraphClient({
      baseUrl: graph.url,
      apiVersion: 'v1.0',
      tokens: { getToken: async () => TOKEN, invalidate: (token) => invalidated.push(token) },
    });
    try {
      expect(await own.reject(request, openSignal())).toEqual({
        status: 401,
        maybeDelivered: false,
        code: 'InvalidAuthenticationToken',
        message: 'Access token has expired or is not yet valid.',
      });
      expect(invalidated).toEqual([TOKEN]);
      // Anything but a 401 keeps the token.
      await own.reject(rejectRequest(), openSignal());
      expect(invalidated).toEqual([TOKEN]);
    } finally {
      await own.close();
    }
  });
});

describe('logging', () => {
  it('logs each attempt with the call, attempt, correlation ids, status and duration', async () => {
    const request = rejectRequest({ attempt: 3 });

    await client.reject(request, openSignal());

    const [received] = graph.received();
    const entry = logs.entries().find((e) => e.msg === 'reject accepted');
    expect(entry).toMatchObject({
      callId: request.callId,
      attempt: 3,
      clientRequestId: received?.clientRequestId,
      requestId: received?.requestId,
      scenarioId: expect.stringMatching(UUID),
      status: 202,
      durationMs: expect.any(Number),
    });
  });

  it('logs refusals with the Graph code', async () => {
    const request = rejectRequest();
    graph.setFault({ callId: request.callId, fault: { kind: 'forbidden' } });

    await client.reject(request, openSignal());

    expect(logs.entries().find((e) => e.msg === 'reject refused')).toMatchObject({
      callId: request.callId,
      status: 403,
      code: '7504',
    });
  });

  it('never writes the token to the log', async () => {
    const requests = [rejectRequest(), rejectRequest()];
    graph.setFault({ callId: requests[1]?.callId ?? '', fault: { kind: 'status', status: 500 } });

    for (const request of requests) await client.reject(request, openSignal());

    expect(logs.entries().length).toBeGreaterThanOrEqual(2);
    expect(logs.text()).not.toContain(TOKEN);
    expect(logs.text()).not.toContain('secret-bearer-token');
  });
});

describe('an instance that no longer owns the call', () => {
  it('never writes the request: it counts as not delivered, and Graph sees nothing', async () => {
    const fenced = createGraphClient({
      baseUrl: graph.url,
      apiVersion: 'v1.0',
      tokens: staticToken(TOKEN),
      mayAct: () => false,
    });
    try {
      const outcome = await fenced.reject(rejectRequest(), openSignal());

      expect(outcome).toMatchObject({ status: null, maybeDelivered: false });
      expect(graph.received()).toEqual([]);
    } finally {
      await fenced.close();
    }
  });

  it('is asked with the call id when the request is about to be written', async () => {
    const asked: string[] = [];
    const owner = createGraphClient({
      baseUrl: graph.url,
      apiVersion: 'v1.0',
      tokens: staticToken(TOKEN),
      mayAct: (callId) => {
        asked.push(callId);
        return true;
      },
    });
    try {
      const request = rejectRequest();
      await owner.reject(request, openSignal());

      expect(asked).toEqual([request.callId]);
      expect(graph.acceptedCount(request.callId)).toBe(1);
    } finally {
      await owner.close();
    }
  });
});
