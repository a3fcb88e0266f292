/**
 * The PostgreSQL store of a sync server. One schema holds `records` (current state of every
 * record, with its change cursor and per-client idempotency marks; primary key `key` =
 * `<entity>/<id>`) and `meta` (the purge horizon). A push is one transaction holding a per-schema advisory lock,
 * so cursors are assigned in commit order and a pull (`cursor > $1 ORDER BY cursor`) never skips
 * a change. Batches use set-based statements (`unnest`), a handful per push whatever its size.
 * `pg` is an optional peer dependency, loaded on first use (or pass your own `pg.Pool`).
 * @module
 */

import type { Pool, PoolClient } from 'pg';
import { s } from '../core/schema.js';
import { loadPgPool } from '../durable/peers.js';
import { inTransaction } from '../durable/pg-client.js';
import { BulwarkSyncError } from './errors.js';
import type { SyncRecord } from './record.js';
import {
  type ChangedRecord,
  keyOf,
  type PullPage,
  type PushTx,
  type StoredRecord,
  type SyncServerStore,
} from './server-store.js';

/** What a missing `pg` package is. */
const NO_PG = 'postgresSyncStore needs the `pg` package: npm install pg';

/** Options of `postgresSyncStore()`. */
export interface PostgresSyncStoreOptions {
  /** `postgres://user@host:port/db`. Ignored when `pool` is given. */
  connectionString?: string;
  /** Your own `pg.Pool` (never closed by the store). */
  pool?: Pool;
  /** Schema of the tables (created by `init()`). Default `bulwark_sync`. */
  schema?: string;
  /** Connections of the store's own pool. Default 10. */
  poolSize?: number;
  /** Client-side limit per statement (own pool only), ms. Default 30 000. */
  queryTimeoutMs?: number;
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
const optionsSchema = s.object({
  connectionString: s.optional(s.string()),
  pool: s.optional(s.unknown()),
  schema: s.optional(
    s.string({ pattern: IDENT, patternRule: 'a lower-case SQL identifier' }),
    'bulwark_sync',
  ),
  poolSize: s.optional(s.int({ min: 1, max: 1_000 }), 10),
  queryTimeoutMs: s.optional(s.duration({ positive: true }), 30_000),
});

function unavailable(error: unknown): never {
  if (error instanceof BulwarkSyncError) throw error;
  throw new BulwarkSyncError(
    'STORE_UNAVAILABLE',
    `The sync store (PostgreSQL) failed: ${error instanceof Error ? error.message : String(error)}; retry later`,
    { cause: error },
  );
}

interface RecordRow {
  marks?: Record<string, number>;
  entity: string;
  id: string;
  fields: Record<string, unknown>;
  stamps: Record<string, string>;
  deleted: string | null;
  version: string;
  cursor: string;
}

function toRecord(r: RecordRow): SyncRecord {
  return {
    entity: r.entity,
    id: r.id,
    fields: r.fields,
    stamps: r.stamps,
    deleted: r.deleted,
    version: Number(r.version),
  };
}

/**
 * A sync server store on PostgreSQL.
 *
 * @example
 * ```ts nocheck
 * import { postgresSyncStore, syncServer } from 'bulwark/sync';
 * const server = syncServer({ store: postgresSyncStore({ connectionString: process.env.DATABASE_URL, schema: 'sync' }) });
 * await server.store.init();
 * ```
 */
export function postgresSyncStore(
  options: PostgresSyncStoreOptions,
): SyncServerStore & { dropSchema(): Promise<void> } {
  const o = optionsSchema.parse(options, 'postgresSyncStore');
  const q = `"${o.schema}"`;
  let pool: Pool | undefined = o.pool as Pool | undefined;
  const own = pool === undefined;
  let poolPromise: Promise<Pool> | undefined;
  let ready: Promise<void> | undefined;

  const getPool = (): Promise<Pool> => {
    if (pool !== undefined) return Promise.resolve(pool);
    poolPromise ??= (async () => {
      const Ctor = await loadPgPool((cause) => new BulwarkSyncError('STORE_UNAVAILABLE', NO_PG, { cause }));
      const p = new Ctor({
        ...(o.connectionString !== undefined ? { connectionString: o.connectionString } : {}),
        max: o.poolSize,
        query_timeout: o.queryTimeoutMs,
      });
      p.on('error', () => {});
      pool = p;
      return p;
    })();
    return poolPromise;
  };

  const withClient = async <T>(fn: (c: PoolClient) => Promise<T>): Promise<T> => {
    let c: PoolClient;
    try {
      c = await (await getPool()).connect();
    } catch (error) {
      return unavailable(error);
    }
    let broken = false;
    try {
      return await fn(c);
    } catch (error) {
      broken = !(error instanceof BulwarkSyncError) && (error as { code?: string }).code === undefined;
      throw error;
    } finally {
      c.release(broken);
    }
  };

  const inTx = <T>(fn: (c: PoolClient) => Promise<T>): Promise<T> =>
    withClient((c) =>
      // BEGIN and the lock in one round trip (simple protocol; the schema name is a checked identifier).
      inTransaction(
        c,
        `BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('bulwark.sync.${o.schema}', 0))`,
        fn,
      ),
    ).catch(unavailable);

  const init = (): Promise<void> => {
    ready ??= inTx(async (c) => {
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${q}.records (
        key text PRIMARY KEY, entity text NOT NULL, id text NOT NULL, fields jsonb NOT NULL, stamps jsonb NOT NULL,
        deleted text, deleted_at bigint, version bigint NOT NULL, cursor bigint NOT NULL, marks jsonb NOT NULL)`);
      await c.query(`CREATE INDEX IF NOT EXISTS records_cursor ON ${q}.records (cursor)`);
      await c.query(
        `CREATE INDEX IF NOT EXISTS records_tombstones ON ${q}.records (deleted_at) WHERE deleted_at IS NOT NULL`,
      );
      await c.query(`CREATE TABLE IF NOT EXISTS ${q}.meta (k text PRIMARY KEY, v bigint NOT NULL)`);
      await c.query(`CREATE SEQUENCE IF NOT EXISTS ${q}.cursor_seq`);
      await c.query(`INSERT INTO ${q}.meta (k, v) VALUES ('horizon', 0) ON CONFLICT DO NOTHING`);
    });
    ready.catch(() => {
      ready = undefined;
    });
    return ready;
  };

  const txOf = (c: PoolClient): PushTx => ({
    async read(keys) {
      // An index scan on the one-column primary key (`key` = `<entity>/<id>`; entity names have
      // no `/`), whatever the table's statistics.
      const r = await c.query<RecordRow>(
        `SELECT entity, id, fields, stamps, deleted, version, cursor, marks FROM ${q}.records WHERE key = ANY($1::text[])`,
        [keys.map((k) => `${k.entity}/${k.id}`)],
      );
      const out = new Map<string, StoredRecord>();
      for (const row of r.rows)
        out.set(keyOf(row.entity, row.id), { record: toRecord(row), marks: row.marks ?? {} });
      return out;
    },
    async write(records) {
      await c.query(
        `INSERT INTO ${q}.records (key, entity, id, fields, stamps, deleted, deleted_at, version, marks, cursor)
         SELECT e || '/' || i, e, i, f::jsonb, st::jsonb, d, da, v, m::jsonb, nextval('${o.schema}.cursor_seq')
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[])
           AS t(e, i, f, st, d, da, v, m)
         ON CONFLICT (key) DO UPDATE SET fields = EXCLUDED.fields, stamps = EXCLUDED.stamps, deleted = EXCLUDED.deleted,
           deleted_at = EXCLUDED.deleted_at, version = EXCLUDED.version, marks = EXCLUDED.marks, cursor = EXCLUDED.cursor`,
        [
          records.map((w) => w.record.entity),
          records.map((w) => w.record.id),
          records.map((w) => JSON.stringify(w.record.fields)),
          records.map((w) => JSON.stringify(w.record.stamps)),
          records.map((w) => w.record.deleted),
          records.map((w) => w.deletedAt),
          records.map((w) => w.record.version),
          records.map((w) => JSON.stringify(w.marks)),
        ],
      );
    },
  });

  return {
    description: `postgres (schema ${o.schema})`,
    init,
    async push(fn) {
      await init();
      return inTx((c) => fn(txOf(c)));
    },
    async pull(after, limit): Promise<PullPage> {
      await init();
      return withClient(async (c) => {
        const r = await c.query<RecordRow>(
          `SELECT entity, id, fields, stamps, deleted, version, cursor FROM ${q}.records WHERE cursor > $1 ORDER BY cursor LIMIT $2`,
          [after, limit],
        );
        const h = await c.query<{ v: string }>(`SELECT v FROM ${q}.meta WHERE k = 'horizon'`);
        const changes: ChangedRecord[] = r.rows.map((row) => ({
          ...toRecord(row),
          cursor: Number(row.cursor),
        }));
        return { changes, horizon: Number(h.rows[0]?.v ?? 0) };
      }).catch(unavailable);
    },
    async sweep(tombstonesBefore) {
      await init();
      return inTx(async (c) => {
        const r = await c.query<{ n: string; m: string | null }>(
          `WITH gone AS (DELETE FROM ${q}.records WHERE deleted_at IS NOT NULL AND deleted_at < $1 AND fields = '{}'::jsonb RETURNING cursor)
           SELECT count(*) AS n, max(cursor) AS m FROM gone`,
          [tombstonesBefore],
        );
        const m = r.rows[0]?.m;
        if (m !== null && m !== undefined)
          await c.query(`UPDATE ${q}.meta SET v = GREATEST(v, $1) WHERE k = 'horizon'`, [m]);
        return Number(r.rows[0]?.n ?? 0);
      });
    },
    async close() {
      if (own && pool !== undefined) await pool.end().catch(() => {});
    },
    async dropSchema() {
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS ${q} CASCADE`)).catch(unavailable);
      ready = undefined;
    },
  };
}
