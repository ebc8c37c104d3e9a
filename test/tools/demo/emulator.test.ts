import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DemoEmulator, startDemoEmulator } from '../../../src/tools/demo/emulator.js';
import { eventually } from '../../support/eventually.js';
import { call, postReject } from '../emulator/support.js';

/** A bot's webhook that accepts everything and keeps what Graph sent. */
async function webhook(): Promise<{ server: Server; url: string; bodies: string[] }> {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      bodies.push(body);
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/api/calling`, bodies };
}

let emulator: DemoEmulator | undefined;
let hook: Awaited<ReturnType<typeof webhook>> | undefined;
let dir = '';

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'demo-emulator-'));
});

afterEach(async () => {
  await emulator?.stop();
  emulator = undefined;
  hook?.server.close();
  hook = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('the demo’s Graph emulator process', () => {
  it('starts `callgate emulate-graph`, learns its URL, places calls through it and stops it', async () => {
    hook = await webhook();
    const logFile = join(dir, 'emulator.log');
    emulator = await startDemoEmulator({
      answerTimeoutMs: 300,
      logFile,
      signal: new AbortController().signal,
    });
    const { url } = emulator;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(emulator.openIdUrl).toBe(`${url}/.well-known/openid-configuration`);

    const callId = randomUUID();
    expect(await emulator.placeCall({ callbackUrl: hook.url, appId: 'bot', callId })).toBe(202);
    // The answer timeout reached the child: the call that nobody decided ends as Graph ends it.
    await eventually(() => hook?.bodies.some((b) => b.includes('"terminated"')));

    await emulator.setFaults([{ callId, fault: { kind: 'status', status: 503 } }]);
    const sentAt = performance.now();
    expect((await postReject(url, callId)).status).toBe(503);
    expect((await postReject(url, callId)).status).toBe(202);
    const received = await emulator.received();
    expect(received.map((r) => r.callId)).toEqual([callId, callId]);
    // Its arrival times are on this process's clock.
    expect(received[0]?.receivedPerf).toBeGreaterThanOrEqual(sentAt - 1);
    expect(received[0]?.receivedPerf).toBeLessThanOrEqual(performance.now() + 1);
    const stats = await emulator.stats();
    expect(stats.byStatus).toEqual({ '202': 1, '503': 1 });
    expect(stats.acceptedCount(callId)).toBe(1);

    expect(await emulator.stop()).toBe(0);
    emulator = undefined;
    await expect(call(`${url}/_emulator/stats`)).rejects.toThrow();
    expect(readFileSync(logFile, 'utf8')).toContain('graph emulator stopped');
  }, 60_000);

  it('fails with its log when it cannot start', async () => {
    const logFile = join(dir, 'emulator.log');
    const start = startDemoEmulator({
      answerTimeoutMs: 0,
      logFile,
      signal: new AbortController().signal,
    });

    await expect(start).rejects.toThrow(
      /the Graph emulator exited with code 1 before it was ready/,
    );
    expect(readFileSync(logFile, 'utf8')).toContain('--answer-timeout-ms');
  }, 60_000);
});
