/**
 * The sync server on PostgreSQL against the floor a sync server can reach: plain batched INSERTs
 * of the same rows (issue 17, acceptance 3). Same database (`test`), fresh schemas (dropped at
 * the end), same rows (a record `note/<i>` with three short fields), same batch size, one
 * process, interleaved rounds, medians.
 *
 *   npx tsx bench/sync.bench.ts              # prints and writes bench/RESULTS-sync.md
 *   npx tsx bench/sync.bench.ts --no-write   # prints only
 *
 * - insert (the floor): one `INSERT … SELECT FROM unnest(…)` per batch of B rows into a table
 *   with the columns of the sync server's `records` (entity, id, fields jsonb, stamps jsonb,
 *   deleted, version, cursor), autocommit.
 * - push: `server.push(client, { ops })` with B new-record operations per call (one transaction:
 *   advisory lock, one read of the records with their idempotency marks, merge, one upsert).
 * - push-update: the same records edited again (every op meets an existing record: the merge path).
 * - pull: `server.pull(client, { cursor, limit: B })` page by page over all N records.
 * Ratios are operations (or records) per second over the insert floor's rows per second.
 */

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import pg from 'pg';
import { postgresSyncStore, type SyncOperation, type SyncServer, syncServer } from '../dist/sync/index.js';

const write = !process.argv.includes('--no-write');
const URL_ = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROUNDS = 3;
const N = 10_000;
const B = 500;
const suffix = randomBytes(4).toString('hex');
const log = (s: string) => console.log(s);

const pool = new pg.Pool({ connectionString: URL_, max: 4 });
pool.on('error', () => {});

function fieldsOf(i: number, r: number): Record<string, unknown> {
  return { title: `note ${i} round ${r}`, body: `body of note ${i}`.padEnd(64, '.'), tag: i % 7 };
}

function stamp(ms: number, counter: number): string {
  return `${ms.toString(16).padStart(12, '0')}-${counter.toString(16).padStart(4, '0')}-bench`;
}

async function insertFloor(schema: string, r: number): Promise<number> {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await pool.query(`CREATE TABLE "${schema}".rows (entity text NOT NULL, id text NOT NULL, fields jsonb NOT NULL, stamps jsonb NOT NULL,
    deleted text, version bigint NOT NULL, cursor bigint NOT NULL, PRIMARY KEY (entity, id))`);
  await pool.query(`CREATE INDEX ON "${schema}".rows (cursor)`);
  const now = Date.now();
  const t0 = performance.now();
  for (let start = 0; start < N; start += B) {
    const ids: string[] = [];
    const fields: string[] = [];
    const stamps: string[] = [];
    const versions: number[] = [];
    const cursors: number[] = [];
    for (let i = start; i < start + B; i++) {
      ids.push(`n${i}`);
      const f = fieldsOf(i, r);
      fields.push(JSON.stringify(f));
      const st = stamp(now, i % 65_000);
      stamps.push(JSON.stringify(Object.fromEntries(Object.keys(f).map((k) => [k, st]))));
      versions.push(1);
      cursors.push(i + 1);
    }
    await pool.query(
      `INSERT INTO "${schema}".rows (entity, id, fields, stamps, deleted, version, cursor)
       SELECT 'note', i, f::jsonb, s::jsonb, NULL, v, c FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS t(i, f, s, v, c)`,
      [ids, fields, stamps, versions, cursors],
    );
  }
  return performance.now() - t0;
}

function opsFor(start: number, r: number, round2: boolean, base: number): SyncOperation[] {
  const ops: SyncOperation[] = [];
  for (let i = start; i < start + B; i++) {
    ops.push({
      opId: `${r}-${round2 ? 'u' : 'c'}-${i}-${suffix}`,
      clientId: 'bench',
      entity: 'note',
      id: `n${i}`,
      kind: 'put',
      fields: fieldsOf(i, round2 ? r + 100 : r),
      base: round2 ? fieldsOf(i, r) : {},
      baseVersion: round2 ? 1 : 0,
      hlc: stamp(base + (round2 ? 1 : 0), i % 65_000),
      priority: 'normal',
      seq: (round2 ? N : 0) + i + 1,
    });
  }
  return ops;
}

async function pushAll(server: SyncServer, r: number, update: boolean, base: number): Promise<number> {
  const t0 = performance.now();
  for (let start = 0; start < N; start += B)
    await server.push('bench', { ops: opsFor(start, r, update, base) });
  return performance.now() - t0;
}

async function pullAll(server: SyncServer): Promise<{ ms: number; records: number }> {
  const t0 = performance.now();
  let cursor = 0;
  let records = 0;
  for (;;) {
    const page = await server.pull('bench', { cursor, limit: B });
    records += page.changes.length;
    cursor = page.cursor;
    if (!page.hasMore) break;
  }
  return { ms: performance.now() - t0, records };
}

const results: Record<string, number[]> = { insert: [], push: [], 'push-update': [], pull: [] };
const schemas: string[] = [];
const load0 = loadavg()[0]!;
for (let r = 0; r < ROUNDS; r++) {
  const floorSchema = `bench_sync_floor_${suffix}_${r}`;
  schemas.push(floorSchema);
  results.insert!.push((N / (await insertFloor(floorSchema, r))) * 1000);

  const schema = `bench_sync_${suffix}_${r}`;
  schemas.push(schema);
  const server = syncServer({ store: postgresSyncStore({ pool, schema }), maxBatch: B, maxPage: B });
  await server.store.init();
  const base = Date.now();
  results.push!.push((N / (await pushAll(server, r, false, base))) * 1000);
  results['push-update']!.push((N / (await pushAll(server, r, true, base))) * 1000);
  const p = await pullAll(server);
  if (p.records !== N) throw new Error(`pulled ${p.records} records, expected ${N}`);
  results.pull!.push((N / p.ms) * 1000);
  log(
    `round ${r + 1}: ${Object.entries(results)
      .map(([k, v]) => `${k} ${Math.round(v[r]!)}/s`)
      .join(', ')}`,
  );
}
for (const s of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
const pgVersion = (await pool.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v.split(' on ')[0];
await pool.end();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const floor = median(results.insert!);
const rows = Object.entries(results).map(([k, v]) => ({
  k,
  med: median(v),
  all: v,
  ratio: median(v) / floor,
}));
const table = [
  '| case | median ops/s | rounds | vs plain batched INSERT |',
  '|---|---:|---|---:|',
  ...rows.map(
    (x) =>
      `| ${x.k} | ${Math.round(x.med)} | ${x.all.map((v) => Math.round(v)).join(' / ')} | ${x.ratio.toFixed(2)}× |`,
  ),
].join('\n');
log(table);
const targets = ['push', 'pull'].map((k) => {
  const ratio = rows.find((x) => x.k === k)!.ratio;
  return `- ${k}: ${ratio.toFixed(2)}× the insert floor — target ≥ 0.5×: ${ratio >= 0.5 ? 'met' : 'NOT met'}`;
});
log(targets.join('\n'));
if (write) {
  const md = `# Benchmark results: sync server on PostgreSQL

\`bench/sync.bench.ts\`: the sync server (\`syncServer\` + \`postgresSyncStore\`, called in-process, no
HTTP) against plain batched INSERTs of the same rows, on the same local PostgreSQL (database
\`test\`, fresh schemas, dropped afterwards). ${N} records, batches and pages of ${B}, ${ROUNDS}
interleaved rounds, medians.

- insert (the floor): one \`INSERT … SELECT FROM unnest(…)\` per ${B} rows into a table with the
  record's columns (entity, id, fields and stamps as jsonb, deleted, version, cursor; primary key
  (entity, id) and a cursor index), autocommit. The server's table has three more columns
  (\`key\`, \`deleted_at\`, \`marks\`).
- push: ${B} new-record operations per \`server.push\` (one transaction:
  advisory lock, one read of the records with their per-client idempotency marks, merge, one upsert).
- push-update: the same records edited again (each operation meets an existing record).
- pull: \`server.pull\` page by page (${B} records per page) over the ${N} records.
- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}; PostgreSQL on the same host
- Versions: ${pgVersion} (default settings), pg ${(await import('pg/package.json', { with: { type: 'json' } })).default.version}
- Load average (1 min) before / after: ${load0.toFixed(2)} / ${loadavg()[0]!.toFixed(2)} (other helpers' test suites share the 2 cores)

${table}

## Targets
${targets.join('\n')}
`;
  writeFileSync(new URL('./RESULTS-sync.md', import.meta.url), md);
}
