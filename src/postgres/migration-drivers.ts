/**
 * Where migrations are applied and recorded: PostgreSQL (one session holding an advisory lock,
 * each migration in its own transaction) and SQLite (one `BEGIN IMMEDIATE` transaction holding
 * the write lock, each migration in a savepoint). Drivers are loaded with `import()` (optional
 * peers `pg` and `better-sqlite3`).
 * @module
 */

import { ConfigError } from '../core/errors.js';
import { MigrationError } from './errors.js';
import type { Migration } from './migration-files.js';
import { loadPg } from './pool.js';

/** A migration recorded as applied. */
export interface AppliedMigration {
  readonly version: string;
  readonly name: string;
  readonly checksum: string;
  /** ISO time it was applied. */
  readonly appliedAt: string;
  readonly durationMs: number;
}

/** One step: a migration's up or down part. */
export interface MigrationStep {
  readonly migration: Migration;
  readonly direction: 'up' | 'down';
}

/** What the migrator needs from a database. */
export interface MigrationDriver {
  readonly dialect: 'postgres' | 'sqlite';
  /** Waits for the cross-process migration lock, then makes sure the history table exists. */
  lock(): Promise<void>;
  unlock(): Promise<void>;
  applied(): Promise<AppliedMigration[]>;
  /** Runs a step and records it (in one transaction where the statement allows). */
  apply(step: MigrationStep): Promise<number>;
  close(): Promise<void>;
}

/** Options shared by the drivers. */
export interface DriverOptions {
  /** The history table. Default `bulwark_migrations`. */
  readonly table: string;
  /** PostgreSQL: the schema migrations run in (created if absent; it becomes the search_path). */
  readonly schema?: string | undefined;
  /** Longest wait for the migration lock, ms. */
  readonly lockTimeoutMs: number;
}

/** Quotes an SQL identifier. @internal */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function failed(step: MigrationStep, error: unknown, rolledBack: boolean): MigrationError {
  const { migration, direction } = step;
  const msg = error instanceof Error ? error.message : String(error);
  return new MigrationError(
    'MIGRATION_FAILED',
    migration.id,
    `Migration ${migration.id} (${direction}) failed: ${msg}. ${
      rolledBack
        ? 'It ran in a transaction and was rolled back: fix the file and run again.'
        : 'It ran outside a transaction, so some of its statements may have been applied: inspect the schema, repair by hand, then run again.'
    }`,
    { cause: error },
  );
}

interface PgClient {
  connect(): Promise<void>;
  // biome-ignore lint/suspicious/noExplicitAny: rows of arbitrary queries
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
  end(): Promise<void>;
  on(event: 'error', l: (e: Error) => void): unknown;
}

/** The error of a migration lock not taken within `lockTimeoutMs`; `holder` says who held it. */
function lockNotTaken(holder: string, lockTimeoutMs: number, cause: unknown): MigrationError {
  return new MigrationError(
    'MIGRATION_FAILED',
    '(lock)',
    `${holder} for longer than ${lockTimeoutMs} ms; wait for it to finish (or raise lockTimeoutMs)`,
    { cause },
  );
}

/** A PostgreSQL driver on one session (the advisory lock is held by that session). */
export async function postgresDriver(connectionString: string, o: DriverOptions): Promise<MigrationDriver> {
  const pg = (await loadPg()) as unknown as { Client: new (c: { connectionString: string }) => PgClient };
  const client = new pg.Client({ connectionString });
  client.on('error', () => {});
  await client.connect();
  const table = quoteIdent(o.table);
  const lockKey = `bulwark_migrations:${o.schema ?? ''}.${o.table}`;
  const now = () => performance.now();
  return {
    dialect: 'postgres',
    async lock() {
      await client.query(`SET lock_timeout = ${Math.ceil(o.lockTimeoutMs)}`);
      try {
        await client.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey]);
      } catch (error) {
        throw lockNotTaken('Another migrator held the migration lock', o.lockTimeoutMs, error);
      }
      await client.query('SET lock_timeout = 0');
      if (o.schema !== undefined) {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(o.schema)}`);
        await client.query(`SET search_path TO ${quoteIdent(o.schema)}`);
      }
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${table} (version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL)`,
      );
    },
    async unlock() {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]);
    },
    async applied() {
      const { rows } = await client.query(
        `SELECT version, name, checksum, applied_at, duration_ms FROM ${table}`,
      );
      return rows.map((r) => ({
        version: r.version as string,
        name: r.name as string,
        checksum: r.checksum as string,
        appliedAt: (r.applied_at as Date).toISOString(),
        durationMs: r.duration_ms as number,
      }));
    },
    async apply(step) {
      const m = step.migration;
      const sql = step.direction === 'up' ? m.up : m.down;
      const inTx = step.direction === 'up' ? m.upInTransaction : m.downInTransaction;
      const began = now();
      const record = async (ms: number) => {
        if (step.direction === 'up') {
          await client.query(
            `INSERT INTO ${table} (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)`,
            [m.version, m.name, m.checksum, Math.round(ms)],
          );
        } else {
          await client.query(`DELETE FROM ${table} WHERE version = $1`, [m.version]);
        }
      };
      if (!inTx) {
        try {
          await client.query(sql);
        } catch (error) {
          throw failed(step, error, false);
        }
        const ms = now() - began;
        await record(ms);
        return ms;
      }
      await client.query('BEGIN');
      try {
        await client.query(sql);
        const ms = now() - began;
        await record(ms);
        await client.query('COMMIT');
        return ms;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw failed(step, error, true);
      }
    },
    async close() {
      await client.end().catch(() => {});
    },
  };
}

interface SqliteDb {
  exec(sql: string): unknown;
  pragma(sql: string): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: rows of arbitrary queries
  prepare(sql: string): { run(...args: unknown[]): unknown; all(...args: unknown[]): any[] };
  readonly inTransaction: boolean;
  close(): void;
}

/** Loads better-sqlite3 (an optional peer). @internal */
export async function loadSqlite(): Promise<new (path: string) => SqliteDb> {
  try {
    const m = (await import('better-sqlite3')) as unknown as { default: new (path: string) => SqliteDb };
    return m.default;
  } catch (error) {
    throw Object.assign(
      new ConfigError(
        'better-sqlite3',
        'the installed "better-sqlite3" package',
        undefined,
        'SQLite migrations and backups need the "better-sqlite3" package: npm install better-sqlite3',
      ),
      { cause: error },
    );
  }
}

/** A SQLite driver: the write lock (BEGIN IMMEDIATE) is the migration lock; each migration is a savepoint. */
export async function sqliteDriver(path: string, o: DriverOptions): Promise<MigrationDriver> {
  const Database = await loadSqlite();
  const db = new Database(path);
  const table = quoteIdent(o.table);
  return {
    dialect: 'sqlite',
    async lock() {
      db.pragma(`busy_timeout = ${Math.ceil(o.lockTimeoutMs)}`);
      try {
        db.exec('BEGIN IMMEDIATE');
      } catch (error) {
        throw lockNotTaken('Another writer held the SQLite database', o.lockTimeoutMs, error);
      }
      db.exec(
        `CREATE TABLE IF NOT EXISTS ${table} (version TEXT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL, duration_ms INTEGER NOT NULL)`,
      );
    },
    async unlock() {
      if (db.inTransaction) db.exec('COMMIT');
    },
    async applied() {
      return db
        .prepare(`SELECT version, name, checksum, applied_at, duration_ms FROM ${table}`)
        .all()
        .map((r) => ({
          version: r.version as string,
          name: r.name as string,
          checksum: r.checksum as string,
          appliedAt: r.applied_at as string,
          durationMs: r.duration_ms as number,
        }));
    },
    async apply(step) {
      const m = step.migration;
      const began = performance.now();
      db.exec('SAVEPOINT bulwark_migration');
      try {
        db.exec(step.direction === 'up' ? m.up : m.down);
        const ms = performance.now() - began;
        if (step.direction === 'up') {
          db.prepare(
            `INSERT INTO ${table} (version, name, checksum, applied_at, duration_ms) VALUES (?, ?, ?, ?, ?)`,
          ).run(m.version, m.name, m.checksum, new Date().toISOString(), Math.round(ms));
        } else {
          db.prepare(`DELETE FROM ${table} WHERE version = ?`).run(m.version);
        }
        db.exec('RELEASE bulwark_migration');
        return ms;
      } catch (error) {
        db.exec('ROLLBACK TO bulwark_migration');
        db.exec('RELEASE bulwark_migration');
        throw failed(step, error, true);
      }
    },
    async close() {
      if (db.inTransaction) db.exec('ROLLBACK');
      db.close();
    },
  };
}

/** Opens the driver for `db`: `postgres://…` / `postgresql://…`, or `sqlite:PATH`. @internal */
export function openDriver(db: string, o: DriverOptions): Promise<MigrationDriver> {
  if (/^postgres(ql)?:\/\//.test(db)) return postgresDriver(db, o);
  if (db.startsWith('sqlite:')) return sqliteDriver(db.slice('sqlite:'.length), o);
  throw new ConfigError('migrator.db', 'postgres://… or sqlite:PATH', db);
}
