import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATES } from '../../../src/tools/demo/traffic.js';
import { freePort, type NatsServer, startNatsServer } from '../../support/nats-server.js';

/** Run the demo from the sources; resolves with its exit code and output. */
function runDemo(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/tools/demo/main.ts', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run demo', () => {
  let server: NatsServer;
  beforeAll(async () => {
    server = await startNatsServer();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('places a mix of calls over NATS and accounts for every one of them', async () => {
    const { code, stdout, stderr } = await runDemo(['--calls', '300', '--rate', '300'], {
      NATS_URL: server.url,
    });
    expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);
    expect(stderr).toContain(`NATS: using ${server.url}`);
    expect(stderr).toMatch(/Graph emulator: http:\/\/127\.0\.0\.1:\d+ \(callgate emulate-graph/);
    expect(stderr).toMatch(/Graph emulator stopped \(exit code 0\)/);
    for (const state of FINAL_STATES) {
      expect(stdout).toMatch(new RegExp(`^${state}\\s+\\d+\\s+\\d+$`, 'm'));
    }
    expect(stdout).toMatch(/^total\s+300\s+300$/m);
    expect(stdout).toMatch(/reject latency .* p50\s+\d+ ms\s+p99\s+\d+ ms/);
    expect(stdout).toMatch(/^offered rate \(calls planned a second\)\s+300\.0 calls\/s$/m);
    expect(stdout).toMatch(/^sustained rate \(calls started a second\)\s+\d+\.\d calls\/s/m);
    expect(stdout).toMatch(/^time held back .*\d+\.\d s/m);
    expect(stdout).toMatch(/^service lag .*p50\s+\d+ ms\s+p99\s+\d+ ms\s+max \d+ ms$/m);
    expect(stdout).toContain('6 second rejects refused (of 6)');
    expect(stdout).toContain('6 repeated incoming dropped by JetStream (of 6)');
    expect(stdout).toMatch(/^calls lost: 0$/m);
    expect(stdout).toMatch(/^calls ended in another state than planned: 0$/m);
    expect(stderr).toMatch(/cleaned up: stream callgate-demo[0-9a-f]{6} and KV bucket/);
  }, 120_000);

  it('says what to install when there is no NATS and no nats-server to start', async () => {
    const port = await freePort();
    const { code, stderr } = await runDemo(['--calls', '10'], {
      NATS_URL: `nats://127.0.0.1:${port}`,
      NATS_SERVER_BIN: '/nonexistent/nats-server',
    });
    expect(code).toBe(1);
    expect(stderr).toContain(`could not use NATS at nats://127.0.0.1:${port}`);
    expect(stderr).toContain('apt-get install nats-server');
    expect(stderr).toContain('scripts/ensure-nats-server.sh');
  }, 60_000);

  it('rejects a bad flag with the usage', async () => {
    const { code, stderr } = await runDemo(['--calls', 'many'], {});
    expect(code).toBe(2);
    expect(stderr).toContain('--calls: must be a whole number ≥ 1');
    expect(stderr).toContain('usage: npm run demo');
  }, 60_000);
});
