/**
 * The built package: its subpath exports resolve to dist/ with declarations, and the core
 * has zero runtime dependencies. (`npm test` builds before running the tests.)
 */

import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as {
  dependencies?: Record<string, string>;
  exports: Record<string, { types: string; default: string } | string>;
  engines: { node: string };
  type: string;
};

describe('package', () => {
  it('is ESM, supports Node >= 20.19, and has no runtime dependency at all (drivers are optional peers)', () => {
    expect(pkg.type).toBe('module');
    expect(Object.keys(pkg.dependencies ?? {})).toEqual([]);
    expect(pkg.engines.node).toBe('>=20.19');
  });

  it('the core entry (`bulwark`) and `bulwark/testing` import no package at all: zero runtime dependencies', () => {
    const seen = new Set<string>();
    const bare: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^(?:import|export)\b[^'";]*?from\s+['"]([^'"]+)['"]/gm)) {
        const spec = m[1] as string;
        if (spec.startsWith('.')) visit(fileURLToPath(new URL(spec, `file://${file}`)));
        else if (!spec.startsWith('node:')) bare.push(`${file}: ${spec}`);
      }
    };
    visit(`${root}dist/index.js`);
    visit(`${root}dist/testing/index.js`);
    expect(seen.size).toBeGreaterThan(10);
    expect(bare).toEqual([]);
  });

  it('every subpath export points at built JavaScript and declarations', () => {
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (typeof target === 'string') continue;
      expect(existsSync(`${root}${target.default}`), `${subpath} → ${target.default}`).toBe(true);
      expect(existsSync(`${root}${target.types}`), `${subpath} → ${target.types}`).toBe(true);
    }
  });

  it('resolves `bulwark` and `bulwark/testing` by name from plain Node (self-reference through exports)', async () => {
    const script = `
      const core = await import('bulwark');
      const testing = await import('bulwark/testing');
      const names = ['pipeline', 'retry', 'circuitBreaker', 'timeout', 'bulkhead', 'fallback', 'backoff', 'handle', 'isTransient', 'nonRetryable', 'telemetry'];
      for (const n of names) if (core[n] === undefined) throw new Error('missing export ' + n);
      const clock = testing.createFakeClock();
      const p = core.retry({ maxAttempts: 2, clock });
      let n = 0;
      const done = p.execute(() => { if (++n < 2) throw new Error('x'); return 'ok'; });
      await clock.tick(1000);
      console.log(await done);
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
    expect(stdout.trim()).toBe('ok');
  });

  it('package-lock.json lists every optional platform binary, so `npm ci` accepts it (see scripts/complete-lockfile.mjs)', () => {
    const lock = JSON.parse(readFileSync(`${root}package-lock.json`, 'utf8')) as {
      packages: Record<string, { optionalDependencies?: Record<string, string> }>;
    };
    const missing: string[] = [];
    for (const [key, meta] of Object.entries(lock.packages)) {
      for (const dep of Object.keys(meta.optionalDependencies ?? {})) {
        const nested = `${key ? `${key}/` : ''}node_modules/${dep}`;
        if (!lock.packages[nested] && !lock.packages[`node_modules/${dep}`]) missing.push(dep);
      }
    }
    expect(missing, 'run `node scripts/complete-lockfile.mjs`').toEqual([]);
  });
});
