/**
 * The PostgreSQL audit store (pg, an optional peer loaded on first use). A batch is one
 * transaction that locks the head row (`SELECT … FOR UPDATE`), so appends from many processes
 * and machines form one chain; entries go in with multi-row INSERTs. A trigger refuses UPDATE
 * and DELETE of entries.
 * @module
 */

import type { Pool, PoolClient } from 'pg';
import { s } from '../core/schema.js';
import { inTransaction } from '../durable/pg-client.js';
import type { AuditEntry, StoredPayload } from './entry.js';
import { GENESIS_HASH } from './entry.js';
import { BulwarkAuditError, loadPeer } from './errors.js';
import * as S from './store.js';

/** Options of `postgresAuditStore`. */
export interface PostgresAuditStoreOptions {
  /** `postgres://user@host:5432/db` (or pass `pool`). */
  readonly connectionString?: string;
  /** Your own pg Pool (not closed by `close()`). */
  readonly pool?: Pool;
  /** Schema of the tables (created if missing). Default `public`. */
  readonly schema?: string;
  /** Table name prefix. Default `bulwark_audit`. */
  readonly table?: string;
}

const IDENT = { pattern: /^[A-Za-z_][A-Za-z0-9_]{0,40}$/, patternRule: 'a plain SQL identifier' };
const optionsSchema = s.object({
  connectionString: s.optional(s.string()),
  pool: s.optional(
    s.custom<Pool>('a pg Pool', (v, p) =>
      typeof v === 'object' && v !== null ? (v as Pool) : s.fail(p, 'a pg Pool', v),
    ),
  ),
  schema: s.optional(s.string(IDENT), 'public'),
  table: s.optional(s.string(IDENT), 'bulwark_audit'),
});

/** Rows per INSERT statement (12 parameters each stays far below PostgreSQL's 65 535). */
const CHUNK = 1000;
/** PostgreSQL's i-th placeholder. */
const pgParam = (i: number): string => `$${i}`;

/**
 * The PostgreSQL audit store.
 *
 * @example
 * ```ts nocheck
 * import { openAuditLog, postgresAuditStore } from 'bulwark/audit';
 * const log = openAuditLog({ store: postgresAuditStore({ connectionString: 'postgres://app@db/app', schema: 'audit' }) });
 * ```
 */
export class PostgresAuditStore implements S.AuditStore {
  readonly description: string;
  readonly #o: PostgresAuditStoreOptions & { schema: string; table: string };
  #pool: Pool | undefined;
  #opening: Promise<void> | undefined;
  readonly #t: string;

  constructor(options: PostgresAuditStoreOptions) {
    this.#o = optionsSchema.parse(options, 'postgresAuditStore') as PostgresAuditStoreOptions & {
      schema: string;
      table: string;
    };
    if (this.#o.connectionString === undefined && this.#o.pool === undefined) {
      throw new BulwarkAuditError(
        'INVALID_STORE_SPEC',
        'postgresAuditStore needs a connectionString or a pool',
      );
    }
    const where = this.#o.connectionString?.replace(/:[^:@/]*@/, ':***@') ?? 'pool';
    this.description = `${where} (${this.#o.schema}.${this.#o.table})`;
    this.#t = `"${this.#o.schema}".${this.#o.table}`;
  }

  init(): Promise<void> {
    this.#opening ??= this.#open();
    return this.#opening;
  }

  async #open(): Promise<void> {
    if (this.#o.pool !== undefined) this.#pool = this.#o.pool;
    else {
      const mod = await loadPeer('pg', async () => await import('pg'), 'postgresAuditStore');
      const PoolCtor = (mod as unknown as { default?: typeof import('pg') }).default?.Pool ?? mod.Pool;
      const pool = new PoolCtor({
        connectionString: this.#o.connectionString,
        max: 4,
        application_name: 'bulwark-audit',
      });
      pool.on('error', () => {});
      this.#pool = pool;
    }
    const t = this.#t;
    const fn = `"${this.#o.schema}".${this.#o.table}_append_only`;
    await this.#tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [t]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS "${this.#o.schema}"`);
      await c.query(`
        CREATE TABLE IF NOT EXISTS ${t}_entries (
          seq BIGINT PRIMARY KEY, v INTEGER NOT NULL, time BIGINT NOT NULL, actor TEXT NOT NULL,
          action TEXT NOT NULL, resource TEXT NOT NULL, outcome TEXT NOT NULL, tags TEXT NOT NULL,
          subject TEXT, payload_digest TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS ${this.#o.table}_entries_time ON ${t}_entries (time);
        CREATE INDEX IF NOT EXISTS ${this.#o.table}_entries_subject ON ${t}_entries (subject) WHERE subject IS NOT NULL;
        CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN RAISE EXCEPTION 'audit entries are append-only'; END $$;
        DROP TRIGGER IF EXISTS ${this.#o.table}_append_only ON ${t}_entries;
        CREATE TRIGGER ${this.#o.table}_append_only BEFORE UPDATE OR DELETE ON ${t}_entries
          FOR EACH ROW EXECUTE FUNCTION ${fn}();
        CREATE TABLE IF NOT EXISTS ${t}_payloads (seq BIGINT PRIMARY KEY, salt BYTEA NOT NULL, body BYTEA NOT NULL, key_id TEXT);
        CREATE TABLE IF NOT EXISTS ${t}_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL);
        INSERT INTO ${t}_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}') ON CONFLICT DO NOTHING;
        CREATE TABLE IF NOT EXISTS ${t}_checkpoints (tree_size BIGINT PRIMARY KEY, body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS ${t}_holds (id TEXT PRIMARY KEY, body TEXT NOT NULL);
      `);
    });
  }

  #ready(): Pool {
    if (this.#pool === undefined) {
      throw new BulwarkAuditError(
        'CLOSED',
        `The audit store ${this.description} is closed or not initialised`,
      );
    }
    return this.#pool;
  }

  /** `work` in a transaction on a pooled client; an unreachable store is `STORE_UNAVAILABLE`. */
  async #tx<T>(work: (c: PoolClient) => Promise<T>): Promise<T> {
    let c: PoolClient;
    try {
      c = await this.#ready().connect();
    } catch (cause) {
      throw new BulwarkAuditError('STORE_UNAVAILABLE', `Cannot reach the audit store ${this.description}`, {
        cause,
      });
    }
    try {
      return await inTransaction(c, 'BEGIN', work);
    } finally {
      c.release();
    }
  }

  async #q<R>(text: string, values: readonly unknown[] = []): Promise<R[]> {
    return (await this.#ready().query(text, values as unknown[])).rows as R[];
  }

  append(batch: readonly S.PreparedEntry[], chain: S.Chainer): Promise<AuditEntry[]> {
    const t = this.#t;
    return this.#tx(async (c) => {
      const h = (await c.query(`SELECT seq, hash FROM ${t}_head WHERE id = 1 FOR UPDATE`))
        .rows[0] as S.AuditHead;
      const entries = chain(S.rowToHead(h), batch);
      for (let i = 0; i < entries.length; i += CHUNK) {
        const n = Math.min(CHUNK, entries.length - i);
        await c.query(
          `INSERT INTO ${t}_entries (${S.ENTRY_COLUMNS.join(',')}) VALUES ${S.valuesSql(n, S.ENTRY_COLUMNS.length, pgParam)}`,
          S.entryParams(entries, i, n),
        );
        const pv = S.payloadParams(entries, batch, i, n);
        if (pv.length > 0)
          await c.query(
            `INSERT INTO ${t}_payloads (seq, salt, body, key_id) VALUES ${S.valuesSql(pv.length / 4, 4, pgParam)}`,
            pv,
          );
      }
      const last = entries[entries.length - 1];
      if (last !== undefined)
        await c.query(`UPDATE ${t}_head SET seq = $1, hash = $2 WHERE id = 1`, [last.seq, last.hash]);
      return entries;
    });
  }

  async head(): Promise<S.AuditHead> {
    return S.rowToHead(
      (await this.#q<S.AuditHead>(`SELECT seq, hash FROM ${this.#t}_head WHERE id = 1`))[0]!,
    );
  }

  scan(fromSeq: number, toSeq: number, pageSize: number): AsyncIterable<AuditEntry[]> {
    return S.scanPages(fromSeq, toSeq, pageSize, (next, to, size) =>
      this.#q<S.EntryRow>(
        `SELECT * FROM ${this.#t}_entries WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
        [next, to, size],
      ),
    );
  }

  async list(filter: S.AuditFilter): Promise<AuditEntry[]> {
    const q = S.filterSql(filter, pgParam, `${this.#t}_payloads`);
    const rows = await this.#q<S.EntryRow>(
      `SELECT e.* FROM ${this.#t}_entries e ${q.where} ORDER BY e.seq ${q.order} LIMIT ${q.limit}`,
      q.params,
    );
    return rows.map(S.rowToEntry);
  }

  async payloads(seqs: readonly number[]): Promise<StoredPayload[]> {
    if (seqs.length === 0) return [];
    const rows = await this.#q<S.PayloadRow>(
      `SELECT * FROM ${this.#t}_payloads WHERE seq = ANY($1::bigint[]) ORDER BY seq`,
      [seqs],
    );
    return rows.map(S.rowToPayload);
  }

  async scanPayloads(afterSeq: number, limit: number): Promise<StoredPayload[]> {
    const rows = await this.#q<S.PayloadRow>(
      `SELECT * FROM ${this.#t}_payloads WHERE seq > $1 ORDER BY seq LIMIT $2`,
      [afterSeq, limit],
    );
    return rows.map(S.rowToPayload);
  }

  async deletePayloads(seqs: readonly number[]): Promise<number> {
    if (seqs.length === 0) return 0;
    const r = await this.#ready().query(`DELETE FROM ${this.#t}_payloads WHERE seq = ANY($1::bigint[])`, [
      seqs,
    ]);
    return r.rowCount ?? 0;
  }

  replacePayloads(rows: readonly { row: StoredPayload; expectKeyId: string | null }[]): Promise<number> {
    return this.#tx(async (c) => {
      let n = 0;
      for (const { row, expectKeyId } of rows) {
        const r = await c.query(
          `UPDATE ${this.#t}_payloads SET body = $1, key_id = $2 WHERE seq = $3 AND key_id IS NOT DISTINCT FROM $4`,
          [row.body, row.keyId, row.seq, expectKeyId],
        );
        n += r.rowCount ?? 0;
      }
      return n;
    });
  }

  async addCheckpoint(c: S.Checkpoint): Promise<void> {
    await this.#q(
      `INSERT INTO ${this.#t}_checkpoints (tree_size, body) VALUES ($1, $2) ON CONFLICT (tree_size) DO UPDATE SET body = EXCLUDED.body`,
      [c.treeSize, JSON.stringify(c)],
    );
  }

  async checkpoints(): Promise<S.Checkpoint[]> {
    const rows = await this.#q<{ body: string }>(
      `SELECT body FROM ${this.#t}_checkpoints ORDER BY tree_size`,
    );
    return rows.map((r) => JSON.parse(r.body) as S.Checkpoint);
  }

  async putHold(h: S.LegalHold): Promise<void> {
    await this.#q(
      `INSERT INTO ${this.#t}_holds (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body`,
      [h.id, JSON.stringify(h)],
    );
  }

  async deleteHold(id: string): Promise<boolean> {
    const r = await this.#ready().query(`DELETE FROM ${this.#t}_holds WHERE id = $1`, [id]);
    return (r.rowCount ?? 0) > 0;
  }

  async holds(): Promise<S.LegalHold[]> {
    const rows = await this.#q<{ body: string }>(`SELECT body FROM ${this.#t}_holds ORDER BY id`);
    return rows.map((r) => JSON.parse(r.body) as S.LegalHold);
  }

  async close(): Promise<void> {
    await this.#opening?.catch(() => {});
    const pool = this.#pool;
    this.#pool = undefined;
    if (pool !== undefined && this.#o.pool === undefined) await pool.end();
  }
}

/**
 * Creates a PostgreSQL audit store.
 *
 * @example
 * ```ts nocheck
 * import { postgresAuditStore } from 'bulwark/audit';
 * const store = postgresAuditStore({ connectionString: process.env.DATABASE_URL, schema: 'audit' });
 * ```
 */
export function postgresAuditStore(options: PostgresAuditStoreOptions): PostgresAuditStore {
  return new PostgresAuditStore(options);
}
