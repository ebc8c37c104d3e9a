import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Node, sourceFiles, syntaxTree, walk } from './source-files.js';

/**
 * Which of the project's own units each unit may import. A unit is a folder
 * of `src/` (`runtime`, `service`, …), a file at the top of `src/` (`log`,
 * `config`, `cli`), or `machines`. `types` lists units it may import types
 * from and nothing else. `app` (the composition root) may import anything but
 * the tools; the tools anything but the app and the command line.
 */
const RULES: Readonly<Record<string, { may: readonly string[]; types?: readonly string[] }>> = {
  machines: { may: [] },
  contract: { may: ['machines'] },
  runtime: { may: ['machines', 'contract'] },
  persistence: { may: ['machines', 'contract'], types: ['runtime'] },
  bus: { may: ['contract', 'config', 'log'] },
  ownership: { may: ['contract'] },
  service: { may: ['machines', 'contract', 'runtime', 'persistence', 'bus', 'ownership', 'log'] },
  graph: { may: ['machines', 'log'], types: ['runtime'] },
  webhook: { may: ['contract', 'http', 'log'] },
  http: { may: [] },
  live: { may: ['machines', 'contract', 'http'] },
  inspect: { may: ['pii'] },
  pii: { may: [] },
  replay: { may: ['machines', 'contract', 'runtime'] },
  viz: { may: ['machines'] },
  log: { may: ['pii'] },
  config: { may: [] },
  app: { may: ['*'] },
  cli: { may: ['app', 'config', 'machines', 'replay', 'viz'] },
  tools: { may: ['*'] },
};
const NEVER: Readonly<Record<string, readonly string[]>> = {
  app: ['tools', 'cli'],
  tools: ['app', 'cli'],
};

/** Packages the domain model may use: nothing but xstate. */
const MACHINE_PACKAGES = ['xstate'];

interface Import {
  readonly file: string;
  readonly from: string;
  readonly to: string;
  readonly typeOnly: boolean;
  readonly dynamic: boolean;
}

function unitOf(path: string): string {
  const parts = path.split('/');
  if (parts[0] === 'machines') return 'machines';
  const name = parts[1] ?? '';
  return parts.length === 2 ? name.replace(/\.[jt]s$/, '') : name;
}

function importsOf(file: string): Import[] {
  const found: Import[] = [];
  for (const node of walk(syntaxTree(file))) {
    const spec = specifier(node);
    if (spec === undefined) continue;
    const typeOnly = node.importKind === 'type' || node.exportKind === 'type';
    const dynamic = node.type === 'ImportExpression';
    const to = spec.startsWith('.')
      ? normalize(join(dirname(file), spec))
      : `package:${spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]}`;
    found.push({ file, from: unitOf(file), to, typeOnly, dynamic });
  }
  return found;
}

function specifier(node: Node): string | undefined {
  const isImport = ['ImportDeclaration', 'ExportNamedDeclaration', 'ExportAllDeclaration'];
  if (!isImport.includes(node.type) && node.type !== 'ImportExpression') return undefined;
  const source = node.source as { value?: unknown } | null | undefined;
  return typeof source?.value === 'string' ? source.value : undefined;
}

function breaks(i: Import): string | undefined {
  if (i.to.startsWith('package:')) {
    const name = i.to.slice('package:'.length);
    if (i.from === 'machines' && !MACHINE_PACKAGES.includes(name))
      return `machines may use only ${MACHINE_PACKAGES.join(', ')}`;
    return undefined;
  }
  const to = unitOf(i.to);
  if (to === i.from) return undefined;
  if (NEVER[i.from]?.includes(to)) return `${i.from} must never import ${to}`;
  const rule = RULES[i.from];
  if (!rule) return `${i.from} is not in the rules`;
  if (rule.may.includes('*') || rule.may.includes(to)) return undefined;
  if (i.typeOnly && rule.types?.includes(to)) return undefined;
  if (i.from === 'cli' && to === 'tools' && i.dynamic) return undefined;
  return `${i.from} may not import ${to}${rule.types?.includes(to) ? ' (types only)' : ''}`;
}

const ALL = sourceFiles('src', 'machines').flatMap(importsOf);

describe('the folder rules', () => {
  it('hold for every import in src/ and machines/', () => {
    const broken = ALL.flatMap((i) => {
      const why = breaks(i);
      return why ? [`${i.file} → ${i.to}: ${why}`] : [];
    });
    expect(broken).toEqual([]);
  });

  it('know every unit there is', () => {
    const units = new Set(ALL.map((i) => i.from));
    expect([...units].filter((unit) => !RULES[unit])).toEqual([]);
  });

  it('keep the tools out of the service: nothing statically imported from the CLI reaches src/tools', () => {
    const byFile = new Map<string, Import[]>();
    for (const i of ALL) byFile.set(i.file, [...(byFile.get(i.file) ?? []), i]);
    const seen = new Set<string>();
    const reached: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      reached.push(file);
      for (const i of byFile.get(file) ?? []) {
        if (!i.dynamic && !i.to.startsWith('package:')) visit(i.to.replace(/\.js$/, '.ts'));
      }
    };
    visit('src/cli.ts');
    expect(reached).toContain('src/service/service.ts');
    expect(reached.filter((file) => file.startsWith('src/tools/'))).toEqual([]);
  });

  it('catch a breach (the scan itself works)', () => {
    const breach = {
      file: 'src/runtime/x.ts',
      from: 'runtime',
      to: 'src/service/pipeline.js',
      typeOnly: false,
      dynamic: false,
    };
    expect(breaks(breach)).toBe('runtime may not import service');
    expect(breaks({ ...breach, from: 'machines', to: 'package:zod' })).toMatch(
      /machines may use only xstate/,
    );
  });
});
