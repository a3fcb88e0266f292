/**
 * A PostgreSQL subject key store: one table (in a schema of your choice) holding each subject's
 * key wrapped by the master keyring, so the keys live beside PostgreSQL data and backups. The
 * pool is yours: `close()` does not end it.
 * @module
 */

import type { Pool } from 'pg';
import { BulwarkKeyringError } from './errors.js';
import type { SubjectKeyRecord, SubjectKeyStore } from './subject-keys.js';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/;

interface Row {
  subject: string;
  generation: number | string;
  key_id: string | null;
  wrapped: Buffer | null;
  erased_at: string | number | null;
}

const toRecord = (r: Row): SubjectKeyRecord => ({
  subject: r.subject,
  generation: Number(r.generation),
  keyId: r.key_id,
  wrapped: r.wrapped,
  erasedAt: r.erased_at === null ? null : Number(r.erased_at),
});

/**
 * A PostgreSQL subject key store.
 *
 * @example
 * ```ts nocheck
 * import pg from 'pg';
 * import { postgresSubjectKeyStore, subjectKeys, keyringFromEnv } from 'bulwark/keyring';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const keys = subjectKeys({ keyring: keyringFromEnv('BULWARK_KEYS'), store: postgresSubjectKeyStore({ pool, schema: 'privacy' }) });
 * ```
 */
export function postgresSubjectKeyStore(options: {
  pool: Pool;
  /** Schema (created if missing). Default `public`. */
  schema?: string;
  /** Table. Default `bulwark_subject_keys`. */
  table?: string;
}): SubjectKeyStore {
  const schema = options.schema ?? 'public';
  const table = options.table ?? 'bulwark_subject_keys';
  for (const [what, v] of [
    ['schema', schema],
    ['table', table],
  ] as const) {
    if (!IDENT.test(v))
      throw new BulwarkKeyringError(
        'SOURCE_FAILED',
        `postgresSubjectKeyStore: ${what} must be a plain SQL identifier`,
      );
  }
  const t = `"${schema}"."${table}"`;
  const pool = options.pool;
  const q = async <R extends object>(sql: string, params: unknown[] = []) => {
    try {
      return await pool.query<R>(sql, params);
    } catch (cause) {
      throw new BulwarkKeyringError(
        'SOURCE_FAILED',
        `The subject key store ${schema}.${table} on PostgreSQL failed: ${(cause as Error).message}`,
        { cause },
      );
    }
  };
  return {
    async init() {
      // Concurrent first starts may race on CREATE … IF NOT EXISTS (a unique violation): retry once.
      const ddl = `CREATE SCHEMA IF NOT EXISTS "${schema}";
        CREATE TABLE IF NOT EXISTS ${t} (subject text PRIMARY KEY, generation integer NOT NULL,
          key_id text, wrapped bytea, erased_at bigint)`;
      await q(ddl).catch(() => q(ddl));
    },
    async get(subject) {
      const r = await q<Row>(`SELECT * FROM ${t} WHERE subject = $1`, [subject]);
      return r.rows[0] === undefined ? undefined : toRecord(r.rows[0]);
    },
    async put(r) {
      await q(
        `INSERT INTO ${t} (subject, generation, key_id, wrapped, erased_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (subject) DO UPDATE SET generation = EXCLUDED.generation, key_id = EXCLUDED.key_id,
           wrapped = EXCLUDED.wrapped, erased_at = EXCLUDED.erased_at`,
        [r.subject, r.generation, r.keyId, r.wrapped, r.erasedAt],
      );
    },
    async create(r) {
      const res = await q(
        `INSERT INTO ${t} AS k (subject, generation, key_id, wrapped, erased_at) VALUES ($1, $2, $3, $4, NULL)
         ON CONFLICT (subject) DO UPDATE SET generation = EXCLUDED.generation, key_id = EXCLUDED.key_id,
           wrapped = EXCLUDED.wrapped, erased_at = NULL
         WHERE k.wrapped IS NULL AND k.generation = EXCLUDED.generation - 1`,
        [r.subject, r.generation, r.keyId, r.wrapped],
      );
      return res.rowCount === 1;
    },
    async list(after, limit) {
      const r = await q<Row>(`SELECT * FROM ${t} WHERE subject > $1 ORDER BY subject LIMIT $2`, [
        after,
        limit,
      ]);
      return r.rows.map(toRecord);
    },
    async close() {},
  };
}
