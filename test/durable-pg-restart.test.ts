/**
 * A REAL PostgreSQL restart mid-run (`pg_ctl restart -m fast`: every session terminated, the server
 * shut down and started again) on a private server (test/support/private-postgres.ts), so the
 * shared one at 5432 is untouched: the workers' store reconnects, and every item ends completed
 * (or dead) exactly once. Fails under CI=true when the private server cannot be started.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../src/core/registry.js';
import { type DurableWorkerEvent, openQueue, postgresStore } from '../src/durable/index.js';
import { PrivatePostgres, pgBinDir } from './support/private-postgres.js';

const canRun = pgBinDir() !== undefined;
if (!canRun && process.env.CI !== 'true')
  console.warn('PostgreSQL restart test SKIPPED: no PostgreSQL server binaries');
const describeRestart = canRun || process.env.CI === 'true' ? describe : describe.skip;

async function until(cond: () => Promise<boolean> | boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describeRestart('durable queue across a real PostgreSQL restart', () => {
  let server: PrivatePostgres;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  beforeAll(async () => {
    server = await PrivatePostgres.start();
    process.on('unhandledRejection', onUnhandled);
  }, 60_000);
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    server?.stop();
  });

  /** The server's start time, read on a fresh connection. */
  async function startTime(): Promise<string> {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      const r = await c.query<{ t: Date }>('SELECT pg_postmaster_start_time() AS t');
      return r.rows[0]!.t.toISOString();
    } finally {
      await c.end();
    }
  }

  it('workers reconnect after the server restarts and finish every item exactly once', async () => {
    const N = 600;
    const registry = createRegistry();
    const q = await openQueue<{ i: number }>({
      name: 'restart',
      store: postgresStore({ connectionString: server.url }),
      registry,
    });
    const completions = new Map<string, number>();
    let errors = 0;
    registry.onEvent((e) => {
      const ev = e as DurableWorkerEvent;
      if (ev.event === 'completed') completions.set(ev.id, (completions.get(ev.id) ?? 0) + 1);
      if (ev.event === 'error') errors++;
    });
    try {
      const ids = (
        await q.enqueueMany(
          Array.from({ length: N }, (_, i) => ({ payload: { i }, options: { maxAttempts: 20 } })),
        )
      ).map((r) => r.id);
      const runs = new Map<number, number>();
      const workers = Array.from({ length: 2 }, () =>
        q.work(
          async (job) => {
            runs.set(job.payload.i, (runs.get(job.payload.i) ?? 0) + 1);
            await new Promise((r) => setTimeout(r, 5));
          },
          { concurrency: 8, leaseMs: 5_000, pollMs: 100 },
        ),
      );
      expect(await until(() => completions.size >= N / 4, 60_000)).toBe(true);
      const before = completions.size;
      const started = await startTime();
      server.restart(); // synchronous: returns once the server is up again
      const afterRestart = completions.size;
      expect(afterRestart).toBeLessThan(N);
      expect(await until(async () => completions.size >= N, 90_000)).toBe(true);
      for (const w of workers) await w.stop({ graceMs: 5_000 });
      const s = await q.stats();
      expect(s.completed).toBe(N);
      expect(s.pending + s.active + s.dead).toBe(0);
      // Acks are fenced: no item was completed twice, whatever ran again across the restart.
      expect([...completions.values()].every((n) => n === 1)).toBe(true);
      expect(new Set(completions.keys())).toEqual(new Set(ids));
      const reruns = [...runs.values()].filter((n) => n > 1).length;
      console.log(
        `pg restart: ${N} items, ${before} done before the restart, ${errors} store errors during it, ${reruns} handler re-runs`,
      );
      // The restart happened for real (the pool may or may not have had a query in flight then).
      expect(await startTime()).not.toBe(started);
      expect(unhandled).toEqual([]);
    } finally {
      await q.close();
    }
  }, 180_000);
});
