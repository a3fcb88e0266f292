/**
 * The durable queue on PostgreSQL: Bulwark's `postgresStore` (through `openQueue`, and the store
 * alone) against pg-boss 10.4.2, on the same local PostgreSQL (database `test`, a fresh schema
 * each, dropped at the end), same payload (a JSON object of 256 bytes), same pool size, same
 * concurrency, in one process.
 *
 *   npx tsx bench/durable-pg.bench.ts              # prints and writes bench/RESULTS-durable-pg.md
 *   npx tsx bench/durable-pg.bench.ts --no-write   # prints only
 *
 * Enqueue: P producers each await one call at a time (1 item per call, and 100 per call).
 * Processing: N items are enqueued first (not timed); then W workers × B items per round trip run
 * a no-op handler (read the payload) and complete; the clock stops when every item is completed.
 * - Bulwark: `queue.work()` with concurrency W×B (its own loop: one claim for all free slots; the
 *   store merges completes in flight into one statement), and the store alone (W loops of
 *   `claim(B)` + `complete(batch)`), each with `asyncAcks` on (default) and off.
 * - pg-boss: W loops of `fetch({ batchSize: B })` + `complete(ids)` (its fastest path), and its
 *   `work()` with W workers × `batchSize: B` at `pollingIntervalSeconds: 0.5` (the minimum), run
 *   once at the end (it is bound by its polling interval, ~50 s).
 * Cases run in interleaved rounds (every case once per round) so machine noise hits all alike;
 * the median of the rounds is reported. Ratios use pg-boss's faster variant.
 */

import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { type PostgresQueueStore, postgresStore } from '../dist/durable/postgres-store.js';
import { openQueue, type Queue } from '../dist/durable/queue.js';
import type { NewItem } from '../dist/durable/store.js';

const write = !process.argv.includes('--no-write');
const URL_ = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROUNDS = 3;
const POOL = 10;
const PRODUCERS = 8;
const ENQ_N = 3000;
const ENQ_BATCH = 100;
const ENQ_BATCH_N = 20_000;
const PROC_N = 10_000;
const WORKERS = 4;
const BATCH = 50;
const PAYLOAD = { data: randomBytes(123).toString('hex').slice(0, 245) }; // {"data":"…"} = 256 bytes
type Payload = typeof PAYLOAD;
const PAYLOAD_BYTES = Buffer.byteLength(JSON.stringify(PAYLOAD));
if (PAYLOAD_BYTES !== 256) throw new Error(`payload is ${PAYLOAD_BYTES} bytes, not 256`);
const suffix = randomBytes(4).toString('hex');
const log = (s: string) => console.log(s);

type Kind = 'enqueue' | 'enqueue-batch' | 'process';
interface Case {
  readonly name: string;
  readonly lib: 'bulwark' | 'pg-boss';
  readonly kind: Kind;
  readonly n: number;
  /** Runs once (round `r`), returns the timed milliseconds. */
  readonly run: (r: number) => Promise<number>;
}
interface Result {
  readonly c: Case;
  readonly rates: number[];
  readonly median: number;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function parallel(n: number, total: number, one: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        await one(i);
      }
    }),
  );
}

async function until(cond: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 5));
}

/** Enqueues PROC_N payloads, 500 per call, 4 at once (not timed). */
async function fill(enqueue: (payloads: Payload[]) => Promise<unknown>): Promise<void> {
  await parallel(4, PROC_N / 500, () => enqueue(Array.from({ length: 500 }, () => PAYLOAD)));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmt(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(1)} k` : x.toFixed(0);
}

const admin = new pg.Pool({ connectionString: URL_, max: 2 });
admin.on('error', () => {});

// ---------------- Bulwark ----------------

let seq = 0;
function newItem(now: number): NewItem {
  seq++;
  return {
    id: `${now.toString(16).padStart(12, '0')}-${String(seq).padStart(10, '0')}-${suffix}`,
    payload: Buffer.from(JSON.stringify(PAYLOAD)),
    keyId: null,
    key: null,
    priority: 0,
    runAt: now,
    maxAttempts: 3,
    createdAt: now,
  };
}

async function queueOn(store: PostgresQueueStore, name: string): Promise<Queue<Payload>> {
  // Queues are not closed between cases (closing the last one would close the store).
  return openQueue<Payload>({ name, store });
}

function bulwarkCases(fast: PostgresQueueStore, sync: PostgresQueueStore): Case[] {
  const processQueue = (store: PostgresQueueStore, label: string): Case => ({
    name: `bulwark queue: work() (concurrency ${WORKERS * BATCH}${label})`,
    lib: 'bulwark',
    kind: 'process',
    n: PROC_N,
    run: async (r) => {
      const q = await queueOn(store, `proc${label === '' ? '' : '_sync'}_${r}`);
      await fill((ps) => q.enqueueMany(ps.map((payload) => ({ payload }))));
      let handled = 0;
      const w = q.work(
        (job) => {
          if (job.payload.data.length > 0) handled++;
        },
        { concurrency: WORKERS * BATCH, pollMs: 50 },
      );
      const ms = await timed(() => until(() => w.stats.completed >= PROC_N));
      await w.stop();
      if (handled < PROC_N || (await q.stats()).completed !== PROC_N)
        throw new Error('bulwark queue: not all completed');
      return ms;
    },
  });
  const processStore = (store: PostgresQueueStore, label: string): Case => ({
    name: `bulwark store: ${WORKERS} loops × claim(${BATCH}) + complete${label}`,
    lib: 'bulwark',
    kind: 'process',
    n: PROC_N,
    run: async (r) => {
      const q = `sproc${label === '' ? '' : '_sync'}_${r}`;
      await fill((ps) =>
        store.enqueue(
          q,
          ps.map(() => newItem(Date.now())),
          Date.now(),
        ),
      );
      const ms = await timed(() =>
        Promise.all(
          Array.from({ length: WORKERS }, async () => {
            for (;;) {
              const batch = await store.claim(q, BATCH, 60_000, Date.now());
              if (batch.length === 0) return;
              for (const it of batch) JSON.parse(Buffer.from(it.payload).toString());
              await store.complete(q, batch, Date.now());
            }
          }),
        ),
      );
      if ((await store.stats(q, Date.now())).completed !== PROC_N)
        throw new Error('bulwark store: not all completed');
      return ms;
    },
  });
  return [
    {
      name: 'bulwark queue: enqueue (1 per call)',
      lib: 'bulwark',
      kind: 'enqueue',
      n: ENQ_N,
      run: async (r) => {
        const q = await queueOn(fast, `enq_${r}`);
        return timed(() => parallel(PRODUCERS, ENQ_N, () => q.enqueue(PAYLOAD)));
      },
    },
    {
      name: `bulwark queue: enqueueMany (${ENQ_BATCH} per call)`,
      lib: 'bulwark',
      kind: 'enqueue-batch',
      n: ENQ_BATCH_N,
      run: async (r) => {
        const q = await queueOn(fast, `enqb_${r}`);
        const entries = Array.from({ length: ENQ_BATCH }, () => ({ payload: PAYLOAD }));
        return timed(() => parallel(PRODUCERS, ENQ_BATCH_N / ENQ_BATCH, () => q.enqueueMany(entries)));
      },
    },
    processQueue(fast, ''),
    processQueue(sync, ', asyncAcks: false'),
    processStore(fast, ''),
    processStore(sync, ', asyncAcks: false'),
  ];
}

// ---------------- pg-boss ----------------

function pgBossCases(boss: PgBoss): Case[] {
  return [
    {
      name: 'pg-boss: send (1 per call)',
      lib: 'pg-boss',
      kind: 'enqueue',
      n: ENQ_N,
      run: async (r) => {
        const q = `enq_${r}`;
        await boss.createQueue(q);
        return timed(() => parallel(PRODUCERS, ENQ_N, () => boss.send(q, PAYLOAD)));
      },
    },
    {
      name: `pg-boss: insert (${ENQ_BATCH} per call)`,
      lib: 'pg-boss',
      kind: 'enqueue-batch',
      n: ENQ_BATCH_N,
      run: async (r) => {
        const q = `enqb_${r}`;
        await boss.createQueue(q);
        return timed(() =>
          parallel(PRODUCERS, ENQ_BATCH_N / ENQ_BATCH, () =>
            boss.insert(Array.from({ length: ENQ_BATCH }, () => ({ name: q, data: PAYLOAD }))),
          ),
        );
      },
    },
    {
      name: `pg-boss: ${WORKERS} loops × fetch(batchSize ${BATCH}) + complete(ids)`,
      lib: 'pg-boss',
      kind: 'process',
      n: PROC_N,
      run: async (r) => {
        const q = `proc_fetch_${r}`;
        await boss.createQueue(q);
        await fill((ps) => boss.insert(ps.map((data) => ({ name: q, data }))));
        const ms = await timed(() =>
          Promise.all(
            Array.from({ length: WORKERS }, async () => {
              for (;;) {
                const jobs = await boss.fetch<Payload>(q, { batchSize: BATCH });
                if (jobs === null || jobs.length === 0) return;
                for (const j of jobs) if (j.data.data.length === 0) throw new Error('bad payload');
                await boss.complete(
                  q,
                  jobs.map((j) => j.id),
                );
              }
            }),
          ),
        );
        return ms;
      },
    },
  ];
}

/** pg-boss's `work()`: once (bound by its polling interval). */
async function pgBossWork(boss: PgBoss, schema: string): Promise<number> {
  const q = 'proc_work';
  await boss.createQueue(q);
  await fill((ps) => boss.insert(ps.map((data) => ({ name: q, data }))));
  const completed = async () => {
    const r = await admin.query<{ n: string }>(
      `SELECT count(*) AS n FROM "${schema}".job WHERE name = $1 AND state = 'completed'`,
      [q],
    );
    return Number(r.rows[0]!.n);
  };
  const ms = await timed(async () => {
    for (let w = 0; w < WORKERS; w++) {
      await boss.work<Payload>(q, { batchSize: BATCH, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        for (const j of jobs) if (j.data.data.length === 0) throw new Error('bad payload');
      });
    }
    await until(async () => (await completed()) >= PROC_N);
  });
  await boss.offWork(q);
  return ms;
}

// ---------------- main ----------------

async function main(): Promise<void> {
  const load0 = loadavg()[0]!;
  const version = (await admin.query<{ v: string }>('SELECT current_setting($$server_version$$) AS v'))
    .rows[0]!.v;
  const ourSchema = `bwbench_ours_${suffix}`;
  const bossSchema = `bwbench_pgboss_${suffix}`;
  const fast = postgresStore({ connectionString: URL_, schema: ourSchema, poolSize: POOL });
  const sync = postgresStore({ connectionString: URL_, schema: ourSchema, poolSize: POOL, asyncAcks: false });
  await fast.init();
  const boss = new PgBoss({
    connectionString: URL_,
    schema: bossSchema,
    max: POOL,
    supervise: false,
    schedule: false,
  });
  boss.on('error', (e: unknown) => console.error('pg-boss error', e));
  await boss.start();
  const results: Result[] = [];
  let workMs = 0;
  try {
    const ours = bulwarkCases(fast, sync);
    const theirs = pgBossCases(boss);
    // Interleave: ours and theirs alternate within a round.
    const cases: Case[] = [];
    for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
      if (ours[i] !== undefined) cases.push(ours[i]!);
      if (theirs[i] !== undefined) cases.push(theirs[i]!);
    }
    const rates = new Map<Case, number[]>(cases.map((c) => [c, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of cases) {
        const ms = await c.run(r);
        const rate = (c.n * 1000) / ms;
        rates.get(c)!.push(rate);
        log(`round ${r + 1}: ${c.name}: ${fmt(rate)}/s`);
      }
    }
    for (const c of cases) results.push({ c, rates: rates.get(c)!, median: median(rates.get(c)!) });
    workMs = await pgBossWork(boss, bossSchema);
    const workRate = (PROC_N * 1000) / workMs;
    log(`pg-boss work(): ${fmt(workRate)}/s`);
    results.push({
      c: {
        name: `pg-boss: work() (${WORKERS} workers × batchSize ${BATCH}, pollingIntervalSeconds 0.5; once)`,
        lib: 'pg-boss',
        kind: 'process',
        n: PROC_N,
        run: async () => 0,
      },
      rates: [workRate],
      median: workRate,
    });
  } finally {
    await boss.stop({ graceful: false, wait: true }).catch(() => {});
    await fast.dropSchema().catch(() => {});
    await fast.close();
    await sync.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${bossSchema}" CASCADE`).catch(() => {});
  }
  const load1 = loadavg()[0]!;

  const get = (lib: Result['c']['lib'], kind: Kind, test: (name: string) => boolean = () => true) =>
    results
      .filter((x) => x.c.lib === lib && x.c.kind === kind && test(x.c.name))
      .sort((a, b) => b.median - a.median)[0];
  const targets: string[] = [];
  const line = (label: string, a: Result | undefined, b: Result | undefined, goal?: number) => {
    if (a === undefined || b === undefined) return;
    const ratio = a.median / b.median;
    const goalText = goal === undefined ? '—' : `≥ ${goal}×`;
    const met = goal === undefined ? '—' : ratio >= goal ? 'yes' : '**no**';
    targets.push(
      `| ${label} | ${fmt(a.median)}/s | ${b.c.name} | ${fmt(b.median)}/s | ${ratio.toFixed(2)}× | ${goalText} | ${met} |`,
    );
  };
  const asyncOn = (n: string) => !n.includes('asyncAcks: false');
  const asyncOff = (n: string) => n.includes('asyncAcks: false');
  const bossProcess = get('pg-boss', 'process');
  line('enqueue, 1 per call (queue.enqueue vs send)', get('bulwark', 'enqueue'), get('pg-boss', 'enqueue'));
  line(
    `enqueue, ${ENQ_BATCH} per call (enqueueMany vs insert)`,
    get('bulwark', 'enqueue-batch'),
    get('pg-boss', 'enqueue-batch'),
  );
  line(
    '**process, through the queue (defaults)**',
    get('bulwark', 'process', (n) => n.startsWith('bulwark queue') && asyncOn(n)),
    bossProcess,
    3,
  );
  line(
    'process, through the queue, asyncAcks: false',
    get('bulwark', 'process', (n) => n.startsWith('bulwark queue') && asyncOff(n)),
    bossProcess,
  );
  line(
    'process, store alone (defaults)',
    get('bulwark', 'process', (n) => n.startsWith('bulwark store') && asyncOn(n)),
    bossProcess,
  );
  line(
    'process, store alone, asyncAcks: false',
    get('bulwark', 'process', (n) => n.startsWith('bulwark store') && asyncOff(n)),
    bossProcess,
  );
  const table = [
    '| Comparison | Bulwark (median) | pg-boss case (its faster variant) | pg-boss (median) | Ratio | Goal | Met |',
    '|---|---:|---|---:|---:|---:|:---:|',
    ...targets,
  ].join('\n');
  const all = [
    '| Case | items per run | median items/s | rounds (items/s) |',
    '|---|---:|---:|---|',
    ...results.map((x) => `| ${x.c.name} | ${x.c.n} | ${fmt(x.median)} | ${x.rates.map(fmt).join(', ')} |`),
  ].join('\n');
  console.log(`\n${table}\n\n${all}\n`);
  if (!write) return;
  const pkg = (name: string) =>
    (
      JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as {
        version: string;
      }
    ).version;
  const cpu = cpus();
  const md = `# Benchmark results: durable queue on PostgreSQL

Bulwark \`postgresStore\` (through \`openQueue\`, and the store alone) against pg-boss on the same
local PostgreSQL (database \`test\`, a fresh schema each, dropped afterwards), same payload (a JSON
object of ${PAYLOAD_BYTES} bytes), same pool size (${POOL}), one process (\`bench/durable-pg.bench.ts\`).
Cases run in ${ROUNDS} interleaved rounds (Bulwark and pg-boss alternate); medians are reported.

- Enqueue: ${PRODUCERS} concurrent producers, each awaiting one call at a time: ${ENQ_N} items one per
  call, ${ENQ_BATCH_N} items ${ENQ_BATCH} per call.
- Processing: ${PROC_N} items enqueued first (not timed); then ${WORKERS} workers × ${BATCH} items per round trip
  (Bulwark's \`work()\`: concurrency ${WORKERS * BATCH}) run a no-op handler that reads the payload; the time
  ends when every item is completed. pg-boss: ${WORKERS} loops of \`fetch({ batchSize: ${BATCH} })\` +
  \`complete(ids)\` (its fastest path), and once its \`work()\` (${WORKERS} workers, \`batchSize: ${BATCH}\`,
  \`pollingIntervalSeconds: 0.5\`, the minimum: each worker fetches at most once per interval unless
  notified in-process). Ratios use pg-boss's faster variant.
- Bulwark's \`work()\` claims for all free slots in one statement; the store merges completes (and
  concurrent enqueues) of one queue that arrive while one is in flight into one statement.
- Bulwark defaults: \`asyncAcks: true\` (claims, completes and lease extensions commit without
  waiting for the WAL flush — a *database server* crash can only make items run again; enqueues
  always wait for the flush) and a NOTIFY after each enqueue commit (coalesced). Rows with
  \`asyncAcks: false\` wait for the flush on every statement, as pg-boss does.
- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}; PostgreSQL on the same host
- Versions: PostgreSQL ${version} (default settings: synchronous_commit on, fsync on), pg ${pkg('pg')}, pg-boss ${pkg('pg-boss')}
- Load average (1 min) before / after: ${load0.toFixed(2)} / ${load1.toFixed(2)} — other processes
  (parallel test suites) shared the 2 cores during the run, so single figures are noisy; compare
  the rounds.

## Targets

${table}

## All cases

${all}
`;
  writeFileSync(fileURLToPath(new URL('./RESULTS-durable-pg.md', import.meta.url)), md);
  console.log('wrote bench/RESULTS-durable-pg.md');
}

try {
  await main();
} finally {
  await admin.end();
}
