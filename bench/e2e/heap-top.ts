/**
 * Summarise sampled allocation profiles (`E2E_HEAP_PROF=<dir> npm run bench
 * -- e2e` writes one per measured window, collected objects included): the
 * bytes allocated by the functions that allocated most, and by where the
 * code lives. With `--calls N` also per call.
 *
 *   node --import tsx bench/e2e/profile-top.ts FILE.heapprofile [--top 40] [--calls 10000] [--inclusive REGEX]
 *
 * `--inclusive REGEX`: the bytes allocated under the functions whose
 * "name  file:line" matches (their own and their callees').
 */
import { areaOf, type Frame, keyOf } from './frames.js';

interface HeapNode extends Frame {
  readonly selfSize: number;
  readonly children: HeapNode[];
}

export interface HeapProfile {
  readonly head: HeapNode;
}

function add(map: Map<string, number>, key: string, bytes: number): void {
  map.set(key, (map.get(key) ?? 0) + bytes);
}

/** Self bytes by function and by area; inclusive bytes of the matching functions. */
function tally(profile: HeapProfile, pattern: RegExp | undefined) {
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  const walk = (node: HeapNode, open: ReadonlySet<string>): void => {
    const key = keyOf(node);
    const here = pattern?.test(key) && !open.has(key) ? new Set([...open, key]) : open;
    if (node.selfSize > 0) {
      total += node.selfSize;
      add(fns, key, node.selfSize);
      add(areas, areaOf(node.callFrame.url, node.callFrame.functionName), node.selfSize);
      for (const name of here) add(inclusive, name, node.selfSize);
    }
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head, new Set());
  return { fns, areas, inclusive, total };
}

export function summariseHeap(profile: HeapProfile, top = 30, calls = 0, pattern?: RegExp): string {
  const { fns, areas, inclusive, total } = tally(profile, pattern);
  const pct = (bytes: number) => `${((100 * bytes) / total).toFixed(1).padStart(5)} %`;
  const size = (bytes: number) =>
    calls > 0
      ? `${(bytes / calls).toFixed(0).padStart(7)} B/call`
      : `${(bytes / 2 ** 20).toFixed(1).padStart(7)} MB`;
  const list = (map: Map<string, number>, n: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, bytes]) => `${pct(bytes)} ${size(bytes)}  ${name}`);
  return [
    `sampled ${(total / 2 ** 20).toFixed(1)} MB${calls > 0 ? ` (${(total / calls / 1024).toFixed(1)} KB per call)` : ''}`,
    '',
    'allocated by area:',
    ...list(areas, 25),
    '',
    `top ${top} functions by bytes allocated:`,
    ...list(fns, top),
    ...(pattern
      ? ['', `inclusive bytes of functions matching ${pattern}:`, ...list(inclusive, top)]
      : []),
  ].join('\n');
}
