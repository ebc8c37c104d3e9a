import { callMachine } from '../../machines/call.machine.js';
import { toMermaid } from '../viz/mermaid.js';

/** `callgate viz [--mermaid]`: the machine for the Stately visualiser, or as a Mermaid diagram. */
export function runViz(options: { mermaid?: boolean }): void {
  process.stdout.write(
    options.mermaid ? toMermaid(callMachine) : `${JSON.stringify(callMachine.toJSON(), null, 2)}\n`,
  );
}
