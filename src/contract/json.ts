import { LIMITS } from './limits.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * The one JSON parser for input: `JSON.parse`, then a check that the value
 * nests no deeper than `maxDepth` (code that walks values may recurse). The
 * error names the rule but never quotes the text: V8's messages carry
 * snippets of the input.
 *
 * @example
 * parseJson('{"a": [1]}')   // { ok: true, value: { a: [1] } }
 * parseJson('{"a": ')       // { ok: false, error: '(message): must be JSON (it ends too soon)' }
 */
export function parseJson(text: string, maxDepth: number = LIMITS.jsonDepth): Parsed<unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, error: `(message): must be JSON (${whyNotJson(error)})` };
  }
  if (deeperThan(value, maxDepth)) {
    return { ok: false, error: `(message): must not nest deeper than ${maxDepth} levels` };
  }
  return { ok: true, value };
}

function whyNotJson(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  const position = /position (\d+)/.exec(message)?.[1];
  if (/end of (JSON )?input/i.test(message)) return 'it ends too soon';
  return position === undefined ? 'it is not valid JSON' : `not valid at position ${position}`;
}

/** Whether a parsed value nests deeper than `max` arrays and objects (walked without recursion). */
function deeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, depth] = item;
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
