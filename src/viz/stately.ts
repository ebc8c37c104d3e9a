import type { AnyStateMachine, AnyStateNode } from 'xstate';

/** A plain xstate machine config: what Stately's editor imports and the visualiser draws. */
export interface StateConfig {
  id?: string;
  description?: string;
  type?: 'final';
  initial?: string;
  entry?: NamedRef[];
  invoke?: InvokeConfig[];
  on?: Record<string, TransitionConfig[]>;
  states?: Record<string, StateConfig>;
}

type NamedRef = string | { type: string; params: Record<string, unknown> };

interface TransitionConfig {
  target?: string;
  guard?: NamedRef;
  actions?: NamedRef[];
  description?: string;
}

interface InvokeConfig {
  id: string;
  src: string;
  onDone?: TransitionConfig[];
  onError?: TransitionConfig[];
}

/** A named action or guard; dynamic params (functions) are left out, static ones kept. */
function ref(value: unknown): NamedRef | undefined {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null || !('type' in value)) return undefined;
  const { type, params } = value as { type: unknown; params?: unknown };
  if (typeof type !== 'string') return undefined;
  return typeof params === 'object' && params !== null
    ? { type, params: params as Record<string, unknown> }
    : type;
}

function refs(values: readonly unknown[]): NamedRef[] {
  return values.map(ref).filter((r): r is NamedRef => r !== undefined);
}

function transitionConfig(t: {
  target?: readonly AnyStateNode[] | undefined;
  guard?: unknown;
  actions: readonly unknown[];
  description?: string | undefined;
}): TransitionConfig {
  const config: TransitionConfig = {};
  const target = t.target?.[0];
  if (target) config.target = `#${target.id}`;
  const guard = ref(t.guard);
  if (guard) config.guard = guard;
  const actions = refs(t.actions);
  if (actions.length > 0) config.actions = actions;
  if (t.description) config.description = t.description;
  return config;
}

function nodeConfig(node: AnyStateNode): StateConfig {
  const config: StateConfig = {};
  if (node.description) config.description = node.description;
  if (node.type === 'final') config.type = 'final';
  const initial = node.initial?.target?.[0] as AnyStateNode | undefined;
  if (initial) config.initial = initial.key;
  const entry = refs(node.entry);
  if (entry.length > 0) config.entry = entry;
  const invoke: InvokeConfig[] = node.invoke.map((inv) => ({
    id: inv.id,
    src: typeof inv.src === 'string' ? inv.src : inv.id,
  }));
  const on: Record<string, TransitionConfig[]> = {};
  for (const [eventType, transitions] of node.transitions) {
    const configs = transitions.map(transitionConfig);
    const actorEvent = /^xstate\.(done|error)\.actor\.(.+)$/.exec(eventType);
    const owner = actorEvent && invoke.find((inv) => inv.id === actorEvent[2]);
    if (owner) owner[actorEvent[1] === 'done' ? 'onDone' : 'onError'] = configs;
    else on[eventType] = configs;
  }
  if (invoke.length > 0) config.invoke = invoke;
  if (Object.keys(on).length > 0) config.on = on;
  const children = Object.entries(node.states as Record<string, AnyStateNode>);
  if (children.length > 0) {
    config.states = Object.fromEntries(children.map(([key, child]) => [key, nodeConfig(child)]));
  }
  return config;
}

/**
 * The machine as a plain config (states, transitions, guards, actions and
 * descriptions by name), for Stately's visualiser and editor.
 */
export function toStatelyConfig(machine: AnyStateMachine): StateConfig {
  return { id: machine.id, ...nodeConfig(machine.root) };
}

/** The config as `createMachine(...)` code, ready for Stately's "Import from code". */
export function toStatelyCode(machine: AnyStateMachine): string {
  return `import { createMachine } from 'xstate';\n\nexport const machine = createMachine(${JSON.stringify(toStatelyConfig(machine), null, 2)});\n`;
}
