/**
 * SQL exports: a header comment, one transaction, CREATE TABLE and multi-row INSERTs, in the
 * PostgreSQL or SQLite dialect, loadable with `psql -f` or `sqlite3 db < file`.
 * @module
 */

import type { Column, ColumnType, Row } from './rows.js';

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

const ROWS_PER_INSERT = 500;

/** The SQL text of an export, in chunks. */
export async function* sqlChunks(
  rows: AsyncIterable<Row>,
  columns: readonly Column[],
  dialect: SqlDialect,
  table: string,
): AsyncIterable<string> {
  const cols = columns.map((c) => ident(c.name)).join(', ');
  yield `-- bulwark export, schema version 1, dialect ${dialect}\nBEGIN;\nCREATE TABLE ${ident(table)} (${columns.map((c) => `${ident(c.name)} ${TYPES[dialect][c.type]}`).join(', ')});\n`;
  let tuples: string[] = [];
  const flush = () => {
    const out = `INSERT INTO ${ident(table)} (${cols}) VALUES\n${tuples.join(',\n')};\n`;
    tuples = [];
    return out;
  };
  for await (const r of rows) {
    tuples.push(`(${columns.map((c) => literal(r[c.name], c.type, dialect)).join(', ')})`);
    if (tuples.length === ROWS_PER_INSERT) yield flush();
  }
  if (tuples.length > 0) yield flush();
  yield 'COMMIT;\n';
}
