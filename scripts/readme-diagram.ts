import { callMachine } from '../machines/call.machine.js';
import { toMermaid } from '../src/viz/mermaid.js';

export const DIAGRAM_START = '<!-- state-diagram:start (npm run docs) -->';
export const DIAGRAM_END = '<!-- state-diagram:end -->';

/** The README's diagram block, generated from the machine. */
export function diagramBlock(): string {
  return `${DIAGRAM_START}\n\`\`\`mermaid\n${toMermaid(callMachine)}\`\`\`\n${DIAGRAM_END}`;
}

/** The README with its diagram block replaced by the current one. */
export function withCurrentDiagram(readme: string): string {
  const start = readme.indexOf(DIAGRAM_START);
  const end = readme.indexOf(DIAGRAM_END);
  if (start < 0 || end < start) {
    throw new Error(`README.md has no "${DIAGRAM_START}" … "${DIAGRAM_END}" block`);
  }
  return readme.slice(0, start) + diagramBlock() + readme.slice(end + DIAGRAM_END.length);
}
