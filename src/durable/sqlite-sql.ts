/**
 * The SQLite store's SQL: the table and its indexes, the row shape, and the prepared statements.
 * @module
 */

import type BetterSqlite3 from 'better-sqlite3';
import type { ItemRow } from './rows.js';
import type { NewItem } from './store.js';

/** A prepared statement. @internal */
export type Stmt = BetterSqlite3.Statement<unknown[], unknown>;

/** An items row. @internal */
export type Row = ItemRow;

/** The DDL of the items table `t` and its keys table (idempotent). @internal */
export function sqliteSchema(t: string): string {
  return `
      CREATE TABLE IF NOT EXISTS ${t} (
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        payload BLOB NOT NULL,
        key_id TEXT,
        key TEXT,
        priority INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        lease_token TEXT,
        lease_until INTEGER,
        last_error TEXT,
        dead_reason TEXT,
        redrives INTEGER NOT NULL DEFAULT 0,
        last_redrive_at INTEGER,
        PRIMARY KEY (queue, id)
      );
      CREATE UNIQUE INDEX IF NOT EXISTS ${t}_key ON ${t} (queue, key) WHERE key IS NOT NULL;
      CREATE INDEX IF NOT EXISTS ${t}_ready ON ${t} (queue, priority DESC, run_at, id) WHERE state = 'pending';
      CREATE INDEX IF NOT EXISTS ${t}_lease ON ${t} (queue, lease_until) WHERE state = 'active';
      CREATE INDEX IF NOT EXISTS ${t}_completed ON ${t} (queue, updated_at, id) WHERE state = 'completed';
      CREATE INDEX IF NOT EXISTS ${t}_dead ON ${t} (queue, updated_at, id) WHERE state = 'dead';
      CREATE TABLE IF NOT EXISTS ${t}_keys (
        queue TEXT NOT NULL,
        key TEXT NOT NULL,
        item_id TEXT NOT NULL,
        completed_at INTEGER NOT NULL,
        PRIMARY KEY (queue, key)
      );
      CREATE TABLE IF NOT EXISTS ${t}_paused (queue TEXT PRIMARY KEY, paused_at INTEGER NOT NULL);
    `;
}

/**
 * Inserts one new item of `queue` (pending, no attempt yet, updated at `now`) with the `insert`
 * statement of `sqliteStatements`. @internal
 *
 * @example
 * ```ts nocheck
 * insertItem(statements.insert!, 'emails', item, Date.now());
 * ```
 */
export function insertItem(insert: Stmt, queue: string, it: NewItem, now: number): void {
  insert.run(
    queue,
    it.id,
    it.payload,
    it.keyId,
    it.key,
    it.priority,
    it.runAt,
    it.maxAttempts,
    it.createdAt,
    now,
  );
}

/** The statements of the store on table `t`, prepared once. @internal */
export function sqliteStatements(db: BetterSqlite3.Database, t: string): Record<string, Stmt> {
  const p = (sql: string): Stmt => db.prepare(sql);
  const fence = `queue = ? AND id = ? AND state = 'active' AND lease_token = ? AND lease_until > ?`;
  return {
    findKey: p(`SELECT id FROM ${t} WHERE queue = ? AND key = ?`).pluck(),
    // Keys of completed items deleted by purge stay reserved here until keyTtlMs after completion.
    findPurgedKey: p(`SELECT item_id FROM ${t}_keys WHERE queue = ? AND key = ?`).pluck(),
    keepPurgedKeys: p(
      `INSERT OR REPLACE INTO ${t}_keys (queue, key, item_id, completed_at)
       SELECT queue, key, id, updated_at FROM ${t}
       WHERE queue = ? AND state = 'completed' AND updated_at < ? AND key IS NOT NULL`,
    ),
    sweepPurgedKeys: p(
      `DELETE FROM ${t}_keys WHERE rowid IN (
         SELECT rowid FROM ${t}_keys WHERE queue = ? AND completed_at < ? LIMIT ?)`,
    ),
    insert: p(
      `INSERT INTO ${t} (queue, id, payload, key_id, key, priority, run_at, state, attempts, max_attempts, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`,
    ),
    reclaim: p(
      `UPDATE ${t} SET state = 'pending', lease_token = NULL, lease_until = NULL, updated_at = ?
       WHERE queue = ? AND state = 'active' AND lease_until <= ?`,
    ),
    claim: p(
      `UPDATE ${t} SET state = 'active', attempts = attempts + 1, lease_token = lower(hex(randomblob(12))),
         lease_until = ?, updated_at = ?
       WHERE queue = ? AND id IN (
         SELECT id FROM ${t} WHERE queue = ? AND state = 'pending' AND run_at <= ?
           AND NOT EXISTS (SELECT 1 FROM ${t}_paused p WHERE p.queue = ${t}.queue)
         ORDER BY priority DESC, run_at, id LIMIT ?)
       RETURNING id, payload, key_id, key, priority, run_at, attempts, max_attempts, created_at, last_error,
         dead_reason, redrives, last_redrive_at, lease_token, timeout_ms`,
    ).raw(true), // rows as arrays (cheaper than objects); see claimRow in sqlite-store.ts
    pause: p(`INSERT OR REPLACE INTO ${t}_paused (queue, paused_at) VALUES (?, ?)`),
    resume: p(`DELETE FROM ${t}_paused WHERE queue = ?`),
    paused: p(`SELECT paused_at FROM ${t}_paused WHERE queue = ?`).pluck(),
    complete: p(
      `UPDATE ${t} SET state = 'completed', lease_token = NULL, lease_until = NULL, updated_at = ? WHERE ${fence}`,
    ),
    retry: p(
      `UPDATE ${t} SET state = 'pending', run_at = ?, last_error = ?, lease_token = NULL, lease_until = NULL,
         updated_at = ? WHERE ${fence}`,
    ),
    dead: p(
      `UPDATE ${t} SET state = 'dead', dead_reason = ?, last_error = ?, lease_token = NULL, lease_until = NULL,
         updated_at = ? WHERE ${fence}`,
    ),
    extend: p(`UPDATE ${t} SET lease_until = ? WHERE ${fence}`),
    release: p(
      `UPDATE ${t} SET state = 'pending', attempts = max(attempts - 1, 0), lease_token = NULL, lease_until = NULL,
         updated_at = ? WHERE ${fence}`,
    ),
    // One count per state, each over its partial index (claims and acks then touch no index of
    // a state they do not enter).
    counts: p(
      `SELECT (SELECT count(*) FROM ${t} WHERE queue = @q AND state = 'pending') AS pending,
              (SELECT count(*) FROM ${t} WHERE queue = @q AND state = 'active') AS active,
              (SELECT count(*) FROM ${t} WHERE queue = @q AND state = 'completed') AS completed,
              (SELECT count(*) FROM ${t} WHERE queue = @q AND state = 'dead') AS dead`,
    ),
    delayed: p(`SELECT count(*) FROM ${t} WHERE queue = ? AND state = 'pending' AND run_at > ?`).pluck(),
    oldest: p(`SELECT min(run_at) FROM ${t} WHERE queue = ? AND state = 'pending' AND run_at <= ?`).pluck(),
    get: p(`SELECT * FROM ${t} WHERE queue = ? AND id = ?`),
    redriveIds: p(
      `UPDATE ${t} SET state = 'pending', attempts = 0, run_at = ?, updated_at = ?,
         redrives = redrives + 1, last_redrive_at = ?
       WHERE queue = ? AND id = ? AND state = 'dead'`,
    ),
    oldestDead: p(
      `SELECT id FROM ${t} WHERE queue = ? AND state = 'dead' ORDER BY updated_at, id LIMIT ?`,
    ).pluck(),
    releaseKeys: p(
      `UPDATE ${t} SET key = NULL WHERE rowid IN (
         SELECT rowid FROM ${t} WHERE queue = ? AND state = 'completed' AND updated_at < ? AND key IS NOT NULL LIMIT ?)`,
    ),
    sweepCompleted: p(
      `DELETE FROM ${t} WHERE rowid IN (
         SELECT rowid FROM ${t} WHERE queue = ? AND state = 'completed' AND updated_at < ? LIMIT ?)`,
    ),
    sweepDead: p(
      `DELETE FROM ${t} WHERE rowid IN (
         SELECT rowid FROM ${t} WHERE queue = ? AND state = 'dead' AND updated_at < ? LIMIT ?)`,
    ),
    rewrapList: p(
      `SELECT * FROM ${t} WHERE queue = ? AND key_id IS NOT NULL AND key_id <> ? AND id > ? ORDER BY id LIMIT ?`,
    ),
    replace: p(`UPDATE ${t} SET payload = ?, key_id = ? WHERE queue = ? AND id = ? AND key_id IS ?`),
  };
}
