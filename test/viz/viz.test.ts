import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type AnyStateNode, createMachine } from 'xstate';
import { callMachine } from '../../machines/call.machine.js';
import { toMermaid } from '../../src/viz/mermaid.js';
import { toStatelyConfig } from '../../src/viz/stately.js';

function shape(node: AnyStateNode): string[] {
  const own = [...node.transitions.entries()].map(
    ([event, ts]) =>
      `${node.id} ${event} → ${ts.map((t) => t.target?.map((s) => s.id).join(',') ?? '-').join(' | ')}`,
  );
  return [
    `${node.id} (${node.type})`,
    ...own,
    ...Object.values(node.states as Record<string, AnyStateNode>).flatMap(shape),
  ];
}

describe('callgate viz', () => {
  it('exports a config that xstate builds into a machine of the same states and transitions', () => {
    const rebuilt = createMachine(
      toStatelyConfig(callMachine) as Parameters<typeof createMachine>[0],
    );
    expect(shape(rebuilt.root)).toEqual(shape(callMachine.root));
  });

  it('keeps every description for the visualiser', () => {
    const json = JSON.stringify(toStatelyConfig(callMachine));
    expect(json).toContain('Graph accepted the reject (202).');
    expect(json).toContain(
      '404 after an attempt whose outcome is unknown: that attempt went through.',
    );
  });

  it('draws every state and the final markers in Mermaid', () => {
    const diagram = toMermaid(callMachine);
    expect(diagram.startsWith('stateDiagram-v2\n')).toBe(true);
    for (const state of [
      'ringing',
      'rejecting_sending',
      'rejecting_waiting',
      'rejected',
      'answered',
      'timedOut',
      'ended',
      'failed',
    ]) {
      expect(diagram).toContain(state);
    }
    expect(diagram).toContain('rejecting_sending --> rejected : reject done [isAccepted]');
    expect(diagram).toContain('failed --> [*]');
  });

  it('prints the JSON from the command line', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      'src/cli.ts',
      'viz',
    ]);
    expect(JSON.parse(stdout)).toEqual(toStatelyConfig(callMachine));
  });
});
