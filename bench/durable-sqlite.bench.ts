/**
 * Durable queue throughput: Bulwark's SQLite store (WAL, `synchronous = FULL`) against BullMQ on
 * the local Redis (127.0.0.1:6379). Same payload (~256 bytes of JSON), same enqueue concurrency
 * (64 concurrent `enqueue`/`add` loops), same handler concurrency (a worker with concurrency 8 and
 * a no-op handler). BullMQ is configured as its docs recommend for throughput
 * (`removeOnComplete: true`, `removeOnFail: 1000`); Bulwark keeps completed items (1 day retention).
 *
 *   npx tsx bench/durable-sqlite.bench.ts              # prints and writes bench/RESULTS-durable-sqlite.md
 *   npx tsx bench/durable-sqlite.bench.ts --no-write   # prints only
 *
 * One warm-up pass of each (2 000 jobs), then PASSES measured passes each (N jobs), alternating
 * Bulwark and BullMQ so that machine noise hits both alike; the median of the passes is reported.
 * BullMQ keys use a random prefix and are deleted at the end (never FLUSHALL).
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import { openQueue } from '../dist/durable/queue.js';
import { sqliteStore } from '../dist/durable/sqlite-store.js';

const write = !process.argv.includes('--no-write');
const N = Number(process.env.BENCH_JOBS ?? 20_000);
const ENQUEUE_CONCURRENCY = 64;
const WORK_CONCURRENCY = 8;
const PASSES = Number(process.env.BENCH_PASSES ?? 3);
const PAYLOAD = { kind: 'payment', data: 'x'.repeat(220), n: 0 };
const PREFIX = `bench-bulwark-${randomBytes(6).toString('hex')}`;
const connection = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null };

interface Pass {
  enqueuePerSec: number;
  processPerSec: number;
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

async function bulwarkPass(dir: string, total: number, tag: string): Promise<Pass> {
  const q = await openQueue<typeof PAYLOAD>({
    name: `bench-${tag}`,
    store: sqliteStore({ path: join(dir, `bench-${tag}.db`), synchronous: 'FULL' }),
  });
  const enqMs = await lanes(total, ENQUEUE_CONCURRENCY, (i) => q.enqueue({ ...PAYLOAD, n: i }));
  let done = 0;
  let finished!: () => void;
  const all = new Promise<void>((r) => {
    finished = r;
  });
  const t0 = performance.now();
  const worker = q.work(
    async () => {
      if (++done === total) finished();
    },
    { concurrency: WORK_CONCURRENCY },
  );
  await all;
  // Count the pass as done when the last ack has committed.
  await worker.stop();
  const procMs = performance.now() - t0;
  const s = await q.stats();
  if (s.completed !== total) throw new Error(`bulwark completed ${s.completed} of ${total}`);
  await q.close();
  return { enqueuePerSec: (total * 1000) / enqMs, processPerSec: (total * 1000) / procMs };
}

async function bullPass(total: number, tag: string): Promise<Pass> {
  const name = `bench-${tag}`;
  const queue = new BullQueue(name, {
    connection,
    prefix: PREFIX,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: 1000 },
  });
  await queue.waitUntilReady();
  const enqMs = await lanes(total, ENQUEUE_CONCURRENCY, (i) => queue.add('job', { ...PAYLOAD, n: i }));
  let done = 0;
  let finished!: () => void;
  const all = new Promise<void>((r) => {
    finished = r;
  });
  const t0 = performance.now();
  const worker = new BullWorker(name, async () => {}, {
    connection,
    prefix: PREFIX,
    concurrency: WORK_CONCURRENCY,
  });
  worker.on('completed', () => {
    if (++done === total) finished();
  });
  await all;
  const procMs = performance.now() - t0;
  await worker.close();
  await queue.close();
  return { enqueuePerSec: (total * 1000) / enqMs, processPerSec: (total * 1000) / procMs };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function medianPass(xs: Pass[]): Pass {
  return {
    enqueuePerSec: median(xs.map((x) => x.enqueuePerSec)),
    processPerSec: median(xs.map((x) => x.processPerSec)),
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

function k(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(1)} k` : n.toFixed(0);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-bench-'));
  const load0 = loadavg()[0]!;
  const oursAll: Pass[] = [];
  const theirsAll: Pass[] = [];
  try {
    console.log(`warm-up (2 000 jobs each)…`);
    await bulwarkPass(dir, 2000, 'warm');
    await bullPass(2000, 'warm');
    for (let p = 0; p < PASSES; p++) {
      console.log(`measured pass ${p + 1}/${PASSES} (${N} jobs each)…`);
      oursAll.push(await bulwarkPass(dir, N, `run${p}`));
      theirsAll.push(await bullPass(N, `run${p}`));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    const deleted = await cleanupRedis();
    console.log(`cleaned up ${deleted} BullMQ keys under ${PREFIX}`);
  }
  const load1 = loadavg()[0]!;
  const ours = medianPass(oursAll);
  const theirs = medianPass(theirsAll);
  const passes = (xs: Pass[], key: keyof Pass) => xs.map((x) => k(x[key])).join(', ');
  const rows = [
    ['enqueue (64 concurrent)', ours.enqueuePerSec, theirs.enqueuePerSec],
    [
      `process (worker concurrency ${WORK_CONCURRENCY}, no-op handler)`,
      ours.processPerSec,
      theirs.processPerSec,
    ],
  ] as const;
  const table = [
    '| Operation | Bulwark SQLite (FULL) jobs/s | BullMQ (Redis) jobs/s | Ratio | Goal | Met |',
    '|---|---:|---:|---:|---:|:---:|',
    ...rows.map(([label, a, b]) => {
      const ratio = a / b;
      return `| ${label} | ${k(a)} | ${k(b)} | ${ratio.toFixed(2)}× | ≥ 1.0× | ${ratio >= 1 ? 'yes' : '**no**'} |`;
    }),
  ].join('\n');
  console.log(`\n${table}\n`);
  console.log(
    `per pass: bulwark enqueue ${passes(oursAll, 'enqueuePerSec')} | bullmq enqueue ${passes(theirsAll, 'enqueuePerSec')}`,
  );
  console.log(
    `per pass: bulwark process ${passes(oursAll, 'processPerSec')} | bullmq process ${passes(theirsAll, 'processPerSec')}`,
  );
  if (!write) return;
  const root = fileURLToPath(new URL('..', import.meta.url));
  const pkg = (name: string) =>
    (
      JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  const redisInfo = new Redis({ host: '127.0.0.1', port: 6379 });
  const info = await redisInfo.info('server');
  const persistence = await redisInfo.config('GET', 'appendonly');
  redisInfo.disconnect();
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
  const doc = `# Benchmark results: durable queue on SQLite vs BullMQ

\`bench/durable-sqlite.bench.ts\`, one run. Bulwark \`openQueue\` on \`sqliteStore\` (WAL,
\`synchronous = FULL\` for enqueues: a resolved enqueue is on disk; claims and acks use
\`asyncAcks\`, the default) against BullMQ \`Queue\`/\`Worker\` on the local Redis, in one process.
Same payload (~256 bytes of JSON), ${N} jobs per pass, ${PASSES} alternating passes (median reported), enqueue by 64 concurrent loops of
\`enqueue\`/\`add\`, processing by one worker with concurrency ${WORK_CONCURRENCY} and a no-op handler. BullMQ
with \`removeOnComplete: true, removeOnFail: 1000\` (its docs' advice for throughput); Bulwark keeps
completed items (retention 1 day). One warm-up pass of 2 000 jobs each first. Load average is
the machine's (shared with other jobs).

Note on durability: Redis here runs with \`appendonly ${String((persistence as string[])[1])}\`, so an
acknowledged BullMQ \`add\` is in memory only until the next snapshot; a Bulwark enqueue is fsynced
before it resolves.

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}
- Versions: better-sqlite3 ${pkg('better-sqlite3')}, bullmq ${pkg('bullmq')}, ioredis ${pkg('ioredis')}, Redis ${redisVersion}
- Load average (1 min) before / after: ${load0.toFixed(2)} / ${load1.toFixed(2)}

${table}

Per pass (jobs/s, in order): Bulwark enqueue ${passes(oursAll, 'enqueuePerSec')}; BullMQ enqueue
${passes(theirsAll, 'enqueuePerSec')}; Bulwark process ${passes(oursAll, 'processPerSec')}; BullMQ process
${passes(theirsAll, 'processPerSec')}. The machine is shared with other jobs, so single passes vary
by 2-3×; the medians of alternating passes are the figures above.
`;
  writeFileSync(join(root, 'bench', 'RESULTS-durable-sqlite.md'), doc);
  console.log('wrote bench/RESULTS-durable-sqlite.md');
}

await main();
