/**
 * Runs every TypeScript example of the documentation: README.md and docs/*.md.
 *
 * Convention for fenced code blocks:
 * - ```ts or ```typescript — a complete example. It is written to its own file under
 *   .tmp/docs-blocks/<run>/ (git-ignored, inside the project so that `bulwark` and
 *   `bulwark/testing` resolve to src/ through the `paths` of tsconfig.json), type-checked with the
 *   project's strict settings, and run with `node_modules/.bin/tsx <file>` from the project root.
 *   It must exit 0 within BLOCK_TIMEOUT_MS (so it must leave nothing that keeps the process alive)
 *   and must print no process warning.
 * - ```ts nocheck (or ```typescript nocheck) — a fragment that cannot run on its own, such as a
 *   sketch that needs a real remote service. Neither run nor type-checked. Keep these rare: an
 *   example that can be made to run should run.
 * - Any other language (bash, json, text, …) is ignored.
 *
 * Examples must not use the network (use local functions, or a node:http server listening on
 * 127.0.0.1 port 0 inside the block) and must finish fast (use the fake clock of bulwark/testing,
 * or real delays of a few milliseconds). Failures name the document and line of the block.
 */

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');
const BLOCK_TIMEOUT_MS = 20_000;
const RUN_DIR = join(ROOT, '.tmp', 'docs-blocks', `run-${process.pid}-${Date.now().toString(36)}`);

/** One fenced code block of a document. */
interface Block {
  /** The document, relative to the project root, e.g. `docs/policies.md`. */
  readonly doc: string;
  /** 1-based line of the block's first code line in the document. */
  readonly line: number;
  /** The fence's info string: language first, then flags such as `nocheck`. */
  readonly info: string;
  readonly code: string;
  /** True for a ts/typescript block without the `nocheck` flag. */
  readonly runnable: boolean;
}

const OPEN_FENCE = /^(\s*)(`{3,}|~{3,})(.*)$/;

/** Extracts the fenced code blocks of a Markdown document. */
function extractBlocks(markdown: string, doc: string): Block[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = OPEN_FENCE.exec(lines[i]!);
    if (open === null) continue;
    const indent = open[1]!.length;
    const fence = open[2]!;
    const info = open[3]!.trim();
    if (fence[0] === '`' && info.includes('`')) continue; // inline code, not a fence
    const close = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !close.test(lines[j]!)) {
      const l = lines[j]!;
      const strip = Math.min(indent, l.length - l.trimStart().length);
      body.push(l.slice(strip));
      j++;
    }
    const [lang = '', ...flags] = info.split(/\s+/);
    blocks.push({
      doc,
      line: i + 2,
      info,
      code: body.join('\n'),
      runnable: (lang === 'ts' || lang === 'typescript') && !flags.includes('nocheck'),
    });
    i = j;
  }
  return blocks;
}

/** README.md (when present) and every docs/*.md, in a stable order. */
function documents(): string[] {
  const docs: string[] = [];
  if (existsSync(join(ROOT, 'README.md'))) docs.push('README.md');
  const dir = join(ROOT, 'docs');
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.md')) docs.push(`docs/${f}`);
  }
  // DOCS=docs/a.md,docs/b.md runs those documents' blocks only (while writing them).
  const only = process.env.DOCS?.split(',').map((d) => d.trim());
  return only === undefined ? docs : docs.filter((d) => only.includes(d));
}

const blocksByDoc = new Map<string, Block[]>();
for (const doc of documents()) {
  const runnable = extractBlocks(readFileSync(join(ROOT, doc), 'utf8'), doc).filter((b) => b.runnable);
  if (runnable.length > 0) blocksByDoc.set(doc, runnable);
}
const allBlocks = [...blocksByDoc.values()].flat();

function fileNameOf(block: Block): string {
  return `${block.doc.replace(/[^A-Za-z0-9]+/g, '_')}-L${block.line}.ts`;
}

function where(block: Block): string {
  return `${block.doc}:${block.line}`;
}

interface RunResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    execFile(
      command,
      args,
      { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' } },
      (error, stdout, stderr) => {
        const e = error as (Error & { code?: unknown; signal?: string | null; killed?: boolean }) | null;
        resolve({
          code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
          signal: e?.signal ?? null,
          timedOut: e?.killed === true && Date.now() - started >= timeoutMs,
          stdout: String(stdout),
          stderr: String(stderr),
        });
      },
    );
  });
}

beforeAll(() => {
  mkdirSync(RUN_DIR, { recursive: true });
  for (const block of allBlocks) {
    // `export {}` makes every block a module: top-level await works and blocks do not share globals.
    writeFileSync(join(RUN_DIR, fileNameOf(block)), `${block.code}\nexport {};\n`);
  }
});

afterAll(() => {
  if (process.env.KEEP_DOCS_BLOCKS === undefined) rmSync(RUN_DIR, { recursive: true, force: true });
});

describe('the block extractor', () => {
  it('takes ts and typescript blocks, skips nocheck and other languages, and reports code lines', () => {
    const md = [
      '# Title', // 1
      '```ts', // 2
      "console.log('a');", // 3
      '```', // 4
      '```ts nocheck', // 5
      'not: run', // 6
      '```', // 7
      '```bash', // 8
      'npm test', // 9
      '```', // 10
      '- item', // 11
      '  ```typescript', // 12
      '  const x = 1;', // 13
      '', // 14
      '    console.log(x);', // 15
      '  ```', // 16
      '````ts', // 17
      '```', // 18
      '````', // 19
    ].join('\n');
    const blocks = extractBlocks(md, 'x.md');
    expect(blocks.map((b) => [b.line, b.info, b.runnable])).toEqual([
      [3, 'ts', true],
      [6, 'ts nocheck', false],
      [9, 'bash', false],
      [13, 'typescript', true],
      [18, 'ts', true],
    ]);
    expect(blocks[3]!.code).toBe('const x = 1;\n\n  console.log(x);');
    expect(blocks[4]!.code).toBe('```');
  });

  it('finds runnable examples in docs/policies.md and docs/testing.md (README.md may have none)', () => {
    expect(blocksByDoc.get('docs/policies.md')?.length ?? 0).toBeGreaterThan(10);
    expect(blocksByDoc.get('docs/testing.md')?.length ?? 0).toBeGreaterThan(1);
  });
});

describe('documentation examples', () => {
  it('resolve `bulwark` and `bulwark/testing` to src/ through tsconfig paths when run with tsx', async () => {
    const probe = join(RUN_DIR, 'resolve-probe.ts');
    writeFileSync(
      probe,
      "console.log(JSON.stringify([import.meta.resolve('bulwark'), import.meta.resolve('bulwark/testing')]));\n",
    );
    const result = await run(TSX, [relative(ROOT, probe)], BLOCK_TIMEOUT_MS);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual([
      pathToFileURL(join(ROOT, 'src', 'index.ts')).href,
      pathToFileURL(join(ROOT, 'src', 'testing', 'index.ts')).href,
    ]);
  });

  it('type-check under the project tsconfig', async () => {
    if (allBlocks.length === 0) return;
    writeFileSync(
      join(RUN_DIR, 'tsconfig.json'),
      JSON.stringify({
        extends: relative(RUN_DIR, join(ROOT, 'tsconfig.json')),
        compilerOptions: { noEmit: true },
        include: allBlocks.map(fileNameOf),
      }),
    );
    const result = await run(TSC, ['-p', join(RUN_DIR, 'tsconfig.json'), '--pretty', 'false'], 120_000);
    const byFile = new Map(allBlocks.map((b) => [fileNameOf(b), b]));
    // Map "path/file.ts(line,col): error TSxxxx: message" back to the document's lines.
    const problems = result.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const m = /^(.+?)\((\d+),(\d+)\): (.*)$/.exec(l);
        const block = m === null ? undefined : byFile.get(basename(m[1]!));
        if (m === null || block === undefined) return l;
        return `${block.doc}:${block.line + Number(m[2]) - 1}:${m[3]}: ${m[4]}`;
      });
    expect(problems).toEqual([]);
    expect(result.code).toBe(0);
  }, 120_000);

  for (const [doc, blocks] of blocksByDoc) {
    describe.concurrent(doc, () => {
      for (const block of blocks) {
        it(
          `run: ${where(block)}`,
          async () => {
            const file = join(RUN_DIR, fileNameOf(block));
            const result = await run(TSX, [relative(ROOT, file)], BLOCK_TIMEOUT_MS);
            const warnings = result.stderr.split('\n').filter((l) => /^\(node:\d+\) \S*Warning/.test(l));
            let problem: string | null = null;
            if (result.timedOut) {
              problem = `did not finish within ${BLOCK_TIMEOUT_MS} ms (a pending timer, server or socket keeps it alive?)`;
            } else if (result.code !== 0) {
              problem = `exited with ${result.code ?? result.signal}`;
            } else if (warnings.length > 0) {
              problem = `printed process warnings: ${warnings.join('; ')}`;
            }
            if (problem !== null) {
              problem = `${where(block)}: the example ${problem}\n--- stderr ---\n${result.stderr}\n--- stdout ---\n${result.stdout}`;
            }
            expect(problem).toBeNull();
          },
          BLOCK_TIMEOUT_MS + 10_000,
        );
      }
    });
  }
});
