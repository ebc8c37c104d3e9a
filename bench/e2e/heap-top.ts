/**
 * Summarise sampled allocation profiles (`E2E_HEAP_PROF=<dir> npm run bench
 * -- e2e` writes one per measured window, collected objects included): the
 * bytes allocated by the functions that allocated most, and by where the
 * code lives. With `--calls N` also per call.
 *
 *   node --import tsx bench/e2e/heap-top.ts FILE.heapprofile [--top 40] [--calls 10000] [--inclusive REGEX]
 *
 * `--inclusive REGEX`: the bytes allocated under the functions whose
 * "name  file:line" matches (their own and their callees').
 */
import { readFileSync } from 'node:fs';
import { areaOf, keyOf } from './profile-top.js';

interface HeapNode {
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly selfSize: number;
  readonly children: HeapNode[];
}

interface HeapProfile {
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

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''));
if (isMain) {
  const args = process.argv.slice(2);
  const option = (name: string) => {
    const index = args.indexOf(name);
    return index >= 0 ? args.splice(index, 2)[1] : undefined;
  };
  const top = Number(option('--top') ?? 30);
  const calls = Number(option('--calls') ?? 0);
  const pattern = option('--inclusive');
  if (args.length === 0) {
    process.stderr.write(
      'usage: heap-top.ts FILE.heapprofile [--top N] [--calls N] [--inclusive REGEX]\n',
    );
    process.exit(2);
  }
  for (const file of args) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as HeapProfile;
    const regex = pattern ? new RegExp(pattern) : undefined;
    process.stdout.write(`## ${file}\n${summariseHeap(profile, top, calls, regex)}\n\n`);
  }
}
