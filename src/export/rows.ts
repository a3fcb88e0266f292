/**
 * What exports read: a source of rows (an async iterable of plain objects) and its columns.
 * @module
 */

/** One row: column name → value (string, number, boolean, null, Uint8Array, Date, or JSON). */
export type Row = Readonly<Record<string, unknown>>;

/** The SQL-ish type of a column (drives SQL DDL and literals). */
export type ColumnType = 'text' | 'integer' | 'real' | 'boolean' | 'json' | 'bytes' | 'timestamp';

/** A column of an export. */
export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  /** What the column holds (written to the JSON export and manifest). */
  readonly description?: string;
}

/**
 * Something to export: a name, its columns (inferred from the first row when absent) and its
 * rows, read once, in order, as a stream.
 *
 * @example
 * ```ts
 * import { iterableSource } from 'bulwark/export';
 * const source = iterableSource('users', [{ id: 1, name: 'Ada' }]);
 * ```
 */
export interface ExportSource {
  readonly name: string;
  readonly columns?: readonly Column[];
  rows(): AsyncIterable<Row>;
  /** The same rows in arrays (faster: one await per batch); used instead of `rows` when present. */
  batches?(): AsyncIterable<readonly Row[]>;
  /**
   * A CSV fast path: the rows already as RFC 4180 records (CRLF, formulas neutralised, no header),
   * byte-equal to what the csv-stringify path writes; undefined when the source cannot provide it.
   */
  copyCsv?(): Promise<CsvCopy | undefined>;
}

/** What `ExportSource.copyCsv` gives. */
export interface CsvCopy {
  readonly columns: readonly Column[];
  /** CSV records (no header line). */
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Records seen so far. */
  rows(): number;
}

/** The type a value suggests for its column. */
export function typeOf(value: unknown): ColumnType {
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'real';
  if (typeof value === 'bigint') return 'integer';
  if (typeof value === 'boolean') return 'boolean';
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof Date) return 'timestamp';
  if (typeof value === 'object' && value !== null) return 'json';
  return 'text';
}

/** Columns inferred from a row (numbers that are integers become `real` unless all later ones are: declare columns to be exact). */
export function inferColumns(row: Row): Column[] {
  return Object.entries(row).map(([name, v]) => ({
    name,
    type: typeOf(v) === 'integer' ? 'real' : typeOf(v),
  }));
}

/**
 * A source over any iterable or async iterable of rows.
 *
 * @example
 * ```ts
 * import { iterableSource } from 'bulwark/export';
 * async function* users() { yield { id: 1, email: 'a@example.com' }; }
 * const source = iterableSource('users', users(), [{ name: 'id', type: 'integer' }, { name: 'email', type: 'text' }]);
 * ```
 */
export function iterableSource(
  name: string,
  rows: Iterable<Row> | AsyncIterable<Row>,
  columns?: readonly Column[],
): ExportSource {
  return {
    name,
    ...(columns === undefined ? {} : { columns }),
    async *rows() {
      yield* rows as AsyncIterable<Row>;
    },
  };
}

/** A value as text for CSV and Markdown cells (JSON for objects, base64 for bytes, ISO for dates). */
export function cellText(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/** A value as JSON (bytes as base64, bigints as strings). */
export function jsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (typeof value === 'bigint') return value.toString();
  return value === undefined ? null : value;
}

/**
 * Columns from a compact spec: space-separated `name:type` pairs. @internal
 *
 * @example
 * ```ts nocheck
 * columnsOf('id:integer name:text'); // [{ name: 'id', type: 'integer' }, { name: 'name', type: 'text' }]
 * ```
 */
export function columnsOf(spec: string): Column[] {
  return spec.split(' ').map((pair) => {
    const [name, type] = pair.split(':') as [string, ColumnType];
    return { name, type };
  });
}

/**
 * The items of a paged read, page after page until an empty one: `fetch(after)` reads the page
 * after the cursor `after` (`start` first, then `cursorOf` the previous page's last item). @internal
 *
 * @example
 * ```ts nocheck
 * for await (const e of paged(0, (after) => log.list({ afterSeq: after }), (e) => e.seq)) console.log(e.seq);
 * ```
 */
export async function* paged<T, C>(
  start: C,
  fetch: (after: C) => Promise<readonly T[]>,
  cursorOf: (last: T) => C,
): AsyncIterable<T> {
  let after = start;
  for (;;) {
    const page = await fetch(after);
    if (page.length === 0) return;
    yield* page;
    after = cursorOf(page[page.length - 1]!);
  }
}

/**
 * Groups rows into arrays of up to `size` (one await per row of the source, none per row after).
 *
 * @example
 * ```ts
 * import { batched } from 'bulwark/export';
 * for await (const b of batched([{ a: 1 }, { a: 2 }, { a: 3 }], 2)) console.log(b.length); // 2, then 1
 * ```
 */
export async function* batched(
  rows: AsyncIterable<Row> | Iterable<Row>,
  size = 512,
): AsyncIterable<readonly Row[]> {
  let batch: Row[] = [];
  for await (const r of rows) {
    batch.push(r);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
