import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { call, postReject } from './support.js';

const ENTRY = `import { runEmulateGraph } from './src/tools/emulator/main.ts';
await runEmulateGraph({ port: 0 });`;

let child: ChildProcess | undefined;

afterEach(() => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Start runEmulateGraph in a child process; resolve with the URL from its first log line. */
async function start(): Promise<{ url: string; lines: Array<Record<string, unknown>> }> {
  child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENTRY], {
    cwd: process.cwd(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const reader = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const url = await new Promise<string>((resolve, reject) => {
    child?.once('exit', (code) => reject(new Error(`emulator exited ${code}`)));
    reader.on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (typeof entry.url === 'string') resolve(entry.url);
    });
  });
  return { url, lines };
}

describe('the emulator as a process', () => {
  it('tells its URL on stdout, serves the control API and stops on SIGTERM', async () => {
    const { url, lines } = await start();
    const proc = child as ChildProcess;

    expect((await postReject(url, randomUUID())).status).toBe(202);
    expect((await call(`${url}/_emulator/stats`)).json).toMatchObject({ requests: 1 });
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const [code] = await exited;

    expect(code).toBe(0);
    expect(lines.at(-1)).toMatchObject({ msg: 'graph emulator stopped', requests: 1 });
  });
});
