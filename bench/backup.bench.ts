/**
 * `bulwark backup create` of a ~1 GB PostgreSQL database against plain `pg_dump -Fc` of the same
 * database, in one run, alternating (A B B A …), each as a child process timed end to end; then
 * `bulwark backup verify` (restore into a scratch database, compare every table) timed once.
 * The database `bw_bench_backup` is generated with generate_series and dropped at the end
 * (BENCH_KEEP=1 keeps it for the next run). Writes bench/RESULTS-postgres.md afresh (the
 * withTransaction bench appends to it).
 *
 *   BENCH_BACKUP_MB=1024 npx tsx bench/backup.bench.ts [--no-write]
 */

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pgTool, toolVersion, withDatabase } from '../dist/backup/pg-tools.js';

const write = !process.argv.includes('--no-write');
const SERVER = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DB = 'bw_bench_backup';
const MB = Number(process.env.BENCH_BACKUP_MB ?? 1024);
const RUNS = Number(process.env.BENCH_BACKUP_RUNS ?? 2); // per side
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const url = withDatabase(SERVER, DB);
const log = (s: string) => console.error(s);

async function sql(db: string, text: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: withDatabase(SERVER, db) });
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

/** Bundles the CLI entry once (as the tests do), so a child starts in ~0.2 s. */
async function cliEntry(): Promise<string> {
  const esbuild = (await import('esbuild')) as { build(o: Record<string, unknown>): Promise<unknown> };
  const out = `${ROOT}.tmp/bench-cli-${process.pid}.mjs`;
  mkdirSync(`${ROOT}.tmp`, { recursive: true });
  await esbuild.build({
    entryPoints: [`${ROOT}test/fixtures/bulwark-cli.ts`],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: out,
    packages: 'external',
    logLevel: 'silent',
  });
  return out;
}

function timedRun(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
    child.on('close', (code) =>
      code === 0 ? resolve((performance.now() - start) / 1000) : reject(new Error(`${cmd} failed: ${err}`)),
    );
  });
}

// 1. The database: ~MB of table data.
const exists = (await sql('postgres', `SELECT 1 FROM pg_database WHERE datname = '${DB}'`)).rowCount === 1;
const rowsWanted = Math.round((MB * 1024 * 1024) / 118); // ~118 bytes per row on disk
let generated = false;
if (
  !exists ||
  Number(
    (await sql(DB, `SELECT coalesce(sum(pg_table_size(oid)), 0) AS s FROM pg_class WHERE relname = 'events'`))
      .rows[0].s,
  ) <
    MB * 0.9 * 1024 * 1024
) {
  log(`generating ${DB}: ${rowsWanted.toLocaleString()} rows (~${MB} MB)…`);
  const t = performance.now();
  if (!exists) await sql('postgres', `CREATE DATABASE ${DB}`);
  await sql(DB, 'DROP TABLE IF EXISTS events, customers');
  await sql(
    DB,
    `CREATE TABLE events AS SELECT g AS id, timestamptz '2026-01-01' + g * interval '1 second' AS at,
       md5(g::text) AS a, md5((g * 7)::text) AS b, (g % 1000)::int AS n FROM generate_series(1, ${rowsWanted}) g`,
  );
  await sql(
    DB,
    `CREATE TABLE customers AS SELECT g AS id, 'customer ' || g AS name FROM generate_series(1, 100000) g`,
  );
  await sql(DB, 'ALTER TABLE events ADD PRIMARY KEY (id)');
  await sql(DB, 'VACUUM ANALYZE');
  generated = true;
  log(`generated in ${((performance.now() - t) / 1000).toFixed(0)} s`);
}
const dbBytes = Number((await sql(DB, `SELECT pg_database_size('${DB}') AS s`)).rows[0].s);
const tableBytes = Number((await sql(DB, `SELECT pg_table_size('events') AS s`)).rows[0].s);
const serverVersion = (await sql(DB, 'SHOW server_version')).rows[0].server_version as string;

// 2. pg_dump -Fc vs bulwark backup create, alternating.
const pgDump = pgTool('pg_dump', undefined, Number.parseInt(serverVersion, 10));
const cli = await cliEntry();
const work = mkdtempSync(join(tmpdir(), 'bw-bench-backup-'));
const plain: number[] = [];
const ours: number[] = [];
let dumpBytes = 0;
let ourBytes = 0;
const runPlain = async (i: number) => {
  const file = join(work, `plain-${i}.dump`);
  plain.push(await timedRun(pgDump, ['-Fc', '-f', file, `--dbname=${url}`]));
  dumpBytes = statSync(file).size;
  rmSync(file);
  log(`pg_dump -Fc: ${plain.at(-1)!.toFixed(1)} s`);
};
const runOurs = async (i: number) => {
  const target = join(work, `bulwark-${i}`);
  ours.push(await timedRun(process.execPath, [cli, 'backup', 'create', '--source', url, '--target', target]));
  const id = execFileSync('ls', [target]).toString().trim().split('\n')[0]!;
  ourBytes = statSync(join(target, id, 'database.dump')).size;
  if (i < RUNS - 1) rmSync(target, { recursive: true, force: true });
  log(`bulwark backup create: ${ours.at(-1)!.toFixed(1)} s`);
};
for (let i = 0; i < RUNS; i++) {
  if (i % 2 === 0) {
    await runPlain(i);
    await runOurs(i);
  } else {
    await runOurs(i);
    await runPlain(i);
  }
}

// 3. verify (restore -j 2 into a scratch database, compare every table) of the last backup.
const lastTarget = join(work, `bulwark-${RUNS - 1}`);
const skipVerify = process.env.BENCH_SKIP_VERIFY === '1';
const verifyS = skipVerify
  ? Number.NaN
  : await timedRun(process.execPath, [cli, 'backup', 'verify', 'latest', '--target', lastTarget]);
log(`bulwark backup verify: ${verifyS.toFixed(1)} s`);
rmSync(work, { recursive: true, force: true });
rmSync(cli, { force: true });
if (process.env.BENCH_KEEP !== '1') await sql('postgres', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const ratio = sum(ours) / sum(plain);
const gib = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GiB`;
const mib = (b: number) => `${(b / 1024 ** 2).toFixed(0)} MiB`;
const report = `# PostgreSQL resilience and backups: benchmark results

Machine: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length} (shared with other work), ${(totalmem() / 1024 ** 3).toFixed(0)} GB RAM, Node ${process.version}, PostgreSQL ${serverVersion} (local, 127.0.0.1), pg_dump ${toolVersion(pgDump)}. One run of \`npm run bench:postgres\` on ${new Date().toISOString().slice(0, 10)}.

## \`bulwark backup create\` vs plain \`pg_dump -Fc\`

Database \`${DB}\`: ${gib(dbBytes)} on disk (table \`events\` ${gib(tableBytes)}: ${rowsWanted.toLocaleString()} rows of id, timestamp, two md5 texts, an int; plus \`customers\`, 100k rows; primary key)${generated ? ', generated with generate_series for this run' : ''}. Both as child processes, timed end to end, alternating (A B B A …), ${RUNS} runs each.

| case | seconds (each run) | total | ratio |
|---|---|---|---|
| \`pg_dump -Fc -f FILE\` | ${plain.map((x) => x.toFixed(1)).join(', ')} | ${sum(plain).toFixed(1)} | 1.00× |
| \`bulwark backup create --source URL --target DIR\` (pg_dump -Fc streamed through SHA-256 into the target, per-table row count + checksum computed in the dump's snapshot at the same time, manifest) | ${ours.map((x) => x.toFixed(1)).join(', ')} | ${sum(ours).toFixed(1)} | ${ratio.toFixed(3)}× |

Target: <= 1.1×. Dump size: pg_dump ${mib(dumpBytes)}, bulwark ${mib(ourBytes)} (the same -Fc archive).

## \`bulwark backup verify\`

Verify of that backup (SHA-256 of the file, \`pg_restore -j 2\` into a scratch database, row count and checksum of every table compared with the backup-time figures, scratch database dropped): **${verifyS.toFixed(1)} s** (${(verifyS / (sum(plain) / plain.length)).toFixed(1)}× one pg_dump).
`;
console.log(report);
if (write) writeFileSync(fileURLToPath(new URL('./RESULTS-postgres.md', import.meta.url)), report);
