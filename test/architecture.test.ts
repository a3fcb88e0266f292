/**
 * The map in docs/architecture.md, enforced: which folder of src/ may import which, no folder
 * cycle, no bare package in the core, and no source file over 600 lines.
 */

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

/**
 * The layers, lowest first. A folder may import its own files and the folders listed for it
 * (which are always in lower layers or beside it without a cycle). Keep docs/architecture.md's
 * table in step with this one.
 */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  // 0: the core: policies, context, events, registry, schema. Imports nothing.
  core: [],
  // 1: more policies, built on the core only.
  limits: ['core'],
  latency: ['core', 'limits'],
  chaos: ['core'],
  testing: ['core'],
  // 2: capabilities with I/O, each behind its own subpath.
  redis: ['core', 'limits', 'latency'],
  durable: ['core', 'limits'],
  health: ['core', 'limits'],
  keyring: ['core', 'durable'],
  postgres: ['core', 'limits', 'health'],
  backup: ['core', 'limits', 'health', 'metrics', 'durable', 'keyring', 'postgres'],
  audit: ['core', 'limits', 'durable', 'keyring'],
  export: ['core', 'limits', 'durable', 'keyring', 'audit'],
  sync: ['core', 'limits', 'durable'],
  // 3: readers of the spine: metrics, logs, alerts; then the products built on everything.
  metrics: ['core', 'limits', 'health'],
  server: ['core', 'limits', 'latency', 'chaos', 'health', 'metrics', 'durable', 'audit', 'redis'],
  gateway: [
    'core',
    'limits',
    'latency',
    'chaos',
    'health',
    'metrics',
    'durable',
    'audit',
    'keyring',
    'redis',
    'server',
  ],
  demo: ['core', 'limits', 'latency', 'chaos', 'health', 'metrics', 'durable', 'gateway', 'server'],
  // 4: the command line may start anything.
  cli: ['*'],
  // The root barrel (`bulwark`): the policies only, so the root import has no runtime dependency.
  'index.ts': ['core', 'limits', 'latency', 'chaos'],
};

const MAX_LINES = 600;

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...files(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

const all = files(SRC);
const folderOf = (file: string): string => relative(SRC, file).split('/')[0] ?? '';
const isTest = (file: string): boolean => /\.(test|model\.test|suite)\.ts$/.test(file);

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s+['"]([^'"]+)['"]/g))
    out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

describe('architecture', () => {
  it('every folder of src/ has a place in the map', () => {
    const folders = new Set(all.map(folderOf).filter((f) => !f.endsWith('.ts')));
    const unknown = [...folders].filter((f) => !(f in ALLOWED));
    expect(unknown, 'add these folders to ALLOWED and to docs/architecture.md').toEqual([]);
  });

  it('imports follow the layers (tests may import anything)', () => {
    const bad: string[] = [];
    for (const file of all) {
      if (isTest(file)) continue;
      const from = folderOf(file);
      const allowed = ALLOWED[from] ?? [];
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = fileURLToPath(new URL(spec, `file://${file}`));
        const to = folderOf(target);
        if (to === from) continue;
        if (allowed.includes('*') || allowed.includes(to)) continue;
        bad.push(`${relative(SRC, file)} imports ${spec} (${from} -> ${to} is not allowed)`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the core imports no package (zero runtime dependencies) and no other folder', () => {
    const bad: string[] = [];
    for (const file of all) {
      if (isTest(file) || folderOf(file) !== 'core') continue;
      for (const spec of imports(file)) {
        if (!spec.startsWith('.') && !spec.startsWith('node:')) bad.push(`${relative(SRC, file)}: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the map has no cycle', () => {
    const visiting = new Set<string>();
    const done = new Set<string>();
    const cycle: string[] = [];
    const visit = (f: string, path: string[]): void => {
      if (done.has(f)) return;
      if (visiting.has(f)) {
        cycle.push([...path, f].join(' -> '));
        return;
      }
      visiting.add(f);
      for (const to of ALLOWED[f] ?? []) if (to !== '*') visit(to, [...path, f]);
      visiting.delete(f);
      done.add(f);
    };
    for (const f of Object.keys(ALLOWED)) visit(f, []);
    expect(cycle).toEqual([]);
  });

  it(`no file under src/ is over ${MAX_LINES} lines`, () => {
    const long = all
      .map((f) => ({ f: relative(SRC, f), n: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter(({ n }) => n > MAX_LINES)
      .map(({ f, n }) => `${f}: ${n} lines`);
    expect(long).toEqual([]);
  });
});
