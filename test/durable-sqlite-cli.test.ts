/**
 * The `bulwark queue` CLI against a SQLite file: tables for people, --json for scripts, exit codes.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nonRetryable } from '../src/core/errors.js';
import { main } from '../src/durable/cli.js';
import { openQueue } from '../src/durable/queue.js';
import { sqliteStore } from '../src/durable/sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-cli-'));
const db = join(dir, 'cli.db');
const spec = `sqlite:${db}`;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

let deadIds: string[] = [];

beforeAll(async () => {
  const q = await openQueue<{ n: number }>({
    name: 'payments',
    store: sqliteStore({ path: db }),
    maxAttempts: 1,
  });
  for (let n = 0; n < 6; n++) await q.enqueue({ n }, { key: `order-${n}` });
  const w = q.work(async (job) => {
    if (job.payload.n % 2 === 0)
      throw nonRetryable(Object.assign(new Error(`card declined ${job.payload.n}`), { code: 'DECLINED' }));
  });
  for (let i = 0; i < 200 && w.stats.completed + w.stats.dead < 6; i++)
    await new Promise((r) => setTimeout(r, 10));
  await w.stop();
  await q.enqueue({ n: 99 }, { delayMs: 3_600_000 });
  deadIds = (await q.deadLetters.list()).map((d) => d.id);
  await q.close();
});

describe('bulwark queue CLI', () => {
  it('stats: a table of every queue, or JSON', async () => {
    const t = await cli('queue', 'stats', '--store', spec);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/QUEUE\s+PENDING\s+DELAYED\s+ACTIVE\s+COMPLETED\s+DEAD/);
    expect(t.out).toMatch(/payments\s+1\s+1\s+0\s+3\s+3/);
    const j = await cli('queue', 'stats', '--store', spec, '--queue', 'payments', '--json');
    expect(JSON.parse(j.out)).toEqual([
      expect.objectContaining({
        queue: 'payments',
        pending: 1,
        delayed: 1,
        active: 0,
        completed: 3,
        dead: 3,
      }),
    ]);
  });

  it('list and dlq show items, reasons and errors; --payload shows payloads', async () => {
    const l = await cli(
      'queue',
      'list',
      '--store',
      spec,
      '--queue',
      'payments',
      '--state',
      'completed',
      '--payload',
    );
    expect(l.code).toBe(0);
    expect(l.out).toContain('order-1');
    expect(l.out).toContain('{"n":1}');
    const d = await cli('queue', 'dlq', '--store', spec, '--queue', 'payments');
    expect(d.out).toContain('non-retryable');
    expect(d.out).toContain('[DECLINED] card declined 0');
    const dj = await cli('queue', 'dlq', '--store', spec, '--queue', 'payments', '--json');
    const parsed = JSON.parse(dj.out) as { id: string; deadReason: string; payload?: unknown }[];
    expect(parsed.map((p) => p.id)).toEqual(deadIds);
    expect(parsed[0]!.payload).toBeUndefined();
  });

  it('redrive and purge need --yes, or only report with --dry-run', async () => {
    const bare = await cli('queue', 'redrive', '--store', spec, '--queue', 'payments');
    expect(bare.code).toBe(2);
    expect(bare.err).toContain('pass --yes');
    const both = await cli(
      'queue',
      'purge',
      '--store',
      spec,
      '--queue',
      'payments',
      '--state',
      'dead',
      '--yes',
      '--dry-run',
    );
    expect(both.code).toBe(2);
    const dry = await cli('queue', 'redrive', '--store', spec, '--queue', 'payments', '--dry-run', '--json');
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.out)).toEqual({
      queue: 'payments',
      dryRun: true,
      wouldRedrive: deadIds,
      skipped: [],
    });
    const dryPurge = await cli(
      'queue',
      'purge',
      '--store',
      spec,
      '--queue',
      'payments',
      '--state',
      'dead',
      '--dry-run',
    );
    expect(dryPurge.code).toBe(0);
    expect(dryPurge.out).toContain(`Dry run: would delete ${deadIds.length} dead item(s)`);
    // Nothing changed.
    const dl = await cli('queue', 'dlq', '--store', spec, '--queue', 'payments', '--json');
    expect((JSON.parse(dl.out) as unknown[]).length).toBe(deadIds.length);
  });

  it('numeric options must be whole numbers', async () => {
    const frac = await cli('queue', 'list', '--store', spec, '--queue', 'payments', '--limit', '1.5');
    expect(frac.code).toBe(2);
    expect(frac.err).toContain('--limit must be a whole number');
    const zero = await cli(
      'queue',
      'redrive',
      '--store',
      spec,
      '--queue',
      'payments',
      '--limit',
      '0',
      '--yes',
    );
    expect(zero.code).toBe(2);
  });

  it('redrive by ids and limit, with a rate', async () => {
    const one = await cli(
      'queue',
      'redrive',
      '--store',
      spec,
      '--queue',
      'payments',
      '--ids',
      deadIds[0]!,
      '--yes',
      '--json',
    );
    expect(JSON.parse(one.out)).toEqual({ queue: 'payments', redriven: [deadIds[0]], skipped: [] });
    const rest = await cli(
      'queue',
      'redrive',
      '--store',
      spec,
      '--queue',
      'payments',
      '--limit',
      '10',
      '--rate',
      '100',
      '--yes',
    );
    expect(rest.out).toContain('Redrove 2 dead letter(s)');
  });

  it('purge: terminal states only unless --force', async () => {
    const refused = await cli(
      'queue',
      'purge',
      '--store',
      spec,
      '--queue',
      'payments',
      '--state',
      'pending',
      '--yes',
    );
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('INVALID_STATE');
    const ok = await cli(
      'queue',
      'purge',
      '--store',
      spec,
      '--queue',
      'payments',
      '--state',
      'completed',
      '--yes',
      '--json',
    );
    expect(JSON.parse(ok.out)).toEqual({ queue: 'payments', state: 'completed', deleted: 3 });
  });

  it('usage errors exit 2 with the usage text', async () => {
    expect((await cli()).code).toBe(2);
    expect((await cli('queue', 'stats')).err).toContain('--store is required');
    expect((await cli('queue', 'list', '--store', spec)).err).toContain('needs --queue');
    expect((await cli('queue', 'stats', '--store', 'mysql://x')).code).toBe(1);
    expect((await cli('queue', 'stats', '--store', spec, '--bogus')).code).toBe(2);
    expect((await cli('--help')).code).toBe(0);
  });

  it('runs as a process (tsx importing src/durable/cli.ts)', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const run = promisify(execFile);
    const { stdout } = await run(
      `${root}node_modules/.bin/tsx`,
      [
        '-e',
        `import('${root}src/durable/cli.ts').then(async (m) => { process.exitCode = await m.main(process.argv.slice(1)); })`,
        'queue',
        'stats',
        '--store',
        spec,
        '--json',
      ],
      { cwd: root },
    );
    expect(JSON.parse(stdout)[0].queue).toBe('payments');
  });
});
