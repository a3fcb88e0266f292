/**
 * Schedules, fleet-wide limits, redrive into another queue and progress through the `bulwark queue`
 * CLI as a user runs it (the bin, test/fixtures/durable/bin.ts), against a SQLite file.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueue } from '../src/durable/queue.js';
import { sqliteStore } from '../src/durable/sqlite-store.js';
import { bin } from './support/durable-bin.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-qfeat-cli-'));
const spec = `sqlite:${join(dir, 'qfeat.db')}`;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const q = (...argv: string[]) => bin(['queue', ...argv, '--store', spec]);
let deadId = '';
let conflictId = '';

beforeAll(async () => {
  const src = await openQueue({
    name: 'src',
    store: sqliteStore({ path: join(dir, 'qfeat.db') }),
    maxAttempts: 1,
  });
  deadId = (await src.enqueue({ n: 1 }, { key: 'k1' })).id;
  conflictId = (await src.enqueue({ n: 2 }, { key: 'k2' })).id;
  await src.enqueue({ n: 3 }, { timeoutMs: 5000 });
  const w = src.work(
    async (job) => {
      if ((job.payload as { n: number }).n < 3) throw new Error('declined');
      await job.progress({ step: 'half', pct: 50 });
      await new Promise(() => {}); // stays active with its progress (lease long)
    },
    { concurrency: 3, leaseMs: 600_000 },
  );
  for (let i = 0; i < 300 && w.stats.dead < 2; i++) await new Promise((r) => setTimeout(r, 10));
  const dst = await openQueue({ name: 'dst', store: sqliteStore({ path: join(dir, 'qfeat.db') }) });
  await dst.enqueue({ n: 0 }, { key: 'k2' });
  await dst.close();
  // The third item stays running: close returns it to pending (its progress stays).
  await src.close({ graceMs: 0 }).catch(() => {});
}, 60_000);

describe('bulwark queue schedules / limits / redrive --to / progress', () => {
  it('schedules: add needs --yes, lists, dry-runs, removes; bad cron exits 1 with the typed error', async () => {
    expect(
      (await q('schedules', 'add', '--queue', 'src', '--name', 'nightly', '--cron', '0 3 * * *')).code,
    ).toBe(2);
    const add = await q(
      'schedules',
      'add',
      '--queue',
      'src',
      '--name',
      'nightly',
      '--cron',
      '0 3 * * *',
      '--tz',
      'Europe/Paris',
      '--data',
      '{"kind":"daily"}',
      '--yes',
      '--json',
    );
    expect(add.code).toBe(0);
    expect(JSON.parse(add.out)).toMatchObject({ queue: 'src', name: 'nightly' });
    const bad = await q(
      'schedules',
      'add',
      '--queue',
      'src',
      '--name',
      'x',
      '--cron',
      '61 * * * *',
      '--yes',
      '--json',
    );
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.out).error).toMatchObject({ code: 'INVALID_OPTION', option: 'schedules.add.cron' });
    const list = await q('schedules', '--queue', 'src');
    expect(list.out).toMatch(/NAME\s+WHEN\s+CATCH-UP\s+NEXT RUN\s+LAST RUN/);
    expect(list.out).toMatch(/nightly\s+0 3 \* \* \* \(Europe\/Paris\)\s+last\s+\d{4}-/);
    const dry = await q('schedules', 'remove', '--queue', 'src', '--name', 'nightly', '--dry-run');
    expect(dry.out).toContain('would remove');
    const rm = await q('schedules', 'remove', '--queue', 'src', '--name', 'nightly', '--yes');
    expect(rm.code).toBe(0);
    expect((await q('schedules', '--queue', 'src', '--json')).out.trim()).toBe('[]');
  }, 60_000);

  it('limits: show, set, clear', async () => {
    expect((await q('limits', '--queue', 'src')).out).toContain('none');
    const set = await q('limits', '--queue', 'src', '--concurrency', '5', '--rate', '20', '--yes', '--json');
    expect(JSON.parse(set.out)).toEqual({
      queue: 'src',
      limits: { concurrency: 5, ratePerSec: 20, burst: null },
    });
    expect((await q('limits', '--queue', 'src')).out).toContain('concurrency 5, 20/s (burst 20)');
    expect((await q('limits', '--queue', 'src', '--clear', '--yes')).out).toContain('none');
  }, 60_000);

  it('redrive --to: moves one, reports the key conflict, exit 1', async () => {
    const dry = await q('redrive', '--queue', 'src', '--to', 'dst', '--dry-run');
    expect(dry.out).toContain('would redrive 2 dead letter(s) of queue "src" into queue "dst"');
    const r = await q(
      'redrive',
      '--queue',
      'src',
      '--to',
      'dst',
      '--ids',
      `${deadId},${conflictId}`,
      '--yes',
    );
    expect(r.code).toBe(1);
    expect(r.out).toContain('Redrove 1 dead letter(s) of queue "src" into queue "dst"');
    expect(r.out).toContain(`${conflictId}: its idempotency key is taken in the target queue (left dead)`);
    const moved = JSON.parse((await q('list', '--queue', 'dst', '--json')).out) as {
      id: string;
      redrives: number;
    }[];
    expect(moved.find((m) => m.id === deadId)?.redrives).toBe(1);
  }, 60_000);

  it('progress and per-item timeout show in list (table and JSON)', async () => {
    const t = await q('list', '--queue', 'src', '--state', 'pending');
    expect(t.out).toMatch(/PROGRESS/);
    expect(t.out).toContain('{"step":"half","pct":50}');
    const j = JSON.parse((await q('list', '--queue', 'src', '--state', 'pending', '--json')).out);
    expect(j[0]).toMatchObject({ progress: { step: 'half', pct: 50 }, timeoutMs: 5000 });
  }, 60_000);
});
