/**
 * SQL exports: a header comment, one transaction, CREATE TABLE and multi-row INSERTs, in the
 * PostgreSQL or SQLite dialect, loadable with `psql -f` or `sqlite3 db < file`.
 * @module
 */

import { batched, type Column, type ColumnType, type Row } from './rows.js';

/** The SQL dialects. */
export type SqlDialect = 'postgres' | 'sqlite';

const TYPES: Readonly<Record<SqlDialect, Readonly<Record<ColumnType, string>>>> = {
  postgres: {
    text: 'TEXT',
    integer: 'BIGINT',
    real: 'DOUBLE PRECISION',
    boolean: 'BOOLEAN',
    json: 'JSONB',
    bytes: 'BYTEA',
    timestamp: 'TIMESTAMPTZ',
  },
  sqlite: {
    text: 'TEXT',
    integer: 'INTEGER',
    real: 'REAL',
    boolean: 'INTEGER',
    json: 'TEXT',
    bytes: 'BLOB',
    timestamp: 'TEXT',
  },
};

/** A quoted identifier. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function text(s: string): string {
  // NUL cannot be stored in PostgreSQL text, and ends strings in many tools: refuse it loudly.
  if (s.includes('\u0000'))
    throw new Error('A text value holds a NUL character, which SQL text cannot store');
  return `'${s.replace(/'/g, "''")}'`;
}

/** A value as a literal of `type` in `dialect`. */
export function literal(value: unknown, type: ColumnType, dialect: SqlDialect): string {
  if (value === null || value === undefined) return 'NULL';
  switch (type) {
    case 'integer':
    case 'real': {
      if (typeof value === 'bigint') return value.toString();
      const n = Number(value);
      if (!Number.isFinite(n))
        return dialect === 'postgres'
          ? `'${Number.isNaN(n) ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity'}'`
          : 'NULL';
      return String(n);
    }
    case 'boolean':
      return dialect === 'postgres' ? (value ? 'TRUE' : 'FALSE') : value ? '1' : '0';
    case 'bytes': {
      const hex = Buffer.from(value as Uint8Array).toString('hex');
      return dialect === 'postgres' ? `'\\x${hex}'::bytea` : `X'${hex}'`;
    }
    case 'timestamp':
      return text(value instanceof Date ? value.toISOString() : String(value));
    case 'json':
      return text(typeof value === 'string' ? value : JSON.stringify(value));
    default:
      return text(
        typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value),
      );
  }
}

const ROWS_PER_INSERT = 250;

/**
 * The SQL text of an export, in chunks, from rows.
 *
 * @example
 * ```ts
 * import { sqlChunks } from 'bulwark/export';
 * async function* rows() { yield { id: 1 }; }
 * let sql = '';
 * for await (const c of sqlChunks(rows(), [{ name: 'id', type: 'integer' }], 'sqlite', 't')) sql += c;
 * console.log(sql.includes('INSERT INTO "t" ("id") VALUES\n(1);')); // true
 * ```
 */
export async function* sqlChunks(
  rows: AsyncIterable<Row>,
  columns: readonly Column[],
  dialect: SqlDialect,
  table: string,
): AsyncIterable<string> {
  yield* sqlBatchChunks(batched(rows, ROWS_PER_INSERT), columns, dialect, table);
}

/**
 * The SQL text of an export, from rows in batches: one INSERT of up to 250 rows per chunk, built
 * as one string (no array of tuples kept alive across the batch). @internal
 */
export async function* sqlBatchChunks(
  rows: AsyncIterable<readonly Row[]>,
  columns: readonly Column[],
  dialect: SqlDialect,
  table: string,
): AsyncIterable<string> {
  const cols = columns.map((c) => ident(c.name)).join(', ');
  yield `-- bulwark export, schema version 1, dialect ${dialect}\nBEGIN;\nCREATE TABLE ${ident(table)} (${columns.map((c) => `${ident(c.name)} ${TYPES[dialect][c.type]}`).join(', ')});\n`;
  const head = `INSERT INTO ${ident(table)} (${cols}) VALUES\n`;
  const names = columns.map((c) => c.name);
  const types = columns.map((c) => c.type);
  for await (const batch of rows) {
    for (let start = 0; start < batch.length; start += ROWS_PER_INSERT) {
      const end = Math.min(batch.length, start + ROWS_PER_INSERT);
      let out = head;
      for (let i = start; i < end; i++) {
        const r = batch[i]!;
        out += i === start ? '(' : ',\n(';
        for (let j = 0; j < names.length; j++) {
          if (j > 0) out += ', ';
          out += literal(r[names[j]!], types[j]!, dialect);
        }
        out += ')';
      }
      yield `${out};\n`;
    }
  }
  yield 'COMMIT;\n';
}
