import type { AnyStateMachine, AnyStateNode } from 'xstate';

const ACTOR_EVENT = /^xstate\.(done|error)\.actor\.(.+)$/;

function label(eventType: string, guard: unknown): string {
  const actor = ACTOR_EVENT.exec(eventType);
  const event = actor ? `${actor[2]} ${actor[1]}` : eventType;
  const guardName =
    typeof guard === 'string'
      ? guard
      : typeof guard === 'object' && guard !== null && 'type' in guard
        ? String((guard as { type: unknown }).type)
        : undefined;
  return guardName ? `${event} [${guardName}]` : event;
}

/** Mermaid's name for a state node: its path joined with underscores. */
function nodeName(node: AnyStateNode): string {
  return node.path.join('_');
}

function declare(node: AnyStateNode, indent: string, out: string[]): void {
  const children = Object.values(node.states) as AnyStateNode[];
  for (const child of children) {
    const name = nodeName(child);
    if (name !== child.key) out.push(`${indent}state "${child.key}" as ${name}`);
    if (Object.keys(child.states).length > 0) {
      out.push(`${indent}state ${name} {`);
      const initial = child.initial?.target?.[0] as AnyStateNode | undefined;
      if (initial) out.push(`${indent}  [*] --> ${nodeName(initial)}`);
      declare(child, `${indent}  `, out);
      out.push(`${indent}}`);
    }
  }
}

function edges(node: AnyStateNode, out: string[]): void {
  for (const child of Object.values(node.states) as AnyStateNode[]) {
    for (const [eventType, transitions] of child.transitions) {
      for (const transition of transitions) {
        for (const target of (transition.target ?? []) as AnyStateNode[]) {
          out.push(
            `  ${nodeName(child)} --> ${nodeName(target)} : ${label(eventType, transition.guard)}`,
          );
        }
      }
    }
    if (child.type === 'final') out.push(`  ${nodeName(child)} --> [*]`);
    edges(child, out);
  }
}

/**
 * A Mermaid `stateDiagram-v2` of a machine: every state, and every transition
 * that changes state, labelled with its event and guard. Transitions without a
 * target (refusals, bookkeeping) are left out.
 */
export function toMermaid(machine: AnyStateMachine): string {
  const out = ['stateDiagram-v2'];
  const initial = machine.root.initial?.target?.[0] as AnyStateNode | undefined;
  if (initial) out.push(`  [*] --> ${nodeName(initial)}`);
  declare(machine.root, '  ', out);
  edges(machine.root, out);
  return `${out.join('\n')}\n`;
}
