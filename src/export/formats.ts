/**
 * The text formats of an export, each a streaming transformer from rows to text chunks:
 * JSON (one document with metadata), NDJSON, CSV (RFC 4180 through csv-stringify, formulas
 * neutralised), SQL (see sql.ts) and Markdown tables.
 * @module
 */

import { BulwarkError } from '../core/errors.js';
import { batched, type Column, cellText, jsonValue, type Row } from './rows.js';
import { type SqlDialect, sqlBatchChunks } from './sql.js';

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

/** Rows in batches (what the writers read: one await per batch, not per row). */
export type RowBatches = AsyncIterable<readonly Row[]>;

async function* json(rows: RowBatches, ctx: FormatContext): AsyncIterable<string> {
  const head = {
    schemaVersion: 1,
    source: ctx.source,
    exportedAt: ctx.exportedAt,
    generator: 'bulwark',
    columns: ctx.columns,
  };
  yield `${JSON.stringify(head).slice(0, -1)},"rows":[`;
  let sep = '\n';
  for await (const batch of rows) {
    let buf = '';
    for (const r of batch) {
      buf += `${sep}${JSON.stringify(plain(r, ctx.columns))}`;
      sep = ',\n';
    }
    if (buf !== '') yield buf;
  }
  yield '\n]}\n';
}

async function* ndjson(rows: RowBatches, ctx: FormatContext): AsyncIterable<string> {
  for await (const batch of rows) {
    let buf = '';
    for (const r of batch) buf += `${JSON.stringify(plain(r, ctx.columns))}\n`;
    if (buf !== '') yield buf;
  }
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

/**
 * The csv-stringify options of every CSV export: RFC 4180 (CRLF, quotes doubled); cells starting
 * with = + - @ TAB CR (or their full-width forms) get a leading ' (numbers are left alone); fields
 * holding a comma, a quote, LF or CR are quoted. @internal
 */
export const CSV_OPTIONS = {
  escape_formulas: true,
  record_delimiter: 'windows',
  // csv-stringify leaves a bare LF or CR unquoted once record_delimiter is set: RFC 4180 wants it quoted.
  quote_record_delimiter: true,
  cast: { boolean: (b: boolean) => String(b) },
} as const;

/** The CSV header line of these columns. @internal */
export async function csvHeader(columns: readonly Column[]): Promise<string> {
  return (await loadCsv())([columns.map((c) => c.name)], CSV_OPTIONS);
}

async function* csv(rows: RowBatches, ctx: FormatContext): AsyncIterable<string> {
  const stringify = await loadCsv();
  yield await csvHeader(ctx.columns);
  const names = ctx.columns.map((c) => c.name);
  for await (const batch of rows) {
    if (batch.length === 0) continue;
    const cells = new Array<unknown[]>(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]!;
      const line = new Array<unknown>(names.length);
      for (let j = 0; j < names.length; j++) line[j] = cellText(r[names[j]!]);
      cells[i] = line;
    }
    yield stringify(cells, CSV_OPTIONS);
  }
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

async function* markdown(rows: RowBatches, ctx: FormatContext): AsyncIterable<string> {
  yield `| ${ctx.columns.map((c) => mdCell(c.name)).join(' | ')} |\n| ${ctx.columns.map(() => '---').join(' | ')} |\n`;
  for await (const batch of rows) {
    let buf = '';
    for (const r of batch) buf += `| ${ctx.columns.map((c) => mdCell(r[c.name])).join(' | ')} |\n`;
    if (buf !== '') yield buf;
  }
}

/** The writer of each format, reading rows in batches. @internal */
export const BATCH_FORMATS: Readonly<
  Record<ExportFormat, (rows: RowBatches, ctx: FormatContext) => AsyncIterable<string>>
> = {
  json,
  ndjson,
  csv,
  md: markdown,
  sql: (rows, ctx) => sqlBatchChunks(rows, ctx.columns, ctx.dialect ?? 'postgres', ctx.table ?? ctx.source),
};

/** Groups rows into arrays (see rows.ts); exported here, beside the formats that take them. */
export { batched };

const byRow =
  (f: (rows: RowBatches, ctx: FormatContext) => AsyncIterable<string>) =>
  (rows: AsyncIterable<Row>, ctx: FormatContext) =>
    f(batched(rows), ctx);

/**
 * The writer of each format, from rows to text chunks.
 *
 * @example
 * ```ts
 * import { FORMATS, iterableSource } from 'bulwark/export';
 * let text = '';
 * for await (const chunk of FORMATS.md(iterableSource('t', [{ a: 1 }]).rows(), { source: 't', columns: [{ name: 'a', type: 'integer' }], exportedAt: '' })) text += chunk;
 * console.log(text); // "| a |\n| --- |\n| 1 |\n"
 * ```
 */
export const FORMATS: Readonly<
  Record<ExportFormat, (rows: AsyncIterable<Row>, ctx: FormatContext) => AsyncIterable<string>>
> = {
  json: byRow(json),
  ndjson: byRow(ndjson),
  csv: byRow(csv),
  md: byRow(markdown),
  sql: byRow(BATCH_FORMATS.sql),
};
