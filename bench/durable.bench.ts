/**
 * Durable queue throughput, issue 15's workload, all four systems side by side in ONE run:
 *
 *   10 000 small jobs (a JSON object of 256 bytes) enqueued by 64 concurrent producers (each awaits
 *   one call at a time), then processed by a no-op handler (it reads the payload) at concurrency
 *   200; the clock runs from the worker's start until every job's completion is acknowledged.
 *
 * - Bulwark on PostgreSQL: `openQueue` + `postgresStore` (pool 10), `queue.work(h, { concurrency: 200 })`,
 *   with the default `asyncAcks: true` and with `asyncAcks: false`.
 * - Bulwark on SQLite: `openQueue` + `sqliteStore` (WAL, `synchronous = FULL`), same worker, with
 *   the default `asyncAcks: true` and with `asyncAcks: false`.
 * - pg-boss (same PostgreSQL, pool 10): its fastest processing path here, W loops of
 *   `fetch({ batchSize: B })` + `complete(ids)` with W × B = 200; two shapes run (4 × 50 and
 *   8 × 25) and the ratios use the faster one's median (its `work()` is bound by its ≥ 0.5 s polling
 *   interval: ~0.4 k/s, see RESULTS-durable-pg.md).
 * - BullMQ on the local Redis (no persistence here): `Worker` with concurrency 200,
 *   `removeOnComplete: true, removeOnFail: 1000` (its docs' advice for throughput).
 *
 * One warm-up round (2 000 jobs each), then ROUNDS rounds; every system runs once per round, in
 * an order that rotates each round, so machine noise hits all alike. Reported: the median rate
 * of each system and the median of the per-round ratios.
 *
 *   npm run bench:durable                     # prints and writes bench/RESULTS-durable.md
 *   npx tsx bench/durable.bench.ts --no-write --only bulwark-pg,pg-boss-4x50 --rounds 1
 *
 * Isolation: PostgreSQL schemas `qperf_bench_<random>` / `qperf_pgboss_<random>` (dropped at the
 * end), SQLite files in a temp dir, BullMQ keys under the prefix `qperf-<random>` (deleted by SCAN
 * at the end; never FLUSHALL).
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { type PostgresQueueStore, postgresStore } from '../dist/durable/postgres-store.js';
import { openQueue, type Queue } from '../dist/durable/queue.js';
import { type SqliteStore, sqliteStore } from '../dist/durable/sqlite-store.js';

const { values: args } = parseArgs({
  options: {
    'no-write': { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    jobs: { type: 'string', default: '10000' },
  },
});
const write = !args['no-write'];
const ROUNDS = Number(args.rounds);
const N = Number(args.jobs);
const PRODUCERS = 64;
const CONCURRENCY = 200;
const POOL = 10;
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const PAYLOAD = { data: randomBytes(123).toString('hex').slice(0, 245) }; // {"data":"…"} = 256 bytes
type Payload = typeof PAYLOAD;
if (Buffer.byteLength(JSON.stringify(PAYLOAD)) !== 256) throw new Error('payload is not 256 bytes');
const tag = randomBytes(4).toString('hex');
const OUR_SCHEMA = `qperf_bench_${tag}`;
const BOSS_SCHEMA = `qperf_pgboss_${tag}`;
const PREFIX = `qperf-${tag}`;
const redisConnection = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };

interface Pass {
  readonly enqueuePerSec: number;
  readonly processPerSec: number;
}
interface System {
  readonly id: string;
  readonly label: string;
  /** One pass of `n` jobs in a fresh queue named after `round`. */
  readonly pass: (n: number, round: string) => Promise<Pass>;
}

async function lanes(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        await op(i);
      }
    }),
  );
  return performance.now() - t0;
}

function rate(n: number, ms: number): number {
  return (n * 1000) / ms;
}

// ---------------- Bulwark (both stores) ----------------

async function bulwarkPass(q: Queue<Payload>, n: number): Promise<Pass> {
  const enqMs = await lanes(n, PRODUCERS, () => q.enqueue(PAYLOAD));
  let handled = 0;
  const t0 = performance.now();
  const w = q.work(
    (job) => {
      if (job.payload.data.length > 0) handled++;
    },
    { concurrency: CONCURRENCY, pollMs: 50 },
  );
  // `stats.completed` counts acks whose commit returned; polled every 2 ms (no per-item listener).
  while (w.stats.completed < n) await new Promise((r) => setTimeout(r, 2));
  const procMs = performance.now() - t0;
  await w.stop();
  const st = await q.stats();
  if (handled < n || st.completed !== n) throw new Error(`${q.name}: ${st.completed} of ${n} completed`);
  return { enqueuePerSec: rate(n, enqMs), processPerSec: rate(n, procMs) };
}

function bulwarkPg(store: PostgresQueueStore, id: string, label: string): System {
  return {
    id,
    label,
    pass: async (n, round) => {
      // Queues are not closed between passes (closing the last one would close the shared store).
      const q = await openQueue<Payload>({ name: `${id}_${round}`, store, statsIntervalMs: 0 });
      return bulwarkPass(q, n);
    },
  };
}

function bulwarkSqlite(dir: string, asyncAcks: boolean, id: string, label: string): System {
  return {
    id,
    label,
    pass: async (n, round) => {
      const store: SqliteStore = sqliteStore({ path: join(dir, `${id}-${round}.db`), asyncAcks });
      const q = await openQueue<Payload>({ name: `${id}_${round}`, store, statsIntervalMs: 0 });
      try {
        return await bulwarkPass(q, n);
      } finally {
        await q.close();
      }
    },
  };
}

// ---------------- pg-boss ----------------

function pgBoss(boss: PgBoss, loops: number, batch: number): System {
  return {
    id: `pg-boss-${loops}x${batch}`,
    label: `pg-boss ${loops} loops × fetch(batchSize ${batch}) + complete(ids)`,
    pass: async (n, round) => {
      const q = `p${loops}x${batch}_${round}`;
      await boss.createQueue(q);
      const enqMs = await lanes(n, PRODUCERS, () => boss.send(q, PAYLOAD));
      let completed = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: loops }, async () => {
          for (;;) {
            const jobs = await boss.fetch<Payload>(q, { batchSize: batch });
            if (jobs === null || jobs.length === 0) return;
            for (const j of jobs) if (j.data.data.length === 0) throw new Error('bad payload');
            await boss.complete(
              q,
              jobs.map((j) => j.id),
            );
            completed += jobs.length;
          }
        }),
      );
      const procMs = performance.now() - t0;
      if (completed !== n) throw new Error(`pg-boss: ${completed} of ${n} completed`);
      return { enqueuePerSec: rate(n, enqMs), processPerSec: rate(n, procMs) };
    },
  };
}

// ---------------- BullMQ ----------------

function bullmq(): System {
  return {
    id: 'bullmq',
    label: `BullMQ Worker (concurrency ${CONCURRENCY}, removeOnComplete)`,
    pass: async (n, round) => {
      const name = `q-${round}`;
      const queue = new BullQueue(name, {
        connection: redisConnection,
        prefix: PREFIX,
        defaultJobOptions: { removeOnComplete: true, removeOnFail: 1000 },
      });
      await queue.waitUntilReady();
      const enqMs = await lanes(n, PRODUCERS, () => queue.add('job', PAYLOAD));
      let completed = 0;
      let done!: () => void;
      const finished = new Promise<void>((r) => {
        done = r;
      });
      const t0 = performance.now();
      const worker = new BullWorker<Payload>(
        name,
        async (job) => {
          if (job.data.data.length === 0) throw new Error('bad payload');
        },
        { connection: redisConnection, prefix: PREFIX, concurrency: CONCURRENCY },
      );
      worker.on('completed', () => {
        if (++completed === n) done();
      });
      await finished;
      const procMs = performance.now() - t0;
      await worker.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      return { enqueuePerSec: rate(n, enqMs), processPerSec: rate(n, procMs) };
    },
  };
}

async function cleanupRedis(): Promise<number> {
  const c = new Redis({ host: '127.0.0.1', port: 6379 });
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await c.scan(cursor, 'MATCH', `${PREFIX}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await c.del(...keys);
  } while (cursor !== '0');
  c.disconnect();
  return deleted;
}

// ---------------- report ----------------

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function k(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(1)} k` : x.toFixed(0);
}

function pkg(name: string): string {
  const root = fileURLToPath(new URL('..', import.meta.url));
  return (
    JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
  ).version;
}

async function main(): Promise<void> {
  const only = args.only?.split(',');
  const dir = mkdtempSync(join(tmpdir(), 'qperf-bench-'));
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  admin.on('error', () => {});
  const pgVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v"))
    .rows[0]!.v;
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
  const aof = ((await redis.config('GET', 'appendonly')) as string[])[1] ?? '?';
  redis.disconnect();
  const fast = postgresStore({ connectionString: PG_URL, schema: OUR_SCHEMA, poolSize: POOL });
  const sync = postgresStore({
    connectionString: PG_URL,
    schema: OUR_SCHEMA,
    poolSize: POOL,
    asyncAcks: false,
  });
  await fast.init();
  const boss = new PgBoss({
    connectionString: PG_URL,
    schema: BOSS_SCHEMA,
    max: POOL,
    supervise: false,
    schedule: false,
  });
  boss.on('error', (e: unknown) => console.error('pg-boss error', e));
  await boss.start();
  const all: System[] = [
    bulwarkPg(fast, 'bulwark-pg', 'Bulwark PostgreSQL (defaults: asyncAcks on)'),
    pgBoss(boss, 4, 50),
    bulwarkSqlite(dir, true, 'bulwark-sqlite', 'Bulwark SQLite (defaults: FULL, asyncAcks on)'),
    bullmq(),
    bulwarkPg(sync, 'bulwark-pg-sync', 'Bulwark PostgreSQL, asyncAcks: false'),
    pgBoss(boss, 8, 25),
    bulwarkSqlite(dir, false, 'bulwark-sqlite-sync', 'Bulwark SQLite, asyncAcks: false'),
  ];
  const systems = all.filter((s) => only === undefined || only.includes(s.id));
  const load0 = loadavg();
  const passes = new Map<string, Pass[]>(systems.map((s) => [s.id, []]));
  try {
    console.log(`warm-up (2 000 jobs each)…`);
    for (const s of systems) await s.pass(2000, 'warm');
    for (let r = 0; r < ROUNDS; r++) {
      const order = systems.map((_, i) => systems[(i + r) % systems.length]!);
      for (const s of order) {
        const p = await s.pass(N, `r${r}`);
        passes.get(s.id)!.push(p);
        console.log(
          `round ${r + 1}: ${s.id}: enqueue ${k(p.enqueuePerSec)}/s, process ${k(p.processPerSec)}/s`,
        );
      }
    }
  } finally {
    await boss.stop({ graceful: false, wait: true }).catch(() => {});
    await fast.dropSchema().catch(() => {});
    await fast.close();
    await sync.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${BOSS_SCHEMA}" CASCADE`).catch(() => {});
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
    console.log(`cleaned up ${await cleanupRedis()} BullMQ keys under ${PREFIX}`);
  }
  const load1 = loadavg();
  const proc = (id: string) => passes.get(id)?.map((p) => p.processPerSec) ?? [];
  const med = (id: string) => median(proc(id));
  // pg-boss's best shape: the higher median.
  const bossIds = systems.map((s) => s.id).filter((id) => id.startsWith('pg-boss'));
  const bossBest = bossIds.sort((a, b) => med(b) - med(a))[0];
  const labelOf = (id: string) => systems.find((s) => s.id === id)?.label ?? id;
  const ratioRows: string[] = [];
  const ratio = (ours: string, theirs: string | undefined, goal: number | undefined) => {
    if (theirs === undefined || !passes.has(ours) || !passes.has(theirs)) return;
    const a = proc(ours);
    const b = proc(theirs);
    const perRound = a.map((x, i) => x / b[i]!);
    const r = median(perRound);
    const g = goal === undefined ? '—' : `≥ ${goal}×`;
    const met = goal === undefined ? '—' : r >= goal ? 'yes' : '**no**';
    ratioRows.push(
      `| ${labelOf(ours)} | ${labelOf(theirs)} | ${k(med(ours))}/s | ${k(med(theirs))}/s | ${r.toFixed(2)}× (${perRound.map((x) => x.toFixed(2)).join(', ')}) | ${g} | ${met} |`,
    );
  };
  ratio('bulwark-pg', bossBest, 3);
  ratio('bulwark-pg', 'bullmq', 1.5);
  ratio('bulwark-sqlite', 'bullmq', 3);
  ratio('bulwark-pg-sync', bossBest, undefined);
  ratio('bulwark-pg-sync', 'bullmq', undefined);
  ratio('bulwark-sqlite-sync', 'bullmq', undefined);
  const ratios = [
    '| Ours | Theirs | Ours (median) | Theirs (median) | Ratio: median of per-round ratios (rounds) | Goal | Met |',
    '|---|---|---:|---:|---|---:|:---:|',
    ...ratioRows,
  ].join('\n');
  const perSystem = [
    '| System | process, median | process per round | enqueue (64 producers), median |',
    '|---|---:|---|---:|',
    ...systems.map((s) => {
      const ps = passes.get(s.id)!;
      return `| ${s.label} | ${k(med(s.id))}/s | ${ps.map((p) => k(p.processPerSec)).join(', ')} | ${k(median(ps.map((p) => p.enqueuePerSec)))}/s |`;
    }),
  ].join('\n');
  console.log(`\n${ratios}\n\n${perSystem}\n`);
  if (!write) return;
  const cpu = cpus();
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  const md = `# Benchmark results: durable queue throughput (issue 15, acceptance 5)

\`bench/durable.bench.ts\` (\`npm run bench:durable\`), one run, all systems in one process.

Workload: ${N} small jobs (a JSON object of 256 bytes) enqueued by ${PRODUCERS} concurrent producers
(each awaits one call at a time), then a no-op handler (it reads the payload) at concurrency
${CONCURRENCY}; the processing time runs from the worker's start until every completion is
acknowledged (Bulwark: the ack's commit returned; pg-boss: \`complete\` returned; BullMQ: its
\`completed\` event). One warm-up round of 2 000 jobs each, then ${ROUNDS} rounds, each system once per
round in an order rotating each round; a fresh queue per pass.

- Bulwark PostgreSQL: \`postgresStore\` (pool ${POOL}), \`queue.work(handler, { concurrency: ${CONCURRENCY} })\`. Defaults:
  \`asyncAcks: true\` (claims and acks commit without waiting for the WAL flush — a database
  *server* crash can only make an item run again; enqueues always wait for the flush).
- Bulwark SQLite: \`sqliteStore\` (WAL, \`synchronous = FULL\`; default \`asyncAcks: true\`: claims and
  acks commit with \`synchronous = NORMAL\`, enqueues, failures and dead letters with FULL), same worker.
- pg-boss: its fastest processing path here, loops of \`fetch({ batchSize })\` + \`complete(ids)\`,
  200 jobs in flight; two shapes (4 × 50, 8 × 25), ratios against the faster one's median
  (**${bossBest === undefined ? '—' : labelOf(bossBest)}**). Its \`work()\` is bound by its polling interval
  (≥ 0.5 s): ~0.4 k/s (RESULTS-durable-pg.md). Same PostgreSQL, pool ${POOL}, synchronous_commit on.
- BullMQ: \`Worker\` with concurrency ${CONCURRENCY}, \`removeOnComplete: true, removeOnFail: 1000\`, on Redis
  with \`appendonly ${aof}\` (an acknowledged \`add\` is in memory only).

- Date: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC
- Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}; PostgreSQL and Redis on the same host
- Versions: PostgreSQL ${pgVersion}, pg ${pkg('pg')}, pg-boss ${pkg('pg-boss')}, better-sqlite3 ${pkg('better-sqlite3')}, bullmq ${pkg('bullmq')}, ioredis ${pkg('ioredis')}, Redis ${redisVersion}
- Load average (1 / 5 / 15 min) before: ${la(load0)}; after: ${la(load1)}

## Ratios (processing)

${ratios}

## Per system

${perSystem}
`;
  writeFileSync(fileURLToPath(new URL('./RESULTS-durable.md', import.meta.url)), md);
  console.log('wrote bench/RESULTS-durable.md');
}

await main();
