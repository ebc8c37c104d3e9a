import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { GraphEmulator } from '../../../src/tools/emulator/emulator.js';
import { runEmulateGraph } from '../../../src/tools/emulator/main.js';
import { call, postReject } from './support.js';

function lines() {
  const out: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) out.push(JSON.parse(line));
      callback();
    },
  });
  return { out, destination };
}

describe('callgate emulate-graph', () => {
  it('logs its URL when ready, serves Graph until stopped, then logs its stats', async () => {
    const { out, destination } = lines();
    const stop = new AbortController();
    let ready: (emulator: GraphEmulator) => void = () => {};
    const started = new Promise<GraphEmulator>((resolve) => {
      ready = resolve;
    });

    const running = runEmulateGraph({
      port: 0,
      latencyMs: 1,
      destination,
      signal: stop.signal,
      onReady: ready,
    });
    const emulator = await started;
    const accepted = await postReject(emulator.url, randomUUID());
    const stats = await call(`${emulator.url}/_emulator/stats`);
    stop.abort();
    await running;

    expect(accepted.status).toBe(202);
    expect(stats.json).toMatchObject({ requests: 1 });
    expect(out[0]).toMatchObject({ msg: 'graph emulator listening', url: emulator.url });
    expect(out.at(-1)).toMatchObject({ msg: 'graph emulator stopped', requests: 1 });
  });

  it('returns at once when its signal is already aborted', async () => {
    const { out, destination } = lines();

    await runEmulateGraph({ port: 0, destination, signal: AbortSignal.abort() });

    expect(out.map((line) => line.msg)).toEqual([
      'graph emulator listening',
      'graph emulator stopped',
    ]);
  });
});
