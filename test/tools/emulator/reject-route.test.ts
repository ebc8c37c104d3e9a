import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGraphEmulator, type GraphEmulator } from '../../../src/tools/emulator/emulator.js';
import { eventually } from '../../support/eventually.js';
import { call, graphError, postReject } from './support.js';

let graph: GraphEmulator;

beforeEach(async () => {
  graph = await createGraphEmulator();
});

afterEach(async () => {
  await graph.close();
});

describe('a valid reject', () => {
  it('is answered 202 with no body, a request-id and the client-request-id echoed', async () => {
    const clientRequestId = randomUUID();

    const answer = await postReject(
      graph.url,
      randomUUID(),
      { reason: 'busy' },
      {
        'client-request-id': clientRequestId,
      },
    );

    expect(answer.status).toBe(202);
    expect(answer.text).toBe('');
    expect(answer.headers['client-request-id']).toBe(clientRequestId);
    expect(answer.headers['request-id']).toEqual(expect.any(String));
  });

  it('is recorded with its call, reason, callbackUri, ids, token and arrival times', async () => {
    const callId = randomUUID();
    const before = Date.now();

    await postReject(graph.url, callId, {
      reason: 'forbidden',
      callbackUri: 'https://bot.contoso.com/cb',
    });

    const [record] = graph.received();
    expect(record).toMatchObject({
      seq: 1,
      apiVersion: 'v1.0',
      callId,
      reason: 'forbidden',
      callbackUri: 'https://bot.contoso.com/cb',
      token: 'test-token',
      status: 202,
      fault: null,
      dropped: false,
    });
    expect(record?.receivedAt).toBeGreaterThanOrEqual(before);
    expect(record?.answeredPerf).toBeGreaterThanOrEqual(record?.receivedPerf ?? Infinity);
  });

  it('is accepted at most once per call: the second reject finds no call (404 8522)', async () => {
    const callId = randomUUID();

    const first = await postReject(graph.url, callId);
    const second = await postReject(graph.url, callId);

    expect(first.status).toBe(202);
    expect(second.status).toBe(404);
    expect(graphError(second)).toEqual({
      code: '8522',
      message: 'Call not found.',
      innerError: expect.objectContaining({ 'request-id': expect.any(String) }),
    });
    expect(graph.acceptedCount(callId)).toBe(1);
  });

  it('treats the spellings of one call id as the same call', async () => {
    const callId = randomUUID();

    await postReject(graph.url, callId);
    const second = await postReject(graph.url, callId.replaceAll('-', '').toUpperCase());

    expect(second.status).toBe(404);
    expect(graph.acceptedCount(callId.toUpperCase())).toBe(1);
  });
});

describe('an invalid reject', () => {
  it('is answered 401 with a Graph error body when there is no bearer token', async () => {
    const answer = await postReject(
      graph.url,
      randomUUID(),
      { reason: 'busy' },
      {
        authorization: '',
      },
    );

    expect(answer.status).toBe(401);
    expect(graphError(answer).code).toBe('InvalidAuthenticationToken');
    expect(graph.received()[0]?.status).toBe(401);
  });

  it('is answered 400 naming reason when it is not none, busy or forbidden', async () => {
    const answer = await postReject(graph.url, randomUUID(), { reason: 'Busy' });

    expect(answer.status).toBe(400);
    expect(graphError(answer)).toMatchObject({
      code: 'BadRequest',
      message: 'reason: must be none, busy or forbidden',
    });
  });

  it('is answered 400 naming callbackUri when it is not https', async () => {
    const answer = await postReject(graph.url, randomUUID(), {
      reason: 'none',
      callbackUri: 'http://bot.contoso.com/cb',
    });

    expect(answer.status).toBe(400);
    expect(graphError(answer).message).toBe('callbackUri: must be an https URL');
  });

  it('is answered 400 when the body is not JSON, and accepts nothing', async () => {
    const callId = randomUUID();

    const answer = await postReject(graph.url, callId, 'reason=busy');

    expect(answer.status).toBe(400);
    expect(graphError(answer).message).toBe('the body must be a JSON object');
    expect(graph.acceptedCount(callId)).toBe(0);
  });

  it('is answered 405 to another method and 404 on an unknown path', async () => {
    const get = await call(`${graph.url}/v1.0/communications/calls/${randomUUID()}/reject`);
    const unknown = await call(`${graph.url}/v2.0/communications/calls`);

    expect(get.status).toBe(405);
    expect(unknown.status).toBe(404);
    expect(graphError(unknown).code).toBe('UnknownUrl');
  });
});

describe('faults', () => {
  it("consumes a call's queued faults one per request, then answers normally", async () => {
    const callId = randomUUID();
    graph.setFault({
      callId,
      times: 2,
      fault: { kind: 'status', status: 503, retryAfterSeconds: 1 },
    });

    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await postReject(graph.url, callId)).status);

    expect(statuses).toEqual([503, 503, 202]);
    expect(graph.received()[0]?.fault).toBe('status');
  });

  it('answers 429 with Retry-After in seconds', async () => {
    const callId = randomUUID();
    graph.setFault({ callId, fault: { kind: 'status', status: 429, retryAfterSeconds: 3 } });

    const answer = await postReject(graph.url, callId);

    expect(answer.status).toBe(429);
    expect(answer.headers['retry-after']).toBe('3');
    expect(graphError(answer).code).toBe('TooManyRequests');
  });

  it('answers 403 7504 for a forbidden fault', async () => {
    const callId = randomUUID();
    graph.setFault({ callId, fault: { kind: 'forbidden' } });

    const answer = await postReject(graph.url, callId);

    expect(answer.status).toBe(403);
    expect(graphError(answer)).toMatchObject({
      code: '7504',
      message: 'Insufficient enterprise tenant permissions',
    });
  });

  it('applies a rate fault to the requests its random draw picks', async () => {
    const draws = [0.1, 0.9, 0.2];
    const seeded = await createGraphEmulator({ random: () => draws.shift() ?? 1 });
    seeded.setFault({ rate: 0.5, fault: { kind: 'status', status: 500 } });

    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await postReject(seeded.url, randomUUID())).status);
    await seeded.close();

    expect(statuses).toEqual([500, 202, 500]);
  });

  it('holds the answer until released, having accepted the reject on arrival', async () => {
    const callId = randomUUID();
    graph.setFault({ callId, fault: { kind: 'slow', hold: true } });

    const pending = postReject(graph.url, callId);
    await eventually(() => graph.stats().held === 1);
    expect(graph.acceptedCount(callId)).toBe(1);
    expect(graph.received()[0]?.status).toBeNull();

    expect(graph.release(callId)).toBe(1);
    expect((await pending).status).toBe(202);
  });

  it('delays the answer by the ms of a slow fault', async () => {
    const callId = randomUUID();
    graph.setFault({ callId, fault: { kind: 'slow', ms: 150 } });
    const started = performance.now();

    const answer = await postReject(graph.url, callId);

    expect(answer.status).toBe(202);
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
  });

  it('drops the connection without an answer, counting the reject as accepted', async () => {
    const callId = randomUUID();
    graph.setFault({ callId, fault: { kind: 'drop' } });

    await expect(postReject(graph.url, callId)).rejects.toThrow(/other side closed|socket/i);

    expect(graph.received()[0]).toMatchObject({ dropped: true, status: null });
    expect(graph.acceptedCount(callId)).toBe(1);
  });

  it('drops without accepting when the fault says accept: false', async () => {
    const callId = randomUUID();
    graph.setFault({ callId, fault: { kind: 'drop', accept: false } });

    await expect(postReject(graph.url, callId)).rejects.toThrow();

    expect(graph.acceptedCount(callId)).toBe(0);
    expect((await postReject(graph.url, callId)).status).toBe(202);
  });

  it('refuses a bad fault rule with a TypeError naming the field', () => {
    expect(() =>
      graph.setFault({ callId: 'c1', fault: { kind: 'status', status: 418 as 429 } }),
    ).toThrow(new TypeError('invalid fault rule: fault.status: must be 429, 500, 502, 503 or 504'));
  });

  it('adds latencyMs to every answer', async () => {
    const slow = await createGraphEmulator({ latencyMs: 100 });
    const started = performance.now();

    await postReject(slow.url, randomUUID());
    await slow.close();

    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
  });
});
