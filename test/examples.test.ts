/**
 * Every program in examples/ runs and exits 0; the tour narrates each behaviour it promises.
 */

import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const tsx = `${root}node_modules/.bin/tsx`;

async function runExample(file: string): Promise<string> {
  const { stdout } = await run(tsx, [`examples/${file}`], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1' },
    timeout: 30_000,
  });
  return stdout;
}

describe('examples', () => {
  it('the tour shows retries, the breaker opening and half-opening, the fallback, the bulkhead and timeouts', async () => {
    const out = await runExample('tour.ts');
    expect(out).toContain('↻ retry: attempt 1 failed (socket hang up)');
    expect(out).toContain('breaker closed → open');
    expect(out).toContain('breaker open → half-open');
    expect(out).toContain('breaker half-open → closed');
    expect(out).toContain('queued for later (breaker open)');
    expect(out).toContain('bulkhead rejected a call');
    expect(out).toContain('queued for later (bulkhead full)');
    expect(out).toContain('timed out after 300 ms');
    expect(out).toContain('Done.');
  });

  for (const file of readdirSync(`${root}examples`).filter((f) => f.endsWith('.ts') && f !== 'tour.ts')) {
    it(`${file} runs and exits 0`, async () => {
      await expect(runExample(file)).resolves.toBeTypeOf('string');
    });
  }
});
