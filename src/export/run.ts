/**
 * Runs an export: streams a source through a format into a writable (with backpressure, so
 * memory stays flat for any number of rows), counting rows and bytes, hashing the output
 * (SHA-256) and reporting progress (rows/s, ETA when the total is known).
 * @module
 */

import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Clock, systemClock } from '../core/clock.js';
import { clockSchema, duck } from '../core/common-schemas.js';
import { s } from '../core/schema.js';
import { BATCH_FORMATS, batched, csvHeader, type ExportFormat } from './formats.js';
import { type Column, type ExportSource, inferColumns, type Row } from './rows.js';
import type { SqlDialect } from './sql.js';

/** Progress of a running export. */
export interface ExportProgress {
  readonly rows: number;
  readonly bytes: number;
  readonly elapsedMs: number;
  readonly rowsPerSec: number;
  /** When `total` was given: estimated ms left. */
  readonly etaMs: number | undefined;
  readonly done: boolean;
}

/** Options of `exportTo`. */
export interface ExportOptions {
  readonly source: ExportSource;
  readonly format: ExportFormat;
  /** A file path or a writable stream (not ended when given). */
  readonly to: string | Writable;
  readonly dialect?: SqlDialect;
  readonly table?: string;
  /** Expected number of rows (for the ETA). */
  readonly total?: number;
  readonly onProgress?: (p: ExportProgress) => void;
  /** How often `onProgress` is called, ms. Default 1 000. */
  readonly progressEveryMs?: number;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
}

/** What an export wrote. */
export interface ExportResult {
  readonly source: string;
  readonly format: ExportFormat;
  readonly rows: number;
  readonly bytes: number;
  /** SHA-256 of the bytes written, hex. */
  readonly sha256: string;
  readonly columns: readonly Column[];
}

/** Peeks the first batch to infer columns, then yields every batch. */
async function withColumns(
  source: ExportSource,
): Promise<{ columns: readonly Column[]; rows: AsyncIterable<readonly Row[]> }> {
  const all = source.batches?.() ?? batched(source.rows());
  if (source.columns !== undefined) return { columns: source.columns, rows: all };
  const it = all[Symbol.asyncIterator]();
  let first = await it.next();
  while (first.done !== true && first.value.length === 0) first = await it.next();
  const columns = first.done === true ? [] : inferColumns(first.value[0]!);
  async function* rest(): AsyncIterable<readonly Row[]> {
    if (first.done === true) return;
    yield first.value;
    for (let n = await it.next(); n.done !== true; n = await it.next()) yield n.value;
  }
  return { columns, rows: rest() };
}

/** The options' schema (the one validator: `ConfigError` naming the dotted path). */
const EXPORT_OPTIONS = s.object({
  source: duck<ExportSource>('an export source (name, rows())', ['rows']),
  format: s.oneOf(['json', 'ndjson', 'csv', 'sql', 'md']),
  to: s.union(
    [s.string(), duck<Writable>('a file path or a Writable', ['write'])],
    'a file path or a Writable',
  ),
  dialect: s.optional(s.oneOf(['postgres', 'sqlite'])),
  table: s.optional(s.string()),
  total: s.optional(s.int({ min: 0 })),
  onProgress: s.optional(s.fn()),
  progressEveryMs: s.optional(s.duration()),
  clock: s.optional(clockSchema),
  signal: s.optional(s.unknown()),
});

/**
 * Streams `source` as `format` into `to`.
 *
 * @example
 * ```ts
 * import { PassThrough } from 'node:stream';
 * import { exportTo, iterableSource } from 'bulwark/export';
 * const out = new PassThrough();
 * const chunks: Buffer[] = [];
 * out.on('data', (c: Buffer) => chunks.push(c));
 * const r = await exportTo({ source: iterableSource('t', [{ a: 1 }, { a: '=2' }]), format: 'csv', to: out });
 * console.log(r.rows, Buffer.concat(chunks).toString()); // 2 "a\r\n1\r\n'=2\r\n"
 * ```
 */
export async function exportTo(options: ExportOptions): Promise<ExportResult> {
  EXPORT_OPTIONS.parse(options, 'exportTo');
  const clock = options.clock ?? systemClock;
  const every = options.progressEveryMs ?? 1000;
  const copy = options.format === 'csv' ? await options.source.copyCsv?.() : undefined;
  const { columns, rows } =
    copy === undefined
      ? await withColumns(options.source)
      : { columns: copy.columns, rows: (async function* () {})() };
  const started = clock.now();
  let count = 0;
  let bytes = 0;
  let lastReport = started;
  const hash = createHash('sha256');
  const report = (done: boolean) => {
    if (options.onProgress === undefined) return;
    const elapsedMs = clock.now() - started;
    const rowsPerSec = elapsedMs > 0 ? (count * 1000) / elapsedMs : 0;
    const etaMs =
      options.total !== undefined && rowsPerSec > 0
        ? Math.max(0, ((options.total - count) * 1000) / rowsPerSec)
        : undefined;
    options.onProgress({ rows: count, bytes, elapsedMs, rowsPerSec, etaMs, done });
  };
  const tick = () => {
    if (options.onProgress !== undefined && clock.now() - lastReport >= every) {
      lastReport = clock.now();
      report(false);
    }
  };
  async function* counted(): AsyncIterable<readonly Row[]> {
    for await (const batch of rows) {
      count += batch.length;
      tick();
      yield batch;
    }
  }
  async function* text(): AsyncIterable<string | Uint8Array> {
    if (copy === undefined) {
      yield* BATCH_FORMATS[options.format](counted(), ctx);
      return;
    }
    yield await csvHeader(copy.columns);
    for await (const chunk of copy.chunks) {
      count = copy.rows();
      tick();
      yield chunk;
    }
    count = copy.rows();
  }
  const ctx = {
    source: options.source.name,
    columns,
    exportedAt: new Date(clock.date()).toISOString(),
    ...(options.dialect === undefined ? {} : { dialect: options.dialect }),
    ...(options.table === undefined ? {} : { table: options.table }),
  };
  async function* bytesOut(): AsyncIterable<Buffer> {
    for await (const chunk of text()) {
      const b =
        typeof chunk === 'string'
          ? Buffer.from(chunk, 'utf8')
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      hash.update(b);
      bytes += b.length;
      yield b;
    }
  }
  const target = typeof options.to === 'string' ? createWriteStream(options.to) : options.to;
  await pipeline(Readable.from(bytesOut()), target, {
    end: typeof options.to === 'string',
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  report(true);
  return {
    source: options.source.name,
    format: options.format,
    rows: count,
    bytes,
    sha256: hash.digest('hex'),
    columns,
  };
}

/**
 * A progress line for a terminal: `12,345 rows  8,210 rows/s  ETA 3s`.
 *
 * @example
 * ```ts
 * import { progressLine } from 'bulwark/export';
 * console.log(progressLine({ rows: 1000, bytes: 1, elapsedMs: 500, rowsPerSec: 2000, etaMs: 1500, done: false }));
 * ```
 */
export function progressLine(p: ExportProgress): string {
  const eta = p.etaMs === undefined ? '' : `  ETA ${Math.ceil(p.etaMs / 1000)}s`;
  return `${p.rows.toLocaleString('en')} rows  ${Math.round(p.rowsPerSec).toLocaleString('en')} rows/s  ${(p.bytes / 1048576).toFixed(1)} MB${p.done ? '  done' : eta}`;
}
