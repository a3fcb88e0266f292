/**
 * Fleet-wide schedules and limits with real worker processes (test/fixtures/durable/fleet-worker.ts,
 * started by the crash harness: one process each, in its own process group).
 *
 * - A job scheduled every second (SQLite: everyMs 1000; PostgreSQL: cron `* * * * * *`) on 3 worker
 *   processes, on SQLite (one file shared by the
 *   processes) and on PostgreSQL: exactly one item per tick for 30 consecutive ticks, each run by
 *   one handler, although every process races for every tick and one of them is SIGKILLed mid-run.
 * - Fleet-wide concurrency 5 across 4 PostgreSQL worker processes (20 handler slots): never more
 *   than 5 handlers running at once (each handler records its start and end); and with the limit
 *   set above the load, the throughput of the same 4 workers compared with no limit (alternating
 *   rounds, median of the ratios).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openQueue, storeFromSpec } from '../src/durable/index.js';
import { killGroup } from './support/durable-crash.js';
import { limitRound, lines, sleep, startWorkers, stopWorkers } from './support/durable-fleet.js';
import { describePg, dropSchema, pgConnectionString, pgUp, uniqueName } from './support/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'bulwark-qfeat-fleet-'));
const schema = uniqueName('bw_qfeat_fleet');
const pgSpec = () => `${pgConnectionString()}?schema=${schema}`;

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (pgUp) await dropSchema(schema);
});

async function cronAcrossAKill(
  spec: string,
  label: string,
  when: { cron: string } | { everyMs: number },
): Promise<void> {
  const queue = `qfeat_cron_${label}`;
  const log = join(dir, `${queue}.log`);
  const admin = await openQueue({ name: queue, store: storeFromSpec(spec), statsIntervalMs: 0 });
  await admin.schedules.add({ name: 'every-second', ...when, catchUp: 'all', payload: { label } });
  const workers = await startWorkers(3, () => ['cron', spec, queue, log, '4', '0']);
  const ticks = () => new Set(lines(log).map((l) => Number(l[1])));
  const deadline = Date.now() + 120_000;
  while (ticks().size < 10 && Date.now() < deadline) await sleep(200);
  killGroup(workers[0]!.proc, 'SIGKILL');
  expect((await workers[0]!.exited).signal).toBe('SIGKILL');
  while (ticks().size < 33 && Date.now() < deadline) await sleep(200);
  await admin.schedules.remove('every-second');
  // The killed worker's claimed item (if any) is taken over once its lease expires.
  while (Date.now() < deadline) {
    const st = await admin.stats();
    if (st.pending === 0 && st.active === 0) break;
    await sleep(200);
  }
  await stopWorkers(workers.slice(1));
  const items = await admin.list({ limit: 1000 });
  await admin.close();
  const byTick = new Map<number, string[]>();
  for (const it of items) byTick.set(it.runAt, [...(byTick.get(it.runAt) ?? []), it.id]);
  const sorted = [...byTick.keys()].sort((a, b) => a - b);
  const first = sorted[0]!;
  const window = Array.from({ length: 30 }, (_, i) => first + i * 1000);
  const runs = lines(log);
  const runsById = new Map<string, number>();
  for (const r of runs) runsById.set(r[2]!, (runsById.get(r[2]!) ?? 0) + 1);
  const perTick = window.map((t) => byTick.get(t)?.length ?? 0);
  const rerun = [...runsById.values()].filter((n) => n > 1).length;
  console.log(
    `${label} cron: ${items.length} items over ${sorted.length} ticks, per tick in the window ${JSON.stringify(perTick)}, handler re-runs ${rerun}, processes running items ${new Set(runs.map((r) => r[3])).size}`,
  );
  expect(perTick).toEqual(window.map(() => 1));
  for (const [, ids] of byTick) expect(ids).toHaveLength(1);
  expect(items.every((i) => i.state === 'completed')).toBe(true);
  // Every item of the window ran; a re-run is only possible for the item the SIGKILL interrupted.
  for (const t of window) expect(runsById.get(byTick.get(t)![0]!) ?? 0).toBeGreaterThanOrEqual(1);
  expect(rerun).toBeLessThanOrEqual(1);
}

describe('cron on 3 worker processes, across a SIGKILL', () => {
  it('SQLite (everyMs: 1000): one item per tick for 30 ticks', async () => {
    await cronAcrossAKill(`sqlite:${join(dir, 'qfeat-cron.db')}`, 'sqlite', { everyMs: 1000 });
  }, 180_000);
});

describePg('fleet-wide features on PostgreSQL', () => {
  it('rate limit: the token bucket is shared by every claimer and refills with time', async () => {
    const store = storeFromSpec(pgSpec());
    const q = await openQueue({ name: 'qfeat_rate', store, statsIntervalMs: 0 });
    await q.limits.set({ ratePerSec: 10, burst: 10 });
    await q.enqueueMany(Array.from({ length: 50 }, (_, i) => ({ payload: i })));
    const t0 = Date.now();
    const other = storeFromSpec(pgSpec());
    await other.init();
    const [a, b] = await Promise.all([
      store.claim('qfeat_rate', 50, 60_000, t0),
      other.claim('qfeat_rate', 50, 60_000, t0),
    ]);
    expect(a.length + b.length).toBe(10);
    expect(await store.claim('qfeat_rate', 50, 60_000, t0 + 10)).toHaveLength(0);
    expect(await other.claim('qfeat_rate', 50, 60_000, t0 + 510)).toHaveLength(5);
    await q.limits.clear();
    await other.close();
    await q.close();
  });

  it("cron '* * * * * *' (every second): one item per tick for 30 ticks", async () => {
    await cronAcrossAKill(pgSpec(), 'pg', { cron: '* * * * * *' });
  }, 180_000);

  const round = (limit: number | null, items: number, conc: number, workMs: number, tag: string) =>
    limitRound({ spec: pgSpec(), dir, limit, items, concurrency: conc, workMs, tag });

  it('concurrency 5 across 4 processes: never more than 5 handlers at once', async () => {
    const r = await round(5, 300, 5, 15, 'five');
    console.log(
      `pg fleet limit 5: max running at once ${r.max}, ${r.starts} handler runs, ${r.perSec.toFixed(0)} items/s`,
    );
    expect(r.starts).toBeGreaterThanOrEqual(300);
    expect(r.max).toBeLessThanOrEqual(5);
    expect(r.max).toBe(5);
  }, 300_000);

  it('limit above the load: throughput close to no limit (alternating rounds, median ratio)', async () => {
    const ratios: number[] = [];
    for (let k = 0; k < 5; k++) {
      const free = await round(null, 2000, 25, 0, `free${k}`);
      const limited = await round(1000, 2000, 25, 0, `high${k}`);
      ratios.push(limited.perSec / free.perSec);
      console.log(
        `round ${k}: no limit ${free.perSec.toFixed(0)}/s, limit 1000 ${limited.perSec.toFixed(0)}/s`,
      );
    }
    ratios.sort((a, b) => a - b);
    const median = ratios[2]!;
    console.log(
      `pg fleet limit above load: median throughput ratio ${median.toFixed(3)} (${ratios.map((x) => x.toFixed(3)).join(', ')})`,
    );
    // The goal is within 10 % (ratio >= 0.9); asserted with a generous margin on a loaded machine.
    expect(median).toBeGreaterThan(0.5);
  }, 600_000);
});
