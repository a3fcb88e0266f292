/**
 * The durable queue and its CLI as an operator meets them (issue 15): hung handlers time out and
 * free their slots, store errors are typed (configuration vs unreachable) and name the store
 * without a password, read-only commands create nothing, the CLI's dry runs and reports are exact,
 * and bad input to enqueue is refused with a typed error. API through the package exports; the
 * CLI through its bin (test/fixtures/durable/bin.ts runs src/cli/main.ts as bin/bulwark.mjs does).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { main as cliMain } from '../src/cli/main.js';
import {
  BulwarkDurableError,
  type DurableWorkerEvent,
  openQueue,
  postgresStore,
  type QueueStore,
  sqliteStore,
} from '../src/durable/index.js';
import { backoff, ConfigError, nonRetryable } from '../src/index.js';
import { bin } from './support/durable-bin.js';
import { describePg, PG_HOST, PG_PORT, pgUrl, pgUser, uniqueName } from './support/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-operator-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await cliMain(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

function code(error: unknown): string | undefined {
  return error instanceof BulwarkDurableError ? error.code : undefined;
}

describe('a hung handler', () => {
  it('100 handlers that never settle, timeoutMs 200: all dead by the rules, no slot held, throughput back at once', async () => {
    const q = await openQueue<{ n: number; hang: boolean }>({
      name: 'hung',
      store: sqliteStore({ path: join(dir, 'hung.db') }),
      timeoutMs: 200,
      maxAttempts: 2,
      backoff: backoff.constant(10),
      statsIntervalMs: 0,
    });
    await q.enqueueMany(Array.from({ length: 100 }, (_, n) => ({ payload: { n, hang: true } })));
    const events: DurableWorkerEvent[] = [];
    const w = q.work(
      async (job, { signal }) => {
        if (job.payload.hang) await new Promise(() => {}); // ignores its signal, never settles
        if (signal.aborted) throw signal.reason;
      },
      { concurrency: 25, pollMs: 20 },
    );
    w.onEvent((e) => events.push(e));
    expect(await until(async () => (await q.stats()).dead === 100, 30_000)).toBe(true);
    expect(w.stats.timeouts).toBe(200); // 2 attempts each
    expect(w.stats.inFlight).toBe(0); // no slot stays held
    const dead = await q.deadLetters.list({ limit: 100 });
    expect(dead.every((d) => d.deadReason === 'exhausted' && d.error?.code === 'HANDLER_TIMEOUT')).toBe(true);
    // The worker's slots are free: quick items complete right away.
    await q.enqueueMany(Array.from({ length: 100 }, (_, n) => ({ payload: { n, hang: false } })));
    expect(await until(() => w.stats.completed === 100, 10_000)).toBe(true);
    // The timed-out handlers ignored their signals: reported one timeout later.
    expect(await until(() => w.snapshot().counters.ignoredSignals === 200, 5_000)).toBe(true);
    expect(events.filter((e) => e.event === 'timeout').length).toBe(200);
    await q.close({ graceMs: 0 });
  }, 60_000);
});

describe('typed store errors: configuration vs unreachable, the store named, no password', () => {
  it('SQLite: a corrupt file, a directory, a missing directory', async () => {
    const corrupt = join(dir, 'corrupt.db');
    writeFileSync(corrupt, 'this is not a database, just text that is long enough to be read as a header');
    const folder = join(dir, 'folder.db');
    mkdirSync(folder);
    for (const path of [corrupt, folder, join(dir, 'no', 'such', 'dir', 'x.db')]) {
      const err = await openQueue({ name: 'q', store: sqliteStore({ path }) }).catch((e: unknown) => e);
      expect(code(err), path).toBe('STORE_CONFIG');
      expect((err as BulwarkDurableError).store).toBe(`sqlite:${path}`);
      expect((err as BulwarkDurableError).retryable).toBe(false);
      expect((err as Error).message).toContain(path);
    }
  });

  it('PostgreSQL: a bad URL is a ConfigError at once; a wrong database is STORE_CONFIG; a closed port is STORE_UNAVAILABLE', async () => {
    expect(() => postgresStore({ connectionString: 'not a url at all' })).toThrow(ConfigError);
    const noDb = postgresStore({
      connectionString: `postgres://postgres:s3cret@${PG_HOST}:${PG_PORT}/no_such_db_x`,
    });
    const e1 = await noDb.init().catch((e: unknown) => e);
    await noDb.close();
    if (pgUser !== undefined) {
      expect(code(e1)).toBe('STORE_CONFIG');
      expect((e1 as BulwarkDurableError).store).toBe(
        `postgres://${PG_HOST}:${PG_PORT}/no_such_db_x?schema=bulwark`,
      );
      expect((e1 as Error).message).not.toContain('s3cret');
    }
    const closed = postgresStore({
      connectionString: 'postgres://u:pw@127.0.0.1:1/db',
      connectTimeoutMs: 2000,
    });
    const e2 = await closed.init().catch((e: unknown) => e);
    await closed.close();
    expect(code(e2)).toBe('STORE_UNAVAILABLE');
    expect((e2 as BulwarkDurableError).retryable).toBe(true);
    expect((e2 as Error).message).not.toContain('pw@');
  });
});

describe('read-only commands and APIs create nothing', () => {
  it('SQLite: stats on a missing file says so, exits 1 and creates no file; a read-only queue refuses changes', async () => {
    const nope = join(dir, 'nope.db');
    const r = await cli('queue', 'stats', '--store', `sqlite:${nope}`);
    expect(r.code).toBe(1);
    expect(r.err).toContain('STORE_NOT_FOUND');
    const j = await cli('queue', 'dlq', '--store', `sqlite:${nope}`, '--queue', 'x', '--json');
    expect(JSON.parse(j.out).error).toMatchObject({ code: 'STORE_NOT_FOUND', store: `sqlite:${nope}` });
    for (const cmd of [
      ['purge', '--state', 'dead', '--dry-run'],
      ['redrive', '--dry-run'],
    ]) {
      expect((await cli('queue', ...cmd, '--store', `sqlite:${nope}`, '--queue', 'x')).code).toBe(1);
    }
    expect(existsSync(nope)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('nope'))).toEqual([]);
    const err = await openQueue({ name: 'x', store: sqliteStore({ path: nope }), readOnly: true }).catch(
      (e) => e,
    );
    expect(code(err)).toBe('STORE_NOT_FOUND');
    // An existing store opened read-only reads but refuses every change.
    const path = join(dir, 'ro.db');
    const rw = await openQueue({ name: 'x', store: sqliteStore({ path }) });
    await rw.enqueue(1);
    await rw.close();
    const ro = await openQueue({ name: 'x', store: sqliteStore({ path }), readOnly: true });
    expect((await ro.stats()).pending).toBe(1);
    await expect(ro.enqueue(2)).rejects.toSatisfy((e: unknown) => code(e) === 'READ_ONLY');
    expect(() => ro.work(async () => {})).toThrow(/read-only/);
    await ro.close();
  });

  describePg('PostgreSQL', () => {
    it('stats on a schema that does not exist creates no schema', async () => {
      const schema = uniqueName('never_made');
      const r = await cli('queue', 'stats', '--store', `${pgUrl(pgUser ?? 'postgres')}?schema=${schema}`);
      expect(r.code).toBe(1);
      expect(r.err).toContain('STORE_NOT_FOUND');
      const c = new pg.Client({ connectionString: pgUrl(pgUser ?? 'postgres') });
      await c.connect();
      const found = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      await c.end();
      expect(found.rowCount).toBe(0);
    });
  });
});

async function pausesFleetWide(a: QueueStore, b: QueueStore): Promise<void> {
  const name = uniqueName('paused');
  const qa = await openQueue<number>({ name, store: a, statsIntervalMs: 0 });
  const qb = await openQueue<number>({ name, store: b, statsIntervalMs: 0 });
  try {
    await qa.pause();
    expect(await qb.isPaused()).toBe(true); // another store (another connection, as another process)
    const w = qb.work(async () => {}, { pollMs: 20 });
    await qa.enqueueMany([{ payload: 1 }, { payload: 2 }]);
    await new Promise((r) => setTimeout(r, 300));
    expect(w.stats.claimed).toBe(0);
    expect((await qb.stats()).pending).toBe(2);
    expect(qb.snapshot().state).toBe('paused');
    await qa.resume();
    expect(await until(() => w.stats.completed === 2, 10_000)).toBe(true);
    expect(qa.snapshot().state).toBe('open');
  } finally {
    await qa.close();
    await qb.close();
  }
}

describe('pause() and resume() hold every worker that shares the store', () => {
  it('SQLite: two stores on one file', async () => {
    const path = join(dir, 'pause.db');
    await pausesFleetWide(sqliteStore({ path }), sqliteStore({ path }));
  });

  describePg('PostgreSQL', () => {
    it('two stores on one schema', async () => {
      const schema = uniqueName('bw_pause');
      const url = pgUrl(pgUser ?? 'postgres');
      const a = postgresStore({ connectionString: url, schema });
      try {
        await pausesFleetWide(a, postgresStore({ connectionString: url, schema }));
      } finally {
        const drop = postgresStore({ connectionString: url, schema });
        await drop.dropSchema();
        await drop.close();
      }
    });
  });
});

describe('input that used to pass silently', () => {
  it('a misspelled enqueue option and a circular payload are refused with typed errors', async () => {
    const q = await openQueue({ name: 'input', store: sqliteStore({ path: ':memory:' }) });
    const typo = await q.enqueue({ a: 1 }, { dealyMs: 5 } as never).catch((e: unknown) => e);
    expect(typo).toBeInstanceOf(ConfigError);
    expect((typo as ConfigError).suggestion).toBe('delayMs');
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    await expect(q.enqueue(loop)).rejects.toSatisfy((e: unknown) => code(e) === 'ENCODE_FAILED');
    expect((await q.stats()).pending).toBe(0);
    await q.close();
  });
});

describe('the CLI is exact', () => {
  const path = join(dir, 'cli.db');
  const spec = `sqlite:${path}`;
  let dead: string[] = [];

  it('setup: 300 dead letters and 5 completed items', async () => {
    const q = await openQueue<{ n: number }>({
      name: 'ops',
      store: sqliteStore({ path }),
      statsIntervalMs: 0,
    });
    await q.enqueueMany(Array.from({ length: 305 }, (_, n) => ({ payload: { n } })));
    const w = q.work(
      async (job) => {
        if (job.payload.n >= 5) throw nonRetryable(new Error(`bad ${job.payload.n}`));
      },
      { concurrency: 50 },
    );
    expect(await until(() => w.stats.completed + w.stats.dead === 305, 20_000)).toBe(true);
    await q.close();
    dead = (await cliJson('dlq', '--limit', '1000')).map((d: { id: string }) => d.id);
    expect(dead.length).toBe(300);
  });

  async function cliJson(...argv: string[]) {
    const r = await cli('queue', ...argv, '--store', spec, '--queue', 'ops', '--json');
    return JSON.parse(r.out);
  }

  it('JSON: ISO times with epoch ms beside them, the last error as an object', async () => {
    const [d] = await cliJson('dlq', '--limit', '1');
    expect(d.updatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(typeof d.updatedAtMs).toBe('number');
    expect(d.error).toMatchObject({ name: 'Error', message: expect.stringMatching(/^bad \d+$/) });
    expect(d.lastError).toBeUndefined();
  });

  it('purge --dry-run counts exactly what --yes deletes (same predicate, --older-than too)', async () => {
    const dry = await cliJson('purge', '--state', 'completed', '--older-than', '0', '--dry-run');
    const real = await cliJson('purge', '--state', 'completed', '--older-than', '0', '--yes');
    expect(dry.wouldDelete).toBe(5);
    expect(real.deleted).toBe(dry.wouldDelete);
    const none = await cliJson('purge', '--state', 'dead', '--older-than', '3600000', '--dry-run');
    expect(none.wouldDelete).toBe(0);
  });

  it('dlq --limit 0 is a usage error, not "No dead letters"', async () => {
    const r = await cli('queue', 'dlq', '--store', spec, '--queue', 'ops', '--limit', '0');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--limit must be a whole number >= 1');
  });

  it('redrive --ids accounts for every id (a missing one is named, exit 1); the dry run says the same', async () => {
    const dry = await cli(
      'queue',
      'redrive',
      '--store',
      spec,
      '--queue',
      'ops',
      '--ids',
      `${dead[0]},missing-id`,
      '--dry-run',
      '--json',
    );
    expect(dry.code).toBe(1);
    expect(JSON.parse(dry.out)).toMatchObject({
      wouldRedrive: [dead[0]],
      skipped: [{ id: 'missing-id', reason: 'not-found' }],
    });
    const r = await cli(
      'queue',
      'redrive',
      '--store',
      spec,
      '--queue',
      'ops',
      '--ids',
      `${dead[0]},missing-id`,
      '--yes',
    );
    expect(r.code).toBe(1);
    expect(r.out).toContain('Redrove 1 dead letter(s)');
    expect(r.out).toContain('missing-id: no such item');
    const again = await cli(
      'queue',
      'redrive',
      '--store',
      spec,
      '--queue',
      'ops',
      '--ids',
      dead[0]!,
      '--yes',
      '--json',
    );
    expect(JSON.parse(again.out).skipped).toEqual([{ id: dead[0], reason: 'not-dead', state: 'pending' }]);
  });

  it('through the bin: --version; a paced redrive shows progress and Ctrl-C reports what was done (exit 130)', async () => {
    const v = await bin(['--version']);
    expect(v.code).toBe(0);
    expect(v.out.trim()).toMatch(/^\d+\.\d+\.\d+/);
    let sent = false;
    const r = await bin(
      ['queue', 'redrive', '--store', spec, '--queue', 'ops', '--limit', '299', '--rate', '50', '--yes'],
      (err, child) => {
        if (!sent && err.includes('redrive:')) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    );
    expect(r.code).toBe(130);
    expect(r.err).toMatch(/redrive: \d+ of at most 299 redriven so far/);
    const m = /Interrupted: redrove (\d+) dead letter\(s\)/.exec(r.out);
    expect(m).not.toBeNull();
    const n = Number(m![1]);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(299);
    // The report is exact: that many left the dead letters.
    expect((await cliJson('dlq', '--limit', '1000')).length).toBe(299 - n);
  }, 60_000);
});
