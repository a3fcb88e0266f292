/**
 * The SQLite store's schedules, fleet-wide limits, progress, per-item timeouts and redrive into
 * another queue (`StoreFeatures`). Writes go through the store's group commit; limits are read in
 * the claim's own transaction (SQLite serialises writers, so the count of active items a claim sees
 * is exact across the processes sharing the file).
 * @module
 */

import type BetterSqlite3 from 'better-sqlite3';
import {
  type LimitRow,
  refill,
  SCHEDULE_COLUMNS,
  type ScheduleRow,
  scheduleValues,
  toSchedule,
} from './feature-rows.js';
import { insertItem, type Stmt } from './sqlite-sql.js';
import type { LeaseRef, NewItem } from './store.js';
// Deliberate repetition: the feature types each store implements (an import list).
import type {
  QueueLimits,
  RedriveMove,
  RedriveMoveOutcome,
  ScheduleRecord,
  ScheduleRun,
  StoreFeatures,
} from './store-features.js';

/** Adds the columns and tables of the features to table `t` (idempotent; inside the schema transaction). @internal */
export function migrateSqliteFeatures(db: BetterSqlite3.Database, t: string): void {
  const cols = new Set(
    (db.prepare(`PRAGMA table_info(${t})`).all() as { name: string }[]).map((c) => c.name),
  );
  if (!cols.has('timeout_ms')) db.exec(`ALTER TABLE ${t} ADD COLUMN timeout_ms INTEGER`);
  if (!cols.has('progress')) db.exec(`ALTER TABLE ${t} ADD COLUMN progress TEXT`);
  db.exec(`
    CREATE TABLE IF NOT EXISTS ${t}_schedules (
      queue TEXT NOT NULL, name TEXT NOT NULL, cron TEXT, tz TEXT NOT NULL, every_ms INTEGER,
      catch_up TEXT NOT NULL, payload BLOB NOT NULL, key_id TEXT, priority INTEGER NOT NULL,
      max_attempts INTEGER, timeout_ms INTEGER, next_run_at INTEGER NOT NULL, last_run_at INTEGER,
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (queue, name));
    CREATE TABLE IF NOT EXISTS ${t}_schedule_runs (
      queue TEXT NOT NULL, name TEXT NOT NULL, tick INTEGER NOT NULL, item_id TEXT NOT NULL,
      PRIMARY KEY (queue, name, tick));
    CREATE TABLE IF NOT EXISTS ${t}_limits (
      queue TEXT PRIMARY KEY, concurrency INTEGER, rate_per_sec REAL, burst REAL,
      tokens REAL, refilled_at INTEGER, updated_at INTEGER NOT NULL);`);
}

/** What the features need of the SQLite store. @internal */
export interface SqliteFeatureHost {
  readonly table: string;
  /** The open database (after `init`). */
  db(): BetterSqlite3.Database;
  /** The store's statements (`insert`, `findKey`, `findPurgedKey`). */
  statements(): Record<string, Stmt>;
  /** Waits for `init`. */
  ready(): Promise<void>;
  /** Runs `run` in the next group commit. */
  write<T>(queue: string, notify: boolean, run: () => T, durable?: boolean): Promise<T>;
}

/** The SQLite `StoreFeatures`, plus the claim hooks of fleet-wide limits. @internal */
export class SqliteFeatures implements StoreFeatures {
  private limited = new Map<string, LimitRow>();
  private limitsReadAt = Number.NEGATIVE_INFINITY;
  private st: Record<string, Stmt> | null = null;

  constructor(private readonly h: SqliteFeatureHost) {}

  private get s(): Record<string, Stmt> {
    if (this.st !== null) return this.st;
    const t = this.h.table;
    const p = (sql: string) => this.h.db().prepare(sql);
    const fence = `queue = ? AND id = ? AND state = 'active' AND lease_token = ? AND lease_until > ?`;
    this.st = {
      progress: p(`UPDATE ${t} SET progress = ? WHERE ${fence}`),
      timeout: p(`UPDATE ${t} SET timeout_ms = ? WHERE queue = ? AND id = ?`),
      deadItem: p(`SELECT state, key, key_id FROM ${t} WHERE queue = ? AND id = ?`),
      move: p(
        `UPDATE ${t} SET queue = ?, state = 'pending', attempts = 0, run_at = ?, updated_at = ?,
           redrives = redrives + 1, last_redrive_at = ?, payload = ?, key_id = ?, progress = NULL
         WHERE queue = ? AND id = ? AND state = 'dead'`,
      ),
      putSchedule: p(
        `INSERT OR REPLACE INTO ${t}_schedules (${SCHEDULE_COLUMNS}) VALUES (${'?, '.repeat(14)}?)`,
      ),
      removeSchedule: p(`DELETE FROM ${t}_schedules WHERE queue = ? AND name = ?`),
      schedules: p(`SELECT * FROM ${t}_schedules WHERE queue = ? ORDER BY name`),
      allSchedules: p(`SELECT * FROM ${t}_schedules ORDER BY queue, name`),
      advance: p(
        `UPDATE ${t}_schedules SET next_run_at = ?, last_run_at = coalesce(?, last_run_at), updated_at = ?
         WHERE queue = ? AND name = ? AND next_run_at = ?`,
      ),
      run: p(`INSERT OR IGNORE INTO ${t}_schedule_runs (queue, name, tick, item_id) VALUES (?, ?, ?, ?)`),
      sweepRuns: p(`DELETE FROM ${t}_schedule_runs WHERE queue = ? AND tick < ?`),
      setLimits: p(
        `INSERT OR REPLACE INTO ${t}_limits (queue, concurrency, rate_per_sec, burst, tokens, refilled_at, updated_at)
         VALUES (?, ?, ?, ?, NULL, NULL, ?)`,
      ),
      clearLimits: p(`DELETE FROM ${t}_limits WHERE queue = ?`),
      limits: p(`SELECT * FROM ${t}_limits WHERE queue = ?`),
      allLimits: p(`SELECT * FROM ${t}_limits`),
      active: p(`SELECT count(*) FROM ${t} WHERE queue = ? AND state = 'active' AND lease_until > ?`).pluck(),
      spend: p(`UPDATE ${t}_limits SET tokens = ?, refilled_at = ? WHERE queue = ?`),
    };
    return this.st;
  }

  /** Inserts items' per-item timeouts (inside the enqueue's transaction). */
  setTimeouts(queue: string, items: readonly NewItem[]): void {
    for (const it of items) if (it.timeoutMs != null) this.s.timeout!.run(it.timeoutMs, queue, it.id);
  }

  async setProgress(queue: string, ref: LeaseRef, progress: string, now: number): Promise<boolean> {
    await this.h.ready();
    return this.h.write(
      queue,
      false,
      () => this.s.progress!.run(progress, queue, ref.id, ref.leaseToken, now).changes === 1,
      false,
    );
  }

  // Deliberate repetition: the signature of StoreFeatures.redriveTo, restated by each store.
  async redriveTo(
    from: string,
    to: string,
    moves: readonly RedriveMove[],
    now: number,
  ): Promise<RedriveMoveOutcome[]> {
    await this.h.ready();
    const store = this.h.statements();
    return this.h.write(to, true, () =>
      moves.map((m): RedriveMoveOutcome => {
        const row = this.s.deadItem!.get(from, m.id) as
          | { state: string; key: string | null; key_id: string | null }
          | undefined;
        if (row === undefined) return 'not-found';
        if (row.state !== 'dead' || row.key_id !== m.expectedKeyId) return 'not-dead';
        if (row.key !== null && (store.findKey!.get(to, row.key) ?? store.findPurgedKey!.get(to, row.key)))
          return 'key-conflict';
        const changes = this.s.move!.run(to, now, now, now, m.payload, m.keyId, from, m.id).changes;
        return changes === 1 ? 'moved' : 'not-dead';
      }),
    );
  }

  async putSchedule(schedule: ScheduleRecord): Promise<void> {
    await this.h.ready();
    await this.h.write(schedule.queue, false, () => this.s.putSchedule!.run(...scheduleValues(schedule)));
  }

  async removeSchedule(queue: string, name: string): Promise<boolean> {
    await this.h.ready();
    return this.h.write(queue, false, () => this.s.removeSchedule!.run(queue, name).changes === 1);
  }

  async listSchedules(queue: string | null): Promise<ScheduleRecord[]> {
    await this.h.ready();
    if (!this.hasTable('_schedules')) return [];
    const rows = (
      queue === null ? this.s.allSchedules!.all() : this.s.schedules!.all(queue)
    ) as ScheduleRow[];
    return rows.map(toSchedule);
  }

  /** A read-only open of a file made before the features has none of their tables. */
  private hasTable(suffix: string): boolean {
    return (
      this.h
        .db()
        .prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`)
        .get(`${this.h.table}${suffix}`) !== undefined
    );
  }

  // Deliberate repetition: the signature of StoreFeatures.fireSchedule, restated by each store.
  async fireSchedule(
    queue: string,
    name: string,
    expectedNext: number,
    runs: readonly ScheduleRun[],
    next: number,
    now: number,
  ): Promise<string[] | null> {
    await this.h.ready();
    const insert = this.h.statements().insert!;
    const lastTick = runs.length === 0 ? null : runs[runs.length - 1]!.tick;
    return this.h.write(queue, runs.length > 0, () => {
      if (this.s.advance!.run(next, lastTick, now, queue, name, expectedNext).changes !== 1) return null;
      const ids: string[] = [];
      for (const { tick, item: it } of runs) {
        if (this.s.run!.run(queue, name, tick, it.id).changes !== 1) continue;
        insertItem(insert, queue, it, now);
        if (it.timeoutMs != null) this.s.timeout!.run(it.timeoutMs, queue, it.id);
        ids.push(it.id);
      }
      return ids;
    });
  }

  async sweepRuns(queue: string, before: number): Promise<number> {
    await this.h.ready();
    return this.h.write(queue, false, () => this.s.sweepRuns!.run(queue, before).changes);
  }

  async setLimits(queue: string, limits: QueueLimits | null, now: number): Promise<void> {
    await this.h.ready();
    await this.h.write(queue, true, () =>
      limits === null
        ? this.s.clearLimits!.run(queue)
        : this.s.setLimits!.run(queue, limits.concurrency, limits.ratePerSec, limits.burst, now),
    );
    this.limitsReadAt = Number.NEGATIVE_INFINITY;
  }

  async getLimits(queue: string): Promise<QueueLimits | null> {
    await this.h.ready();
    if (!this.hasTable('_limits')) return null;
    const r = this.s.limits!.get(queue) as LimitRow | undefined;
    return r === undefined
      ? null
      : { concurrency: r.concurrency, ratePerSec: r.rate_per_sec, burst: r.burst };
  }

  /**
   * Inside a claim's transaction: how many items the queue's limits let it claim now (`wanted`
   * when it has none). The set of limited queues is re-read at most once a second.
   */
  allowance(queue: string, wanted: number, now: number): number {
    if (now - this.limitsReadAt >= 1000 || now < this.limitsReadAt) {
      this.limitsReadAt = now;
      this.limited = new Map();
      for (const r of this.s.allLimits!.all() as (LimitRow & { queue: string })[])
        this.limited.set(r.queue, r);
    }
    if (!this.limited.has(queue)) return wanted;
    const l = this.s.limits!.get(queue) as LimitRow | undefined;
    if (l === undefined) return wanted;
    let n = wanted;
    if (l.concurrency !== null) n = Math.min(n, l.concurrency - (this.s.active!.get(queue, now) as number));
    if (l.rate_per_sec !== null) n = Math.min(n, Math.floor(refill(l, now)));
    return Math.max(0, n);
  }

  /** Inside the same transaction: spends `claimed` tokens of a rate-limited queue. */
  spend(queue: string, claimed: number, now: number): void {
    const l = this.limited.get(queue);
    if (l === undefined || l.rate_per_sec === null) return;
    const fresh = this.s.limits!.get(queue) as LimitRow | undefined;
    if (fresh === undefined || fresh.rate_per_sec === null) return;
    this.s.spend!.run(refill(fresh, now) - claimed, now, queue);
  }
}
