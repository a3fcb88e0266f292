/**
 * Round trips through tools nobody here wrote: the SQL export of 100k rows loads with `psql`
 * into PostgreSQL and with Debian's `sqlite3` into SQLite and equals the source; the CSV parses
 * with csv-parse and equals the source (formula cells neutralised with a leading '); the NDJSON
 * reads with `jq`.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Column, exportTo, iterableSource, type Row } from '../src/export/index.js';
import { describePg, dropSchema, pgConnectionString, pgPool, uniqueName } from './support/postgres.js';

const run = promisify(execFile);
const N = 100_000;
const COLUMNS: Column[] = [
  { name: 'id', type: 'integer' },
  { name: 'name', type: 'text' },
  { name: 'amount', type: 'real' },
  { name: 'active', type: 'boolean' },
  { name: 'meta', type: 'json' },
  { name: 'data', type: 'bytes' },
];
const NAMES = [
  'plain',
  "O'Brien",
  'say "hi"',
  'a,b',
  'line\nbreak',
  'tab\there',
  'back\\slash',
  'ünïcødé 😀',
  '=SUM(A1)',
  '+1',
  '@cmd',
  '-x',
  '',
];
function row(i: number): Row {
  return {
    id: i,
    name: i % 17 === 0 ? null : `${NAMES[i % NAMES.length]}${i}`,
    amount: i % 5 === 0 ? -i / 8 : i * 1.25,
    active: i % 3 === 0,
    meta: i % 11 === 0 ? null : { k: i, tags: ['x', `y${i % 4}`], nested: { ok: i % 2 === 0 } },
    data: i % 7 === 0 ? null : Buffer.from([i & 255, (i >> 8) & 255, 0, 255]),
  };
}
function* rows(): Iterable<Row> {
  for (let i = 1; i <= N; i++) yield row(i);
}
const source = () => iterableSource('items', rows(), COLUMNS);

const hex = (b: unknown) => (b === null ? null : Buffer.from(b as Uint8Array).toString('hex'));
/** Canonical JSON (sorted keys) so jsonb's key order does not matter. */
const canon = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as object).sort(([a], [b]) => (a < b ? -1 : 1)))
      : x,
  );
let bad: string[] = [];
/** Records a mismatch (checking 100k rows with one expect each is slow). */
function same(i: number, got: unknown, want: unknown): void {
  if (bad.length < 5 && canon(got) !== canon(want)) bad.push(`row ${i}: ${canon(got)} != ${canon(want)}`);
}

let dir: string;
beforeEach(() => {
  bad = [];
});
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'export-rt-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('export round trips (100k rows)', () => {
  it('SQL (SQLite dialect) loads with the sqlite3 CLI and equals the source', async () => {
    const file = join(dir, 'items.sqlite.sql');
    const r = await exportTo({ source: source(), format: 'sql', dialect: 'sqlite', to: file });
    expect(r.rows).toBe(N);
    const db = join(dir, 'items.db');
    await new Promise<void>((resolve, reject) => {
      const p = spawn('sqlite3', ['-bail', db], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      p.on('error', reject);
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sqlite3 exited ${code}: ${err}`))));
      p.stdin.end(readFileSync(file));
    });
    const got = new Database(db, { readonly: true });
    let i = 0;
    for (const g of got.prepare('SELECT * FROM items ORDER BY id').iterate() as Iterable<
      Record<string, unknown>
    >) {
      i++;
      const w = row(i);
      same(
        i,
        [
          g.id,
          g.name,
          g.amount,
          g.active,
          g.meta === null ? null : JSON.parse(g.meta as string),
          hex(g.data),
        ],
        [w.id, w.name, w.amount, w.active ? 1 : 0, w.meta, hex(w.data)],
      );
    }
    expect(bad).toEqual([]);
    got.close();
    expect(i).toBe(N);
  });

  it('CSV parses with csv-parse and equals the source, formula cells neutralised', async () => {
    const file = join(dir, 'items.csv');
    await exportTo({ source: source(), format: 'csv', to: file });
    const records = parse(readFileSync(file), { columns: true, relax_column_count: false }) as Record<
      string,
      string
    >[];
    expect(records).toHaveLength(N);
    for (const [k, g] of records.entries()) {
      const w = row(k + 1);
      const name = w.name as string | null;
      const expectName = name === null ? '' : /^[=+\-@\t\r]/.test(name) ? `'${name}` : name;
      // Negative numbers are not prefixed.
      same(
        k + 1,
        [
          g.name,
          Number(g.id),
          Number(g.amount),
          g.active,
          g.meta === '' ? null : JSON.parse(g.meta!),
          g.data === '' ? null : Buffer.from(g.data!, 'base64').toString('hex'),
        ],
        [expectName, w.id, w.amount, String(w.active), w.meta, hex(w.data)],
      );
    }
    expect(bad).toEqual([]);
  });

  it('NDJSON reads with jq', async () => {
    const file = join(dir, 'items.ndjson');
    await exportTo({ source: source(), format: 'ndjson', to: file });
    const { stdout } = await run('jq', ['-c', '[.id, .name, .amount, .active, .meta]', file], {
      maxBuffer: 1 << 28,
    });
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(N);
    for (const [k, l] of lines.entries()) {
      const w = row(k + 1);
      same(k + 1, JSON.parse(l), [w.id, w.name, w.amount, w.active, w.meta]);
    }
    expect(bad).toEqual([]);
  });
});

describePg('SQL export round trip through psql', () => {
  const schema = uniqueName('bw_export');
  afterAll(() => dropSchema(schema));

  it('SQL (PostgreSQL dialect) loads with psql and equals the source', async () => {
    const file = join(dir, 'items.pg.sql');
    await exportTo({ source: source(), format: 'sql', dialect: 'postgres', to: file });
    const pool = pgPool();
    await pool.query(`CREATE SCHEMA "${schema}"`);
    await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', pgConnectionString(), '-f', file], {
      env: { ...process.env, PGOPTIONS: `-c search_path=${schema}` },
      maxBuffer: 1 << 26,
    });
    const { rows: got } = await pool.query(`SELECT * FROM "${schema}".items ORDER BY id`);
    expect(got).toHaveLength(N);
    for (const [k, g] of got.entries()) {
      const w = row(k + 1);
      same(
        k + 1,
        [Number(g.id), g.name, g.amount, g.active, g.meta, hex(g.data)],
        [w.id, w.name, w.amount, w.active, w.meta, hex(w.data)],
      );
    }
    expect(bad).toEqual([]);
    await pool.end();
  });
});
