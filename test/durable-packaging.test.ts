/**
 * Packaging promises of issue 15: a LICENSE file, source maps that point at shipped files (the
 * sources they name are in the package), and no zod in bulwark/durable.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('packaging', () => {
  it('ships an MIT LICENSE, and the sources its source maps point at (no test files)', async () => {
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toContain('Copyright (c) 2026 the Bulwark authors');
    const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      maxBuffer: 64 * 1024 * 1024,
    });
    const files = new Set(
      (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path),
    );
    expect(files.has('LICENSE')).toBe(true);
    // dist/x.js.map names ../src/x.ts: every non-test source under src/durable ships.
    for (const f of readdirSync(join(root, 'src/durable'))) {
      expect(files.has(`src/durable/${f}`), f).toBe(!f.endsWith('.test.ts'));
    }
    const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8'));
    expect(build.compilerOptions.rootDir).toBe('src');
  }, 60_000);

  it('bulwark/durable does not import zod', () => {
    for (const f of readdirSync(join(root, 'src/durable'))) {
      expect(readFileSync(join(root, 'src/durable', f), 'utf8'), f).not.toMatch(/from 'zod'/);
    }
  });
});
