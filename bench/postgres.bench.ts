/**
 * `withTransaction` overhead: a transaction of one `SELECT 1` through `withTransaction(pool, …)`
 * against the same written by hand (connect, BEGIN, query, COMMIT, release) on the same pg Pool,
 * in one process, interleaved rounds, the median of each. Appends its section to
 * bench/RESULTS-postgres.md (run bench/backup.bench.ts first to write the file afresh).
 *
 *   npx tsx bench/postgres.bench.ts [--no-write]
 */

import { appendFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { withTransaction } from '../src/postgres/transaction.js';

const write = !process.argv.includes('--no-write');
const URL_ = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROUNDS = 7;
const PER_ROUND = 1_500;
const CONCURRENCY = 4;
const log = (s: string) => console.log(s);

const pool = new pg.Pool({ connectionString: URL_, max: CONCURRENCY });
pool.on('error', () => {});

async function handWritten(): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT 1');
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

function bulwark(): Promise<unknown> {
  return withTransaction(pool, (tx) => tx.query('SELECT 1'));
}

async function timed(fn: () => Promise<unknown>, n: number): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < n) await fn();
    }),
  );
  return ((performance.now() - start) * 1000) / n; // µs per transaction
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

await timed(handWritten, 300);
await timed(bulwark, 300);
const hand: number[] = [];
const ours: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  // Alternate the order each round so neither side always runs first.
  if (r % 2 === 0) {
    hand.push(await timed(handWritten, PER_ROUND));
    ours.push(await timed(bulwark, PER_ROUND));
  } else {
    ours.push(await timed(bulwark, PER_ROUND));
    hand.push(await timed(handWritten, PER_ROUND));
  }
  log(
    `round ${r + 1}/${ROUNDS}: hand ${hand.at(-1)!.toFixed(0)} µs, withTransaction ${ours.at(-1)!.toFixed(0)} µs`,
  );
}
await pool.end();
const h = median(hand);
const o = median(ours);
const ratio = o / h;
const section = `
## withTransaction overhead (one \`SELECT 1\` per transaction, ${CONCURRENCY} concurrent, pool of ${CONCURRENCY})

| case | µs per transaction (median of ${ROUNDS} rounds × ${PER_ROUND}) | ratio |
|---|---|---|
| hand-written connect + BEGIN + SELECT 1 + COMMIT + release | ${h.toFixed(0)} | 1.00× |
| \`withTransaction(pool, (tx) => tx.query('SELECT 1'))\` (default retry policy) | ${o.toFixed(0)} | ${ratio.toFixed(3)}× |

Target: <= 1.05×. Rounds (µs): hand ${hand.map((x) => x.toFixed(0)).join(', ')}; withTransaction ${ours.map((x) => x.toFixed(0)).join(', ')}.
`;
log(section);
const out = fileURLToPath(new URL('./RESULTS-postgres.md', import.meta.url));
if (write) {
  if (!existsSync(out)) appendFileSync(out, '# PostgreSQL resilience and backups: benchmark results\n');
  appendFileSync(out, section);
}
