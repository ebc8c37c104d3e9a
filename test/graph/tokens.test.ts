import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clientCredentials, staticToken } from '../../src/graph/tokens.js';
import { createGraphEmulator, type GraphEmulator } from '../../src/tools/emulator/emulator.js';
import { eventually } from '../support/eventually.js';
import { captureLog } from './support.js';

const TENANT = 'contoso-tenant';
const CLIENT_ID = '11111111-2222-3333-4444-555555555555';
const SECRET = 'Xy7~client-secret-never-logged';
const T0 = Date.parse('2026-11-27T09:00:00.000Z');

let graph: GraphEmulator;

beforeEach(async () => {
  graph = await createGraphEmulator({
    tokenTtlSeconds: 3600,
    credentials: { clientId: CLIENT_ID, clientSecret: SECRET },
  });
});

afterEach(async () => {
  vi.useRealTimers();
  await graph.close();
});

function tokens(
  overrides: { clientSecret?: string; log?: ReturnType<typeof captureLog>['log'] } = {},
) {
  return clientCredentials({
    tenantId: TENANT,
    clientId: CLIENT_ID,
    clientSecret: overrides.clientSecret ?? SECRET,
    // Never contacted: msal gets the emulator's token endpoint in its config.
    authority: 'https://login.microsoftonline.com',
    tokenEndpoint: graph.tokenEndpoint(TENANT),
    ...(overrides.log && { log: overrides.log }),
  });
}

describe('a static token', () => {
  it('hands out the same token every time', async () => {
    const source = staticToken('dev-token');

    expect(await source.getToken()).toBe('dev-token');
    expect(await source.getToken()).toBe('dev-token');
  });

  it('refuses an empty token', () => {
    expect(() => staticToken('')).toThrow(/must not be empty/);
  });
});

describe('client credentials through msal', () => {
  it('fetches a token from the token endpoint once and reuses it', async () => {
    const source = tokens();

    const first = await source.getToken();
    const second = await source.getToken();

    expect(first).toMatch(/^emu\.contoso-tenant\.1\./);
    expect(second).toBe(first);
    expect(graph.stats().tokensIssued).toBe(1);
  });

  it('makes one token request for many callers asking at once', async () => {
    const source = tokens();

    const all = await Promise.all(Array.from({ length: 20 }, () => source.getToken()));

    expect(new Set(all).size).toBe(1);
    expect(graph.stats().tokensIssued).toBe(1);
  });

  it('refreshes the token before it expires, without making callers wait', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
    const source = tokens();
    const first = await source.getToken();

    vi.setSystemTime(T0 + 3_000_000);
    expect(await source.getToken()).toBe(first);
    expect(graph.stats().tokensIssued).toBe(1);

    // Inside the last five minutes of its hour: still handed out while a new one comes.
    vi.setSystemTime(T0 + 3_301_000);
    expect(await source.getToken()).toBe(first);
    await eventually(() => graph.stats().tokensIssued === 2);
    const refreshed = await source.getToken();

    expect(refreshed).not.toBe(first);
    expect(refreshed).toMatch(/^emu\.contoso-tenant\.2\./);
    expect(Date.now()).toBeLessThan(T0 + 3_600_000);
  });

  it('fetches a new token when the old one has expired', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
    const source = tokens();
    const first = await source.getToken();

    vi.setSystemTime(T0 + 3_700_000);

    expect(await source.getToken()).not.toBe(first);
    expect(graph.stats().tokensIssued).toBe(2);
  });

  it('fetches a new token after Graph refused the one it holds, and ignores an older one', async () => {
    const source = tokens();
    const first = await source.getToken();

    source.invalidate?.('a token it no longer holds');
    expect(await source.getToken()).toBe(first);
    expect(graph.stats().tokensIssued).toBe(1);

    source.invalidate?.(first);
    const second = await source.getToken();
    expect(second).not.toBe(first);
    expect(graph.stats().tokensIssued).toBe(2);
    expect(await source.getToken()).toBe(second);
  });

  it('rejects with the token endpoint error for a wrong secret', async () => {
    const source = tokens({ clientSecret: 'wrong' });

    await expect(source.getToken()).rejects.toThrow(/invalid_client|AADSTS7000215/);
    expect(graph.stats().tokensIssued).toBe(0);
  });

  it('stops waiting when the caller aborts, and still keeps the token for later', async () => {
    const source = tokens();
    const controller = new AbortController();
    const reason = new Error('window closed');

    const waiting = source.getToken(controller.signal);
    controller.abort(reason);

    await expect(waiting).rejects.toBe(reason);
    await eventually(() => graph.stats().tokensIssued === 1);
    expect(await source.getToken()).toMatch(/^emu\.contoso-tenant\.1\./);
  });

  it('does not ask for a token for a caller that has already given up', async () => {
    const source = tokens();
    const reason = new Error('window closed');

    await expect(source.getToken(AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(graph.stats().tokensIssued).toBe(0);
  });

  it('never writes the secret or the token to the log', async () => {
    const logs = captureLog();
    const good = tokens({ log: logs.log });
    const bad = tokens({ clientSecret: `${SECRET}-wrong`, log: logs.log });

    const token = await good.getToken();
    await bad.getToken().catch(() => {});

    expect(logs.entries().some((e) => e.msg === 'graph token acquired')).toBe(true);
    expect(logs.entries().some((e) => e.msg === 'graph token request failed')).toBe(true);
    expect(logs.entries().some((e) => 'msalLevel' in e)).toBe(true);
    expect(logs.text()).not.toContain(SECRET);
    expect(logs.text()).not.toContain(token);
  });
});
