/**
 * Summarise V8 CPU profiles (`node --cpu-prof`, e.g. from
 * `E2E_CPU_PROF=/tmp/prof npm run bench -- e2e`): the functions with the most
 * self time, and self time by where the code lives (a package under
 * node_modules, the project's own src/ and machines/, Node internals, GC).
 *
 *   node --import tsx bench/e2e/profile-top.ts FILE.cpuprofile [--top 40] [--inclusive REGEX]
 *
 * `--inclusive REGEX`: also the inclusive time (self + callees, each sample
 * counted once per function) of the functions whose "name  file" matches.
 * An allocation profile (`FILE.heapprofile`, from `E2E_HEAP_PROF`) is
 * summarised by bytes instead (`bench/e2e/heap-top.ts`), per call with
 * `--calls N`.
 */
import { readFileSync } from 'node:fs';
import { areaOf, type Frame, keyOf } from './frames.js';
import { type HeapProfile, summariseHeap } from './heap-top.js';

interface ProfileNode extends Frame {
  readonly id: number;
  readonly children?: number[];
}

interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly samples: number[];
  readonly timeDeltas: number[];
  readonly startTime: number;
  readonly endTime: number;
}

export function inclusive(profile: CpuProfile, pattern: RegExp, top = 30): string {
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i] ?? 0;
    total += us;
    const seen = new Set<string>();
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id);
      if (!node) break;
      const key = keyOf(node);
      if (seen.has(key) || !pattern.test(key)) continue;
      seen.add(key);
      totals.set(key, (totals.get(key) ?? 0) + us);
    }
  }
  return [
    `inclusive time of functions matching ${pattern}:`,
    ...[...totals]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([fn, us]) =>
          `${((100 * us) / total).toFixed(1).padStart(5)} % ${(us / 1000).toFixed(0).padStart(7)} ms  ${fn}`,
      ),
  ].join('\n');
}

export function summarise(profile: CpuProfile, top = 30): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] ?? -1;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url } = node.callFrame;
    const key = keyOf(node);
    fns.set(key, (fns.get(key) ?? 0) + us);
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  const lines = [
    `sampled ${(total / 1e6).toFixed(2)} s over ${((profile.endTime - profile.startTime) / 1e6).toFixed(2)} s`,
    '',
    'self time by area:',
    ...[...areas]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([area, us]) => `${pct(us)} ${ms(us)}  ${area}`),
    '',
    `top ${top} functions by self time:`,
    ...[...fns]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => `${pct(us)} ${ms(us)}  ${fn}`),
  ];
  return lines.join('\n');
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
  const files = args;
  if (files.length === 0) {
    process.stderr.write(
      'usage: profile-top.ts FILE.cpuprofile|FILE.heapprofile [--top N] [--inclusive REGEX] [--calls N]\n',
    );
    process.exit(2);
  }
  const regex = pattern ? new RegExp(pattern) : undefined;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.heapprofile')) {
      const profile = JSON.parse(text) as HeapProfile;
      process.stdout.write(`## ${file}\n${summariseHeap(profile, top, calls, regex)}\n\n`);
      continue;
    }
    const profile = JSON.parse(text) as CpuProfile;
    process.stdout.write(`## ${file}\n${summarise(profile, top)}\n\n`);
    if (regex) process.stdout.write(`${inclusive(profile, regex, top)}\n\n`);
  }
}
