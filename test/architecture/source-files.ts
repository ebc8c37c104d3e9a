import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from '@babel/parser';

/** The repository's root. */
export const ROOT = new URL('../..', import.meta.url).pathname;

/** Every TypeScript file under the given folders (relative to the root), sorted. */
export function sourceFiles(...folders: string[]): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(path);
    }
  };
  for (const folder of folders) walk(folder);
  return files.sort();
}

/** A node of Babel's syntax tree, as far as these scans read it. */
export interface Node {
  readonly type: string;
  readonly loc?: {
    readonly start: { readonly line: number };
    readonly end: { readonly line: number };
  };
  readonly [key: string]: unknown;
}

/** The file's syntax tree (TypeScript, ESM). */
export function syntaxTree(file: string): Node {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return parse(text, { sourceType: 'module', plugins: ['typescript'] }).program as unknown as Node;
}

/** Every node of a tree, depth first. */
export function* walk(node: Node): Generator<Node> {
  yield node;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'loc' || key === 'leadingComments' || key === 'trailingComments') continue;
    const children = Array.isArray(value) ? value : [value];
    for (const child of children) {
      if (child && typeof child === 'object' && typeof (child as Node).type === 'string') {
        yield* walk(child as Node);
      }
    }
  }
}
