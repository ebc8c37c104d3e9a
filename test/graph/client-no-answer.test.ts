import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGraphClient, type GraphClient } from '../../src/graph/client.js';
import { staticToken, type TokenSource } from '../../src/graph/tokens.js';
import { createGraphEmulator, type GraphEmulator } from '../../src/tools/emulator/emulator.js';
import { eventually } from '../support/eventually.js';
import { freePort } from '../support/nats-server.js';
import { openSignal, rejectRequest } from './support.js';

const TOKEN = 'no-answer-token';

let graph: GraphEmulator;
let clients: GraphClient[];

function clientFor(baseUrl: string, extra: { connections?: number; tokens?: TokenSource } = {}) {
  const client = createGraphClient({
    baseUrl,
    apiVersion: 'v1.0',
    tokens: extra.tokens ?? staticToken(TOKEN),
    ...(extra.connections !== undefined && { connections: extra.connections }),
  });
  clients.push(client);
  return client;
}

beforeEach(async () => {
  graph = await createGraphEmulator();
  clients = [];
});

afterEach(async () => {
  graph.release();
  await Promise.all(clients.map((c) => c.close()));
  await graph.close();
});

describe('the answer window', () => {
  it('does not start a request once the deadline has passed', async () => {
    const client = clientFor(graph.url);

    const outcome = await client.reject(rejectRequest({ windowMs: -1 }), openSignal());

    expect(outcome).toEqual({
      status: null,
      maybeDelivered: false,
      message: 'answer window closed before the request could start',
    });
    expect(graph.received()).toHaveLength(0);
  });

  it('reads the deadline against the injected clock', async () => {
    const request = rejectRequest();
    const client = createGraphClient({
      baseUrl: graph.url,
      apiVersion: 'v1.0',
      tokens: staticToken(TOKEN),
      now: () => request.deadline,
    });
    clients.push(client);

    expect((await client.reject(request, openSignal())).status).toBeNull();
    expect(graph.received()).toHaveLength(0);
  });

  it('reports a timeout that may have been delivered when Graph holds the answer past the deadline', async () => {
    const client = clientFor(graph.url);
    const request = rejectRequest({ windowMs: 300 });
    graph.setFault({ callId: request.callId, fault: { kind: 'slow', hold: true } });
    const started = Date.now();

    const outcome = await client.reject(request, openSignal());

    expect(outcome).toEqual({ status: null, maybeDelivered: true, message: 'timeout' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now()).toBeGreaterThanOrEqual(request.deadline);
  });

  it('reports a timeout as never delivered when the request was still queued at the deadline', async () => {
    const client = clientFor(graph.url, { connections: 1 });
    const blocker = rejectRequest({ windowMs: 10_000 });
    const queued = rejectRequest({ windowMs: 300 });
    graph.setFault({ callId: blocker.callId, fault: { kind: 'slow', hold: true } });
    const blocked = client.reject(blocker, openSignal());
    await eventually(() => graph.received().length === 1);

    const outcome = await client.reject(queued, openSignal());
    graph.release(blocker.callId);
    await blocked;

    expect(outcome).toEqual({
      status: null,
      maybeDelivered: false,
      message: 'timeout before the request was sent',
    });
    // The abandoned request must never go out once the connection frees up.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(graph.received().map((r) => r.callId)).toEqual([blocker.callId]);
  });
});

describe("the caller's abort", () => {
  it('rejects with the abort reason while the request is in flight', async () => {
    const client = clientFor(graph.url);
    const request = rejectRequest();
    graph.setFault({ callId: request.callId, fault: { kind: 'slow', hold: true } });
    const controller = new AbortController();
    const reason = new Error('call.answered');

    const pending = client.reject(request, controller.signal);
    await eventually(() => graph.received().length === 1);
    controller.abort(reason);

    await expect(pending).rejects.toBe(reason);
  });

  it('rejects at once, sending nothing, when the signal is already aborted', async () => {
    const client = clientFor(graph.url);
    const reason = new Error('already left rejecting');

    await expect(client.reject(rejectRequest(), AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(graph.received()).toHaveLength(0);
  });
});

describe('network failures', () => {
  it('reports a refused connection as never delivered', async () => {
    const client = clientFor(`http://127.0.0.1:${await freePort()}`);

    const outcome = await client.reject(rejectRequest(), openSignal());

    expect(outcome).toMatchObject({ status: null, maybeDelivered: false });
    expect(outcome.message).toMatch(/ECONNREFUSED/);
  });

  it('reports a socket dropped after the request was sent as maybe delivered', async () => {
    const client = clientFor(graph.url);
    const request = rejectRequest();
    graph.setFault({ callId: request.callId, fault: { kind: 'drop' } });

    const outcome = await client.reject(request, openSignal());

    expect(outcome).toMatchObject({ status: null, maybeDelivered: true });
    expect(outcome.message).toMatch(/UND_ERR_SOCKET|ECONNRESET/);
    // Graph took it before the connection broke: a retry finds the call gone.
    expect(graph.acceptedCount(request.callId)).toBe(1);
    const retry = await client.reject({ ...request, attempt: 2 }, openSignal());
    expect(retry).toMatchObject({ status: 404, code: '8522' });
  });

  it('reports a token failure as not sent, with its cause', async () => {
    const tokens: TokenSource = {
      getToken: () => Promise.reject(new Error('AADSTS7000215: Invalid client secret provided.')),
    };
    const client = clientFor(graph.url, { tokens });

    const outcome = await client.reject(rejectRequest(), openSignal());

    expect(outcome).toEqual({
      status: null,
      maybeDelivered: false,
      message: 'no Graph token: AADSTS7000215: Invalid client secret provided.',
    });
    expect(graph.received()).toHaveLength(0);
  });
});
