import { callMachine } from '../../machines/call.machine.js';
import { toMermaid } from '../viz/mermaid.js';
import { toStatelyCode, toStatelyConfig } from '../viz/stately.js';

/** `callgate viz [--mermaid | --code]`: the machine for Stately's visualiser, or as a Mermaid diagram. */
export function runViz(options: { mermaid?: boolean; code?: boolean }): void {
  if (options.mermaid) process.stdout.write(toMermaid(callMachine));
  else if (options.code) process.stdout.write(toStatelyCode(callMachine));
  else process.stdout.write(`${JSON.stringify(toStatelyConfig(callMachine), null, 2)}\n`);
}
