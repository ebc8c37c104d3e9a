import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CallBus, incoming, newCallId, reject, shape } from '../support/call-bus.js';
import { spawnCallgate, startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';
import { startNatsServer } from '../support/nats-server.js';

/** `callgate serve` as an operator runs it: signals, exit codes, configuration. */

const WINDOW_MS = 4_000;
/** SIGTERM to exit, at most (the service's own promise). */
const EXIT_WITHIN_MS = 10_000;

const e2e = useE2e({ scope: 'test' });

let bus: CallBus;
async function freshBus(): Promise<{ env: Record<string, string> }> {
  const fresh = await e2e.fresh('e2eproc', WINDOW_MS);
  bus = fresh.bus;
  return fresh;
}

describe('callgate serve and SIGTERM', () => {
  it('exits 0 within 10 s while a reject is in flight, after letting it finish', async () => {
    const { env } = await freshBus();
    const service = await startCallgate(env);
    const callId = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'slow', hold: true } });
    await bus.send(incoming(callId));
    await bus.send(reject(callId));
    await eventually(() => e2e.graph.stats().held === 1);

    const signalledAt = Date.now();
    service.child.kill('SIGTERM');
    // It stops taking work first: then Graph answers the request it is waiting for.
    await eventually(async () => (await service.get('/readyz')) !== 200);
    expect(e2e.graph.release(callId)).toBe(1);
    const exit = await service.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(EXIT_WITHIN_MS);
    expect(bus.recordsOf(callId).map(shape)).toEqual([
      { state: 'ringing', previous: null },
      { state: 'rejecting', previous: 'ringing', reason: 'busy', attempts: 1 },
      { state: 'rejected', previous: 'rejecting', reason: 'busy', attempts: 1 },
    ]);
  });

  it('exits within 10 s even when Graph never answers, and the next instance finishes the call', async () => {
    const { env } = await freshBus();
    const service = await startCallgate({ ...env, SHUTDOWN_TIMEOUT_MS: '500' });
    const callId = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'slow', hold: true } });
    await bus.send(incoming(callId));
    await bus.send(reject(callId));
    await eventually(() => e2e.graph.stats().held === 1);

    const signalledAt = Date.now();
    service.child.kill('SIGTERM');
    const exit = await service.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(EXIT_WITHIN_MS);

    await startCallgate(env);
    const records = await bus.settled(callId);
    expect(records.map((r) => r.state)).toEqual(['ringing', 'rejecting', 'rejected']);
    expect(e2e.graph.stats().accepted[callId]).toBe(1);
  });
});

describe('callgate serve with a bad configuration', () => {
  it('ANSWER_TIMEOUT_MS=50 HTTP_PORT=x: exits 2 with one message naming both variables', async () => {
    const service = await spawnCallgate({ ANSWER_TIMEOUT_MS: '50', HTTP_PORT: 'x' });

    const exit = await service.exited;

    expect(exit).toEqual({ code: 2, signal: null });
    const message = service.stderr();
    expect(message.match(/invalid configuration/g)).toHaveLength(1);
    expect(message).toMatch(/^callgate serve: invalid configuration:\n/);
    expect(message).toMatch(
      /^ {2}ANSWER_TIMEOUT_MS: must be a whole number of milliseconds ≥ 100 \(got "50"\)$/m,
    );
    expect(message).toMatch(/^ {2}HTTP_PORT: must be a port number \(0-65535\) \(got "x"\)$/m);
    expect(service.stdout()).toBe('');
  });
});

describe('callgate serve on a JetStream with too little storage', () => {
  it('exits 1 with one line saying what JetStream refused, not a stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'callgate-small-js-'));
    const config = join(dir, 'small.conf');
    writeFileSync(config, 'jetstream { max_file_store: 1MB, max_memory_store: 1MB }\n');
    const small = await startNatsServer({ args: ['-c', config] });
    try {
      const service = await spawnCallgate({
        ...e2e.env('e2esmall', 5_000),
        NATS_URL: small.url,
      });
      const exit = await service.exited;
      expect(exit).toEqual({ code: 1, signal: null });
      const lines = service.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^callgate serve: cannot set up the stream, the consumer or the bucket in JetStream: .*(storage|resources)/i,
      );
    } finally {
      await small.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('callgate serve with STREAM_REPLICAS=3 on a single nats-server', () => {
  it('exits 1 with one line saying the server refused the replicas', async () => {
    const service = await spawnCallgate({ ...e2e.env('e2er3', 5_000), STREAM_REPLICAS: '3' });
    const exit = await service.exited;
    expect(exit).toEqual({ code: 1, signal: null });
    const lines = service.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^callgate serve: cannot set up .*: replicas > 1 not supported/);
  });
});
