import { describe, expect, it } from 'vitest';
import { type Node, sourceFiles, syntaxTree, walk } from './source-files.js';

/** No function in src/ or machines/ longer than this many lines. */
const LIMIT = 120;

const FUNCTIONS = new Set([
  'FunctionDeclaration',
  'FunctionExpression',
  'ArrowFunctionExpression',
  'ObjectMethod',
  'ClassMethod',
  'ClassPrivateMethod',
]);

interface Measured {
  readonly where: string;
  readonly lines: number;
}

function nameOf(node: Node): string {
  const id = node.id as { name?: string } | null | undefined;
  const key = node.key as { name?: string; id?: { name?: string } } | undefined;
  return id?.name ?? key?.name ?? key?.id?.name ?? '(anonymous)';
}

function functionsOf(file: string): Measured[] {
  const found: Measured[] = [];
  for (const node of walk(syntaxTree(file))) {
    if (!FUNCTIONS.has(node.type) || !node.loc) continue;
    const lines = node.loc.end.line - node.loc.start.line + 1;
    found.push({ where: `${file}:${node.loc.start.line} ${nameOf(node)}`, lines });
  }
  return found;
}

describe('function length', () => {
  const measured = sourceFiles('src', 'machines').flatMap(functionsOf);

  it(`keeps every function in src/ and machines/ within ${LIMIT} lines`, () => {
    const long = measured.filter((f) => f.lines > LIMIT).map((f) => `${f.where}: ${f.lines} lines`);
    expect(long).toEqual([]);
  });

  it('measures functions (the scan itself works)', () => {
    expect(measured.length).toBeGreaterThan(300);
    expect(
      measured.find(
        (f) => f.where.includes('machines/retry.ts') && f.where.endsWith(' backoffDelay'),
      ),
    ).toMatchObject({ lines: 5 });
  });
});
