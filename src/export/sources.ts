/**
 * Export sources: a query on SQLite (better-sqlite3's row iterator) or PostgreSQL (a
 * server-side cursor, fetched in batches), a durable queue's items or dead letters, and the
 * audit log. Each streams: memory does not grow with the number of rows.
 * @module
 */

import type BetterSqlite3 from 'better-sqlite3';
import type { Pool, PoolClient } from 'pg';
import type { AuditLog } from '../audit/log.js';
import type { AuditFilter } from '../audit/store.js';
import { BulwarkError } from '../core/errors.js';
import type { Queue } from '../durable/queue.js';
import type { ItemState } from '../durable/store.js';
import { copyCsv } from './pg-copy.js';
import { type Column, type CsvCopy, columnsOf, type ExportSource, paged, type Row } from './rows.js';

/**
 * Rows of a query on SQLite, streamed with the statement's iterator.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3';
 * import { sqliteQuerySource } from 'bulwark/export';
 * const db = new Database(':memory:');
 * db.exec("CREATE TABLE t (id INTEGER, name TEXT); INSERT INTO t VALUES (1, 'a')");
 * const source = sqliteQuerySource({ name: 't', db, sql: 'SELECT * FROM t ORDER BY id' });
 * ```
 */
export function sqliteQuerySource(options: {
  name: string;
  db: BetterSqlite3.Database;
  sql: string;
  params?: readonly unknown[];
  columns?: readonly Column[];
}): ExportSource {
  return {
    name: options.name,
    ...(options.columns === undefined ? {} : { columns: options.columns }),
    async *rows() {
      for await (const b of this.batches!()) yield* b;
    },
    async *batches() {
      const stmt = options.db.prepare(options.sql);
      let batch: Row[] = [];
      let n = 0;
      for (const r of stmt.iterate(...(options.params ?? []))) {
        batch.push(r as Row);
        if (batch.length === 512) {
          yield batch;
          batch = [];
          // Let the event loop breathe (and the writer drain) every few thousand rows.
          if (++n % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
      }
      if (batch.length > 0) yield batch;
    },
  };
}

/**
 * Rows of a query on PostgreSQL through a server-side cursor (`DECLARE … CURSOR`, `FETCH n`)
 * inside a read-only transaction: memory holds one batch at a time. CSV exports of a query
 * without parameters whose columns are text, integers, numeric, boolean or uuid take a fast path:
 * `COPY (…) TO STDOUT (FORMAT csv)` with formulas neutralised on the fly (the same bytes).
 *
 * @example
 * ```ts nocheck
 * import pg from 'pg';
 * import { postgresQuerySource } from 'bulwark/export';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const source = postgresQuerySource({ name: 'orders', pool, sql: 'SELECT * FROM orders ORDER BY id' });
 * ```
 */
export function postgresQuerySource(options: {
  name: string;
  pool: Pool;
  sql: string;
  params?: readonly unknown[];
  columns?: readonly Column[];
  /** Rows per FETCH. Default 5 000. */
  batchSize?: number;
  /** Use the COPY fast path for CSV when possible. Default true. */
  copy?: boolean;
}): ExportSource {
  const connect = async (): Promise<PoolClient> => {
    try {
      return await options.pool.connect();
    } catch (cause) {
      throw new BulwarkError(
        'STORE_UNAVAILABLE',
        `Cannot reach PostgreSQL for the export of ${options.name}`,
        { cause },
      );
    }
  };
  async function* batches(): AsyncIterable<readonly Row[]> {
    const c = await connect();
    const cursor = `bulwark_export_${Math.random().toString(36).slice(2, 10)}`;
    let open = false;
    try {
      await c.query('BEGIN READ ONLY');
      open = true;
      await c.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${options.sql}`, [...(options.params ?? [])]);
      const fetch = `FETCH ${options.batchSize ?? 5000} FROM ${cursor}`;
      for (;;) {
        const r = await c.query(fetch);
        if (r.rows.length === 0) break;
        yield r.rows as Row[];
      }
      open = false;
      await c.query('COMMIT');
    } finally {
      // On an error, or a generator closed early (the consumer stopped), end the transaction.
      if (open) await c.query('ROLLBACK').catch(() => {});
      c.release();
    }
  }
  return {
    name: options.name,
    ...(options.columns === undefined ? {} : { columns: options.columns }),
    batches,
    async *rows() {
      for await (const b of batches()) yield* b;
    },
    async copyCsv(): Promise<CsvCopy | undefined> {
      if (options.copy === false || (options.params?.length ?? 0) > 0) return undefined;
      const c = await connect();
      let copy: CsvCopy | undefined;
      try {
        await c.query('BEGIN READ ONLY');
        copy = await copyCsv(c, options.sql);
      } catch (error) {
        await c.query('ROLLBACK').catch(() => {});
        c.release();
        throw error;
      }
      if (copy === undefined) {
        await c.query('ROLLBACK').catch(() => {});
        c.release();
        return undefined;
      }
      const inner = copy.chunks;
      async function* chunks(): AsyncIterable<Uint8Array> {
        let done = false;
        try {
          yield* inner;
          await c.query('COMMIT');
          done = true;
        } finally {
          // Stopped or failed mid-COPY: the connection cannot be reused, so the pool drops it.
          c.release(done ? undefined : new Error(`The export of ${options.name} stopped during COPY`));
        }
      }
      return {
        columns: options.columns?.length === copy.columns.length ? options.columns : copy.columns,
        chunks: chunks(),
        rows: copy.rows,
      };
    },
  };
}

const QUEUE_COLUMNS = columnsOf(
  'id:text state:text attempts:integer priority:integer createdAt:integer deadReason:text payload:json',
);

/**
 * Items of a durable queue (optionally of one state), in id order, paged.
 *
 * @example
 * ```ts
 * import { openQueue, sqliteStore } from 'bulwark/durable';
 * import { queueSource } from 'bulwark/export';
 * const q = await openQueue({ name: 'jobs', store: sqliteStore({ path: ':memory:' }) });
 * const source = queueSource(q, { state: 'dead' });
 * await q.close();
 * ```
 */
export function queueSource(
  queue: Queue<unknown>,
  options: { state?: ItemState; pageSize?: number } = {},
): ExportSource {
  return {
    name: options.state === 'dead' ? `${queue.name}.dead` : queue.name,
    columns: QUEUE_COLUMNS,
    async *rows() {
      const items = paged(
        undefined as string | undefined,
        (after) =>
          queue.list({
            limit: options.pageSize ?? 500,
            ...(options.state === undefined ? {} : { state: options.state }),
            ...(after === undefined ? {} : { after }),
          }),
        (last) => last.id,
      );
      for await (const i of items) {
        const v = i as unknown as Record<string, unknown>;
        yield {
          id: i.id,
          state: v.state,
          attempts: v.attempts,
          priority: v.priority,
          createdAt: v.createdAt,
          deadReason: v.deadReason ?? null,
          payload: i.payload ?? null,
        };
      }
    },
  };
}

const AUDIT_COLUMNS = columnsOf(
  'seq:integer time:integer actor:text action:text resource:text outcome:text tags:text subject:text payloadState:text payload:json hash:text',
);

/**
 * Entries of an audit log matching `filter`, with payloads (purged or unreadable ones say so).
 * With `readableOnly`, entries whose payload was purged or erased are left out.
 *
 * @example
 * ```ts
 * import { openAuditLog } from 'bulwark/audit';
 * import { auditSource } from 'bulwark/export';
 * const log = openAuditLog({ store: 'sqlite::memory:' });
 * const source = auditSource(log, { tag: 'sox' });
 * await log.close();
 * ```
 */
export function auditSource(
  log: AuditLog,
  filter: AuditFilter & { readableOnly?: boolean } = {},
): ExportSource {
  const { readableOnly, ...f } = filter;
  return {
    name: `audit.${log.name}`,
    columns: AUDIT_COLUMNS,
    async *rows() {
      const entries = paged(
        f.afterSeq ?? 0,
        (afterSeq) => log.list({ ...f, afterSeq, limit: 1000, order: 'asc', payloads: true }),
        (last) => last.seq,
      );
      for await (const e of entries) {
        if (readableOnly === true && e.payloadState !== 'present') continue;
        yield { ...e, tags: e.tags.join(','), payload: e.payload ?? null };
      }
    },
  };
}
