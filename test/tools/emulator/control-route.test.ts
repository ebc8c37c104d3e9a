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

function addFault(body: unknown) {
  return call(`${graph.url}/_emulator/faults`, { method: 'POST', body });
}

describe('POST /_emulator/faults', () => {
  it('queues a fault for a call, which its next reject gets', async () => {
    const callId = randomUUID();

    const added = await addFault({ callId, fault: { kind: 'notFound' } });
    const answer = await postReject(graph.url, callId);

    expect(added.status).toBe(201);
    expect(answer.status).toBe(404);
    expect(graphError(answer).code).toBe('8522');
  });

  it('adds a rate fault for all calls', async () => {
    const added = await addFault({ rate: 1, fault: { kind: 'status', status: 502 } });

    expect(added.status).toBe(201);
    expect((await postReject(graph.url, randomUUID())).status).toBe(502);
  });

  it.each([
    [
      { callId: 'c1', fault: { kind: 'explode' } },
      'fault.kind: must be one of status, notFound, forbidden, unauthorized, slow, drop',
    ],
    [
      { callId: 'c1', fault: { kind: 'status', status: 418 } },
      'fault.status: must be 429, 500, 502, 503 or 504',
    ],
    [
      { callId: 'c1', fault: { kind: 'status', status: 429, retryAfterSeconds: 1.5 } },
      'fault.retryAfterSeconds: must be a whole number of seconds',
    ],
    [{ callId: 'c1', fault: { kind: 'slow' } }, 'fault.ms: give exactly one of ms or hold: true'],
    [
      { callId: 'c1', fault: { kind: 'slow', ms: 10, hold: true } },
      'fault.ms: give exactly one of ms or hold: true',
    ],
    [{ fault: { kind: 'drop' } }, 'callId: give exactly one of callId or rate'],
    [
      { callId: 'c1', rate: 0.5, fault: { kind: 'drop' } },
      'callId: give exactly one of callId or rate',
    ],
    [{ rate: 2, fault: { kind: 'drop' } }, 'rate: must be > 0 and ≤ 1'],
    [{ rate: 0.5, times: 2, fault: { kind: 'drop' } }, 'times: only with callId'],
    [{ callId: 'c1' }, 'fault: is required'],
  ])('refuses %j with 400 naming the field', async (body, message) => {
    const answer = await addFault(body);

    expect(answer.status).toBe(400);
    expect(graphError(answer)).toEqual({ code: 'invalidRequest', message });
  });

  it('refuses a body that is not JSON', async () => {
    const answer = await addFault('kind=drop');

    expect(answer.status).toBe(400);
    expect(graphError(answer).message).toBe('the body must be a JSON object');
  });
});

describe('the rest of the control API', () => {
  it('DELETE /_emulator/faults drops every fault', async () => {
    const callId = randomUUID();
    await addFault({ callId, fault: { kind: 'forbidden' } });

    const cleared = await call(`${graph.url}/_emulator/faults`, { method: 'DELETE' });

    expect(cleared.status).toBe(204);
    expect((await postReject(graph.url, callId)).status).toBe(202);
  });

  it('GET /_emulator/requests lists every reject received', async () => {
    const callId = randomUUID();
    await postReject(graph.url, callId, { reason: 'none' });

    const answer = await call(`${graph.url}/_emulator/requests`);

    expect(answer.json).toMatchObject([{ callId, reason: 'none', status: 202 }]);
  });

  it('GET /_emulator/stats counts answers by status and acceptances by call', async () => {
    const callId = randomUUID();
    await postReject(graph.url, callId);
    await postReject(graph.url, callId);
    await postReject(graph.url, callId, { reason: 'maybe' });

    const answer = await call(`${graph.url}/_emulator/stats`);

    expect(answer.json).toMatchObject({
      requests: 3,
      byStatus: { '202': 1, '404': 1, '400': 1 },
      accepted: { [callId]: 1 },
      held: 0,
      tokensIssued: 0,
      timeOrigin: expect.any(Number),
    });
  });

  it('POST /_emulator/release/{callId} answers the held requests of that call', async () => {
    const callId = randomUUID();
    await addFault({ callId, fault: { kind: 'slow', hold: true } });
    const pending = postReject(graph.url, callId);
    await eventually(() => graph.stats().held === 1);

    const released = await call(`${graph.url}/_emulator/release/${callId}`, { method: 'POST' });

    expect(released.json).toEqual({ released: 1 });
    expect((await pending).status).toBe(202);
  });

  it('POST /_emulator/reset forgets requests, acceptances and faults', async () => {
    const callId = randomUUID();
    await postReject(graph.url, callId);
    await addFault({ rate: 1, fault: { kind: 'forbidden' } });

    const reset = await call(`${graph.url}/_emulator/reset`, { method: 'POST' });

    expect(reset.status).toBe(204);
    expect(graph.received()).toEqual([]);
    expect((await postReject(graph.url, callId)).status).toBe(202);
  });

  it('answers 404 to an unknown control route', async () => {
    const answer = await call(`${graph.url}/_emulator/nothing`);

    expect(answer.status).toBe(404);
    expect(graphError(answer).code).toBe('notFound');
  });
});
