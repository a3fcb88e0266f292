/**
 * A CI-sized run of scripts/export-memory.ts (the full 1M-row run is in bench/export.bench.ts):
 * an export streams with flat memory (RSS growth < 50 MB) and shows progress.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('export memory', () => {
  it.each(['csv', 'ndjson', 'sql', 'json', 'md'])(
    '300k rows stream as %s with RSS growth under 50 MB, with a progress line',
    async (format) => {
      const { stdout, stderr } = await run(
        process.execPath,
        ['--import', 'tsx', 'scripts/export-memory.ts', '--rows', '300000', '--format', format],
        { maxBuffer: 1 << 24, env: { ...process.env, WARM: '200000' } },
      );
      const r = JSON.parse(stdout.trim().split('\n').pop()!) as { rows: number; growthMb: number };
      expect(r.rows).toBe(300_000);
      expect(r.growthMb).toBeLessThan(50);
      expect(stderr).toMatch(/rows\/s/);
    },
    120_000,
  );
});
