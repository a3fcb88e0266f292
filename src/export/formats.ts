/**
 * The text formats of an export, each a streaming transformer from rows to text chunks:
 * JSON (one document with metadata), NDJSON, CSV (RFC 4180 through csv-stringify, formulas
 * neutralised), SQL (see sql.ts) and Markdown tables.
 * @module
 */

import { BulwarkError } from '../core/errors.js';
import { type Column, cellText, jsonValue, type Row } from './rows.js';
import { type SqlDialect, sqlChunks } from './sql.js';

/** The export formats. */
export type ExportFormat = 'json' | 'ndjson' | 'csv' | 'sql' | 'md';

/** File extension of each format. */
export const EXTENSIONS: Readonly<Record<ExportFormat, string>> = {
  json: 'json',
  ndjson: 'ndjson',
  csv: 'csv',
  sql: 'sql',
  md: 'md',
};

/** What a format writer gets besides the rows. */
export interface FormatContext {
  readonly source: string;
  readonly columns: readonly Column[];
  readonly exportedAt: string;
  /** SQL: the dialect (default postgres). */
  readonly dialect?: SqlDialect;
  /** SQL: the table name (default: the source name). */
  readonly table?: string;
}

const plain = (row: Row, columns: readonly Column[]) => {
  const out: Record<string, unknown> = {};
  for (const c of columns) out[c.name] = jsonValue(row[c.name]);
  return out;
};

async function* json(rows: AsyncIterable<Row>, ctx: FormatContext): AsyncIterable<string> {
  const head = {
    schemaVersion: 1,
    source: ctx.source,
    exportedAt: ctx.exportedAt,
    generator: 'bulwark',
    columns: ctx.columns,
  };
  yield `${JSON.stringify(head).slice(0, -1)},"rows":[`;
  let first = true;
  for await (const r of rows) {
    yield `${first ? '\n' : ',\n'}${JSON.stringify(plain(r, ctx.columns))}`;
    first = false;
  }
  yield '\n]}\n';
}

async function* ndjson(rows: AsyncIterable<Row>, ctx: FormatContext): AsyncIterable<string> {
  let buf = '';
  for await (const r of rows) {
    buf += `${JSON.stringify(plain(r, ctx.columns))}\n`;
    if (buf.length > 65_536) {
      yield buf;
      buf = '';
    }
  }
  if (buf !== '') yield buf;
}

type Stringifier = (input: unknown[][], options: Record<string, unknown>) => string;
let stringifySync: Stringifier | undefined;

/** Loads csv-stringify (optional peer). @internal */
export async function loadCsv(): Promise<Stringifier> {
  if (stringifySync !== undefined) return stringifySync;
  try {
    const mod = (await import('csv-stringify/sync')) as unknown as { stringify: Stringifier };
    stringifySync = mod.stringify;
    return stringifySync;
  } catch (cause) {
    throw new BulwarkError(
      'PEER_MISSING',
      'CSV export needs the optional package "csv-stringify": run `npm install csv-stringify`',
      { cause },
    );
  }
}

async function* csv(rows: AsyncIterable<Row>, ctx: FormatContext): AsyncIterable<string> {
  const stringify = await loadCsv();
  // RFC 4180 (CRLF, quotes doubled); cells starting with = + - @ TAB CR get a leading ' (numbers are left alone).
  const opts = {
    escape_formulas: true,
    record_delimiter: 'windows',
    cast: { boolean: (b: boolean) => String(b) },
  };
  yield stringify([ctx.columns.map((c) => c.name)], opts);
  let batch: unknown[][] = [];
  for await (const r of rows) {
    batch.push(ctx.columns.map((c) => cellText(r[c.name])));
    if (batch.length === 1000) {
      yield stringify(batch, opts);
      batch = [];
    }
  }
  if (batch.length > 0) yield stringify(batch, opts);
}

const mdCell = (v: unknown): string => {
  const t = cellText(v);
  return t === null
    ? ''
    : String(t)
        .replace(/\\/g, '\\\\')
        .replace(/\|/g, '\\|')
        .replace(/\r?\n|\r/g, '<br>');
};

async function* markdown(rows: AsyncIterable<Row>, ctx: FormatContext): AsyncIterable<string> {
  yield `| ${ctx.columns.map((c) => mdCell(c.name)).join(' | ')} |\n| ${ctx.columns.map(() => '---').join(' | ')} |\n`;
  let buf = '';
  for await (const r of rows) {
    buf += `| ${ctx.columns.map((c) => mdCell(r[c.name])).join(' | ')} |\n`;
    if (buf.length > 65_536) {
      yield buf;
      buf = '';
    }
  }
  if (buf !== '') yield buf;
}

/** The writer of each format. */
export const FORMATS: Readonly<
  Record<ExportFormat, (rows: AsyncIterable<Row>, ctx: FormatContext) => AsyncIterable<string>>
> = {
  json,
  ndjson,
  csv,
  md: markdown,
  sql: (rows, ctx) => sqlChunks(rows, ctx.columns, ctx.dialect ?? 'postgres', ctx.table ?? ctx.source),
};
