/**
 * The idempotency records of store-and-forward (draft-ietf-httpapi-idempotency-key-header): one row
 * per route + Idempotency-Key with the payload's fingerprint, its state (`inflight` while the first
 * request runs, then `pending` / `delivered` / `dead`), the operation id of its status URL and the
 * stored response. SQLite in `dataDir` for one gateway; PostgreSQL (beside the queue, in its schema)
 * for a fleet, so any instance answers 409/422, replays, and status URLs. A claim is atomic (one
 * upsert), so two instances never both run the first request of a key.
 * @module
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'pg';

/** One record. */
export interface IdempotencyRecord {
  readonly scope: string;
  readonly fingerprint: string;
  readonly state: 'inflight' | 'pending' | 'delivered' | 'dead';
  readonly opId: string;
  readonly status: number | null;
  readonly headers: Record<string, string> | null;
  readonly body: Buffer | null;
  readonly expires: number;
}

/** An outcome to record. */
export interface Settlement {
  readonly scope: string;
  /** '' keeps the fingerprint already stored. */
  readonly fingerprint: string;
  readonly state: 'pending' | 'delivered' | 'dead';
  readonly opId: string;
  readonly status: number | null;
  readonly headers: Record<string, string> | null;
  readonly body: Buffer | null;
  readonly expires: number;
  /** Write only over an `inflight` row (a `pending` never overwrites a delivery made meanwhile). */
  readonly overInflightOnly?: boolean;
}

/** Where the records live. */
export interface RecordStore {
  /**
   * Claims `scope` for a first request (writes an `inflight` row until `expires`) and returns null,
   * or returns the live record that holds it.
   */
  claim(
    scope: string,
    fingerprint: string,
    opId: string,
    expires: number,
    now: number,
  ): Promise<IdempotencyRecord | null>;
  /** The record of an operation id (a status URL). */
  byOp(opId: string): Promise<IdempotencyRecord | undefined>;
  settle(s: Settlement): Promise<void>;
  /** Drops an `inflight` claim (the first request failed without an outcome to keep). */
  release(scope: string): Promise<void>;
  /** Deletes expired records. */
  purge(now: number): Promise<void>;
  close(): Promise<void>;
}

interface Row {
  scope: string;
  fingerprint: string;
  state: IdempotencyRecord['state'];
  op_id: string;
  status: number | null;
  headers: string | null;
  body: Buffer | null;
  expires: number | string;
}

const toRecord = (r: Row | undefined): IdempotencyRecord | undefined =>
  r === undefined
    ? undefined
    : {
        scope: r.scope,
        fingerprint: r.fingerprint,
        state: r.state,
        opId: r.op_id,
        status: r.status,
        headers: r.headers === null ? null : (JSON.parse(r.headers) as Record<string, string>),
        body: r.body,
        expires: Number(r.expires),
      };

const COLUMNS = '(scope, fingerprint, state, op_id, status, headers, body, expires)';
/** The SQL both databases share (`$n` placeholders, each once and in order). */
function statements(table: string) {
  const update = (where: string) =>
    `ON CONFLICT (scope) DO UPDATE SET fingerprint = excluded.fingerprint, state = 'inflight', op_id = excluded.op_id, status = NULL, headers = NULL, body = NULL, expires = excluded.expires WHERE ${where}`;
  return {
    create: `CREATE TABLE IF NOT EXISTS ${table} (scope TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL, op_id TEXT NOT NULL, status INTEGER, headers TEXT, body BYTEA, expires BIGINT NOT NULL)`,
    claim: `INSERT INTO ${table} AS t ${COLUMNS} VALUES ($1, $2, 'inflight', $3, NULL, NULL, NULL, $4) ${update('t.expires < $5')}`,
    settle: (guard: boolean) =>
      `INSERT INTO ${table} AS t ${COLUMNS} VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (scope) DO UPDATE SET fingerprint = CASE WHEN excluded.fingerprint = '' THEN t.fingerprint ELSE excluded.fingerprint END, state = excluded.state, op_id = excluded.op_id, status = excluded.status, headers = excluded.headers, body = excluded.body, expires = excluded.expires${guard ? " WHERE t.state = 'inflight'" : ''}`,
    get: `SELECT * FROM ${table} WHERE scope = $1`,
    byOp: `SELECT * FROM ${table} WHERE op_id = $1`,
    release: `DELETE FROM ${table} WHERE scope = $1 AND state = 'inflight'`,
    purge: `DELETE FROM ${table} WHERE expires < $1`,
  };
}

const settleArgs = (s: Settlement) => [
  s.scope,
  s.fingerprint,
  s.state,
  s.opId,
  s.status,
  s.headers === null ? null : JSON.stringify(s.headers),
  s.body,
  s.expires,
];

/**
 * The records in SQLite (`<dataDir>/gateway-idempotency.db`, WAL, synchronous FULL): one gateway.
 *
 * @example
 * ```ts
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { sqliteRecords } from 'bulwark/gateway';
 * const records = await sqliteRecords(mkdtempSync(join(tmpdir(), 'gw-')));
 * console.log(await records.claim('route\u001fkey-1', 'fp', 'op-1', Date.now() + 1000, Date.now())); // null
 * console.log((await records.claim('route\u001fkey-1', 'fp', 'op-2', Date.now() + 1000, Date.now()))?.state); // inflight
 * await records.close();
 * ```
 */
export async function sqliteRecords(dataDir: string): Promise<RecordStore> {
  mkdirSync(dataDir, { recursive: true });
  const Sqlite = (await import('better-sqlite3')).default;
  const db = new Sqlite(join(dataDir, 'gateway-idempotency.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  const sql = statements('idempotency');
  // Every statement uses $1, $2, … once each, in order: SQLite takes them as plain `?`.
  const q = (text: string) => db.prepare(text.replace(/\$\d/g, '?'));
  db.exec(sql.create.replace('BYTEA', 'BLOB'));
  db.exec('CREATE INDEX IF NOT EXISTS idempotency_op ON idempotency(op_id)');
  const claim = q(sql.claim);
  const get = q(sql.get);
  const byOp = q(sql.byOp);
  const settle = q(sql.settle(false));
  const settleGuarded = q(sql.settle(true));
  const release = q(sql.release);
  const purge = q(sql.purge);
  return {
    async claim(scope, fingerprint, opId, expires, now) {
      if (claim.run(scope, fingerprint, opId, expires, now).changes === 1) return null;
      return toRecord(get.get(scope) as Row | undefined) ?? null;
    },
    async byOp(opId) {
      return toRecord(byOp.get(opId) as Row | undefined);
    },
    async settle(s) {
      (s.overInflightOnly === true ? settleGuarded : settle).run(...settleArgs(s));
    },
    async release(scope) {
      release.run(scope);
    },
    async purge(now) {
      purge.run(now);
    },
    async close() {
      db.close();
    },
  };
}

/**
 * The records in PostgreSQL, table `<schema>.gateway_idempotency` (created when missing), through
 * `pool` (owned by the caller): every gateway of the fleet sees the same records.
 *
 * @example
 * ```ts nocheck
 * import pg from 'pg';
 * import { postgresRecords } from 'bulwark/gateway';
 * const records = await postgresRecords(new pg.Pool({ connectionString: 'postgres://localhost/app' }), 'bulwark');
 * ```
 */
export async function postgresRecords(pool: Pool, schema: string): Promise<RecordStore> {
  const table = `"${schema}".gateway_idempotency`;
  const sql = statements(table);
  // Instances starting together: CREATE … IF NOT EXISTS races in PostgreSQL, so one at a time.
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`bulwark-gateway:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(sql.create);
    await client.query(`CREATE INDEX IF NOT EXISTS gateway_idempotency_op ON ${table} (op_id)`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
  const one = async (text: string, args: unknown[]) => (await pool.query<Row>(text, args)).rows[0];
  const claim = async (
    scope: string,
    fingerprint: string,
    opId: string,
    expires: number,
    now: number,
  ): Promise<IdempotencyRecord | null> => {
    const r = await pool.query(sql.claim, [scope, fingerprint, opId, expires, now]);
    if (r.rowCount === 1) return null;
    // Deleted between the two statements (released or purged): claim again.
    return toRecord(await one(sql.get, [scope])) ?? claim(scope, fingerprint, opId, expires, now);
  };
  return {
    claim,
    async byOp(opId) {
      return toRecord(await one(sql.byOp, [opId]));
    },
    async settle(s) {
      await pool.query(sql.settle(s.overInflightOnly === true), settleArgs(s));
    },
    async release(scope) {
      await pool.query(sql.release, [scope]);
    },
    async purge(now) {
      await pool.query(sql.purge, [now]);
    },
    async close() {},
  };
}
