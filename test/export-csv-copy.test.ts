/**
 * The PostgreSQL CSV fast path (COPY … TO STDOUT + the streaming neutraliser):
 * - fuzz (fast-check): PostgreSQL-style CSV of random records, cut into random chunks, neutralises
 *   to exactly csv-stringify's output for the same records, and csv-parse reads it back;
 * - on the real server: the COPY path's file equals the cursor + csv-stringify path's file, byte
 *   for byte, for a table full of formula cells, quotes, newlines, empty strings and NULLs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CsvNeutraliser } from '../src/export/csv-neutralise.js';
import { CSV_OPTIONS } from '../src/export/formats.js';
import { exportTo, postgresQuerySource } from '../src/export/index.js';

const OPTS = CSV_OPTIONS;

/** A cell as PostgreSQL's COPY CSV writes it (NULL bare and empty; '' and a lone \. quoted). */
function pgCell(v: string | number | null, single: boolean): string {
  if (v === null) return '';
  if (typeof v === 'number') return String(v);
  const quote = v === '' || /[",\r\n]/.test(v) || (single && v === '\\.');
  return quote ? `"${v.replace(/"/g, '""')}"` : v;
}

const cellArb = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom(
          '=',
          '+',
          '-',
          '@',
          '\t',
          '\r',
          '\n',
          '"',
          ',',
          '\uFF1D',
          '\uFF0B',
          '\uFF0D',
          '\uFF20',
          '\uFF21',
          'é',
          '\\.',
          '',
        ),
        fc.string({
          maxLength: 6,
          unit: fc.constantFrom('a', '"', ',', '\n', '\r', '=', '-', ' ', '\uFF1D'),
        }),
      )
      .map(([a, b]) => a + b),
  },
  { weight: 1, arbitrary: fc.constant(null) },
);

describe('CsvNeutraliser (fuzz)', () => {
  it('equals csv-stringify for the same records, under any chunking, and parses back', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }).chain((cols) =>
          fc.record({
            numeric: fc.array(fc.boolean(), { minLength: cols, maxLength: cols }),
            rows: fc.array(fc.array(cellArb, { minLength: cols, maxLength: cols }), { maxLength: 8 }),
            ints: fc.array(
              fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: cols, maxLength: cols }),
              {
                maxLength: 8,
              },
            ),
            cuts: fc.array(fc.nat(), { maxLength: 12 }),
          }),
        ),
        ({ numeric, rows, ints, cuts }) => {
          const records = rows.map((r, i) => r.map((v, j) => (numeric[j] ? (ints[i]?.[j] ?? -7) : v)));
          const single = numeric.length === 1;
          const input = Buffer.from(
            records.map((r) => `${r.map((v) => pgCell(v, single)).join(',')}\n`).join(''),
          );
          const points = [...new Set(cuts.map((c) => (input.length === 0 ? 0 : c % input.length)))].sort(
            (a, b) => a - b,
          );
          const n = new CsvNeutraliser(numeric);
          const parts: Buffer[] = [];
          let at = 0;
          for (const p of [...points, input.length]) {
            parts.push(n.push(input.subarray(at, p)));
            at = p;
          }
          parts.push(n.end());
          const out = Buffer.concat(parts).toString('utf8');
          const expected = records.length === 0 ? '' : stringify(records, OPTS);
          expect(out).toBe(expected);
          expect(n.rows).toBe(records.length);
          if (records.length > 0) {
            const back = parse(out, { relax_column_count: false }) as string[][];
            const danger = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;
            expect(back).toEqual(
              records.map((r) =>
                r.map((v) =>
                  v === null ? '' : typeof v === 'number' ? String(v) : danger.test(v) ? `'${v}` : v,
                ),
              ),
            );
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

const PG = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `bw_dataexp_csv_${process.pid}`;
let pool: pg.Pool;
const dir = mkdtempSync(join(tmpdir(), 'dataexp-csv-'));

describe('PostgreSQL CSV fast path (real server)', () => {
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: PG, max: 3 });
    await pool.query(`CREATE SCHEMA ${schema}`);
    await pool.query(
      `CREATE TABLE ${schema}.t (id int4, big int8, amount numeric, name text, code varchar(20), active bool, u uuid)`,
    );
    const texts = [
      '=1+1',
      '+x',
      '-y',
      '@z',
      '\tT',
      '\rR',
      'a,b',
      'say "hi"',
      'line\nbreak',
      '',
      '\\.',
      '\uFF1Dfw',
      'plain',
      'é',
    ];
    const rows: unknown[][] = [];
    for (let i = 0; i < 600; i++) {
      rows.push([
        i % 7 === 0 ? -i : i,
        i % 5 === 0 ? `-${i}000000000` : `${i}`,
        i % 3 === 0 ? `-${i}.25` : `${i}.5`,
        i % 11 === 0 ? null : texts[i % texts.length],
        texts[(i * 3) % texts.length]!.slice(0, 20),
        i % 13 === 0 ? null : i % 2 === 0,
        i % 17 === 0 ? null : `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`,
      ]);
    }
    for (const r of rows) await pool.query(`INSERT INTO ${schema}.t VALUES ($1,$2,$3,$4,$5,$6,$7)`, r);
  });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA ${schema} CASCADE`);
    await pool.end();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const sql of [
    `SELECT * FROM ${schema}.t ORDER BY id, big`,
    `SELECT name FROM ${schema}.t ORDER BY id, big`,
  ]) {
    it(`COPY output equals the csv-stringify path: ${sql.replace(schema, 's')}`, async () => {
      const fast = await exportTo({
        source: postgresQuerySource({ name: 't', pool, sql }),
        format: 'csv',
        to: join(dir, 'fast.csv'),
      });
      const slow = await exportTo({
        source: postgresQuerySource({ name: 't', pool, sql, copy: false }),
        format: 'csv',
        to: join(dir, 'slow.csv'),
      });
      expect(fast.rows).toBe(600);
      expect(slow.rows).toBe(600);
      const a = readFileSync(join(dir, 'fast.csv'), 'utf8');
      const b = readFileSync(join(dir, 'slow.csv'), 'utf8');
      expect(a).toBe(b);
      expect(fast.sha256).toBe(slow.sha256);
      expect(a).toContain("'=1+1");
      const back = parse(a, { columns: true }) as Record<string, string>[];
      expect(back).toHaveLength(600);
    });
  }

  it('a slow writer backpressures the COPY, and the connection is reusable after it (no socket left paused)', async () => {
    for (let round = 0; round < 3; round++) {
      const slow = new Writable({
        highWaterMark: 1024,
        write(_chunk, _enc, cb) {
          setTimeout(cb, 1);
        },
      });
      const r = await exportTo({
        source: postgresQuerySource({
          name: 'g',
          pool,
          sql: "SELECT g AS id, repeat('x', 40) AS pad FROM generate_series(1, 30000) g",
        }),
        format: 'csv',
        to: slow,
      });
      expect(r.rows).toBe(30_000);
      expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    }
    expect(pool.totalCount - pool.idleCount).toBe(0);
  }, 120_000);

  it('falls back to the cursor path for parameters and unsupported types; a bad query fails clearly', async () => {
    const withParam = postgresQuerySource({
      name: 't',
      pool,
      sql: `SELECT id, now() AS at FROM ${schema}.t WHERE id > $1`,
      params: [0],
    });
    expect(await withParam.copyCsv!()).toBeUndefined();
    const withTime = postgresQuerySource({ name: 't', pool, sql: `SELECT id, now() AS at FROM ${schema}.t` });
    expect(await withTime.copyCsv!()).toBeUndefined();
    const r = await exportTo({ source: withTime, format: 'csv', to: join(dir, 'time.csv') });
    expect(r.rows).toBe(600);
    await expect(
      exportTo({
        source: postgresQuerySource({ name: 'x', pool, sql: `SELECT nope FROM ${schema}.t` }),
        format: 'csv',
        to: join(dir, 'bad.csv'),
      }),
    ).rejects.toThrow(/nope/);
    // An error in the middle of the COPY (row 300 divides by zero) fails the export.
    await expect(
      exportTo({
        source: postgresQuerySource({
          name: 'x',
          pool,
          sql: 'SELECT g AS id, 1 / (g - 300) AS x FROM generate_series(1, 600) g',
        }),
        format: 'csv',
        to: join(dir, 'mid.csv'),
      }),
    ).rejects.toThrow(/division by zero/);
    // Every client went back to the pool.
    expect(pool.totalCount - pool.idleCount).toBe(0);
  });
});
