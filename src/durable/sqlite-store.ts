/**
 * The embedded SQLite store (better-sqlite3, an optional peer loaded on first use).
 *
 * Writes that arrive in the same turn of the event loop (enqueues, claims, acks, fails, lease
 * extensions) are group-committed: one `BEGIN IMMEDIATE … COMMIT` (one WAL sync) for all of them,
 * and each caller's promise resolves only after that commit. If the group's transaction fails, each
 * operation is retried in its own transaction so that one bad operation fails alone.
 * @module
 */

import type BetterSqlite3 from 'better-sqlite3';
import { s } from '../core/schema.js';
import { BulwarkDurableError } from './errors.js';
import { loadBetterSqlite3 } from './peers.js';
import { claimedRows, toItem } from './rows.js';
import { migrateSqliteFeatures, SqliteFeatures } from './sqlite-features.js';
import { insertItem, type Row, type Stmt, sqliteSchema, sqliteStatements } from './sqlite-sql.js';
import type * as S from './store.js';
import { checkPurge } from './store.js';

import { classifySqliteOpen, readOnlyError } from './store-errors.js';

/** What a missing `better-sqlite3` package is. */
const NO_SQLITE = 'sqliteStore needs the better-sqlite3 package: run `npm install better-sqlite3`';

/** Options of `sqliteStore`. */
export interface SqliteStoreOptions {
  /** Database file (created if missing), or `':memory:'` for a private in-memory database. */
  path: string;
  /**
   * SQLite `synchronous` setting. `FULL` (default): a resolved enqueue survives a power loss.
   * `NORMAL`: in WAL mode it survives a process crash but a power loss may lose the last commits;
   * faster.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** How long a write waits for another process holding the database lock, in ms. Default 10 000. */
  busyTimeoutMs?: number;
  /** Table name. Default `bulwark_queue_items`. */
  table?: string;
  /**
   * Commit claims, acks and lease extensions with `synchronous = NORMAL` (no fsync of their own;
   * they reach the disk with the next synced commit or checkpoint). Enqueues, failures,
   * dead-lettering and redrives always use `synchronous`. Safe for at-least-once delivery: a power
   * loss can only undo recent claims (the item was never claimed) or acks (the item runs again).
   * A process crash loses nothing either way (WAL). Default true.
   */
  asyncAcks?: boolean;
}

const optionsSchema = s.object({
  path: s.string(),
  synchronous: s.optional(s.oneOf(['FULL', 'NORMAL'] as const)),
  busyTimeoutMs: s.optional(s.int({ min: 0 })),
  asyncAcks: s.optional(s.boolean()),
  table: s.optional(s.string({ pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, patternRule: 'a plain SQL identifier' })),
});

interface Op {
  readonly queue: string;
  readonly notify: boolean;
  /** Must be synced per `synchronous` (false: claims, acks, extensions when `asyncAcks`). */
  readonly durable: boolean;
  readonly run: () => unknown;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
}

/** A raw claim row (columns in the claim statement's RETURNING order) as a claimed item. */
function rawClaimed(r: unknown[], queue: string, now: number, leaseUntil: number): S.ClaimedItem {
  return {
    id: r[0] as string,
    queue,
    payload: r[1] as Uint8Array,
    keyId: r[2] as string | null,
    key: r[3] as string | null,
    priority: r[4] as number,
    runAt: r[5] as number,
    state: 'active',
    attempts: r[6] as number,
    maxAttempts: r[7] as number,
    createdAt: r[8] as number,
    updatedAt: now,
    lastError: r[9] as string | null,
    deadReason: r[10] as string | null,
    redrives: r[11] as number,
    lastRedriveAt: r[12] as number | null,
    leaseToken: r[13] as string,
    leaseUntil,
    timeoutMs: r[14] as number | null,
  };
}

/** The SQLite implementation of `QueueStore`. Made by `sqliteStore()`. */
export class SqliteStore implements S.QueueStore {
  readonly description: string;
  private readonly options: Required<SqliteStoreOptions>;
  private db: BetterSqlite3.Database | null = null;
  private opening: Promise<void> | null = null;
  private closed = false;
  private ops: Op[] = [];
  private scheduled = false;
  private readonly subscribers = new Map<string, Set<() => void>>();
  private s!: Record<string, Stmt>;
  private group!: BetterSqlite3.Transaction<(ops: Op[]) => unknown[]>;
  private single!: BetterSqlite3.Transaction<(op: Op) => unknown>;

  constructor(options: SqliteStoreOptions) {
    optionsSchema.parse(options, 'sqliteStore');
    this.options = {
      path: options.path,
      synchronous: options.synchronous ?? 'FULL',
      busyTimeoutMs: options.busyTimeoutMs ?? 10_000,
      table: options.table ?? 'bulwark_queue_items',
      asyncAcks: options.asyncAcks ?? true,
    };
    this.description = `sqlite:${options.path}`;
    this.features = new SqliteFeatures({
      table: this.options.table,
      db: () => this.db!,
      statements: () => this.s,
      ready: () => this.ready(),
      write: (queue, notify, run, durable) => this.write(queue, notify, run, durable),
    });
  }

  /** Schedules, fleet-wide limits, progress, per-item timeouts, redrive into another queue. */
  readonly features: SqliteFeatures;

  init(options?: { readonly readOnly?: boolean }): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.opening === null) this.readOnly = options?.readOnly === true;
    this.opening ??= this.open().catch((error: unknown) => {
      this.opening = null;
      throw classifySqliteOpen(error, this.description, this.readOnly);
    });
    return this.opening;
  }

  /** Opened with `init({ readOnly: true })`: nothing is created and writes are refused. */
  private readOnly = false;

  private closedError(): BulwarkDurableError {
    return new BulwarkDurableError(
      'CLOSED',
      `The SQLite store ${this.description} is closed; open a new one`,
    );
  }

  private async open(): Promise<void> {
    const Database = await loadBetterSqlite3(
      (cause) => new BulwarkDurableError('STORE_UNAVAILABLE', NO_SQLITE, { cause }),
    );
    const ro = this.readOnly;
    const db = new Database(this.options.path, {
      timeout: this.options.busyTimeoutMs,
      ...(ro ? { readonly: true, fileMustExist: true } : {}),
    });
    try {
      this.prepare(db, ro);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  private prepare(db: BetterSqlite3.Database, ro: boolean): void {
    const t = this.options.table;
    db.pragma(`busy_timeout = ${this.options.busyTimeoutMs}`);
    if (ro) {
      const found = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(t);
      if (found === undefined) {
        throw new BulwarkDurableError(
          'STORE_NOT_FOUND',
          `Store ${this.description} has no table "${t}": it holds no queues (nothing was created; check the path)`,
          { store: this.description },
        );
      }
    } else if (this.options.path !== ':memory:') db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${this.options.synchronous}`);
    this.syncNow = this.options.synchronous;
    // Several processes may race to create the schema: BEGIN IMMEDIATE serialises them.
    if (!ro)
      db.transaction(() => {
        db.exec(sqliteSchema(t));
        migrateSqliteFeatures(db, t);
      }).immediate();
    else if (db.prepare(`SELECT 1 FROM sqlite_master WHERE name = ?`).get(`${t}_paused`) === undefined) {
      // A file made before pause/resume, opened read-only: a private in-memory stand-in (creates no file).
      db.exec(`CREATE TEMP TABLE ${t}_paused (queue TEXT PRIMARY KEY, paused_at INTEGER NOT NULL)`);
    }
    this.s = sqliteStatements(db, t);
    this.group = db.transaction((ops: Op[]) => ops.map((op) => op.run()));
    this.single = db.transaction((op: Op) => op.run());
    this.db = db;
  }

  private async ready(): Promise<void> {
    if (this.closed) throw this.closedError();
    if (this.db === null) await this.init();
  }

  /** Queues a write for the next group commit. */
  private write<T>(queue: string, notify: boolean, run: () => T, durable = true): Promise<T> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.readOnly) return Promise.reject(readOnlyError(this.description));
    return new Promise<T>((resolve, reject) => {
      this.ops.push({ queue, notify, durable, run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const ops = this.ops;
    this.ops = [];
    if (ops.length === 0) return;
    if (this.db === null) {
      for (const op of ops) op.reject(this.closedError());
      return;
    }
    this.setSync(ops);
    let results: unknown[] | null = null;
    if (ops.length > 1) {
      try {
        results = this.group.immediate(ops);
      } catch {
        results = null; // fall back to one transaction per operation
      }
    }
    const notifyQueues = new Set<string>();
    if (results !== null) {
      for (let i = 0; i < ops.length; i++) {
        ops[i]!.resolve(results[i]);
        if (ops[i]!.notify) notifyQueues.add(ops[i]!.queue);
      }
    } else {
      for (const op of ops) {
        try {
          op.resolve(this.single.immediate(op));
          if (op.notify) notifyQueues.add(op.queue);
        } catch (error) {
          op.reject(error);
        }
      }
    }
    for (const q of notifyQueues) {
      const subs = this.subscribers.get(q);
      if (subs !== undefined) for (const fn of subs) fn();
    }
  }

  private syncNow: 'FULL' | 'NORMAL' | null = null;

  /** Uses `synchronous = NORMAL` for a group of claims/acks only (see `asyncAcks`). */
  private setSync(ops: readonly Op[]): void {
    const wanted = this.options.synchronous;
    let mode: 'FULL' | 'NORMAL' = wanted;
    if (wanted === 'FULL' && this.options.asyncAcks && !ops.some((o) => o.durable)) mode = 'NORMAL';
    if (mode !== this.syncNow) {
      this.db!.pragma(`synchronous = ${mode}`);
      this.syncNow = mode;
    }
  }

  async enqueue(
    queue: string,
    items: readonly S.NewItem[],
    now: number,
    tx?: unknown,
  ): Promise<S.EnqueueOutcome[]> {
    if (tx !== undefined) {
      throw new BulwarkDurableError(
        'TX_UNSUPPORTED',
        'The SQLite store cannot enqueue inside a caller transaction; enqueue without `tx`, or use postgresStore',
      );
    }
    if (this.db === null || this.closed) await this.ready();
    const s = this.s;
    return this.write(queue, true, () => {
      const out: S.EnqueueOutcome[] = [];
      for (const it of items) {
        if (it.key !== null) {
          const existing = (s.findKey!.get(queue, it.key) ?? s.findPurgedKey!.get(queue, it.key)) as
            | string
            | undefined;
          if (existing !== undefined) {
            out.push({ id: existing, duplicate: true });
            continue;
          }
        }
        insertItem(s.insert!, queue, it, now);
        out.push({ id: it.id, duplicate: false });
      }
      this.features.setTimeouts(queue, items);
      return out;
    });
  }

  async claim(queue: string, limit: number, leaseMs: number, now: number): Promise<S.ClaimedItem[]> {
    if (this.db === null || this.closed) await this.ready();
    const s = this.s;
    return this.write(
      queue,
      false,
      () => {
        s.reclaim!.run(now, queue, now);
        const n = this.features.allowance(queue, limit, now);
        if (n <= 0) return [];
        const rows = s.claim!.all(now + leaseMs, now, queue, queue, now, n) as unknown[][];
        this.features.spend(queue, rows.length, now);
        return claimedRows(rows, (row) => rawClaimed(row, queue, now, now + leaseMs));
      },
      false,
    );
  }

  async complete(queue: string, refs: readonly S.LeaseRef[], now: number): Promise<boolean[]> {
    if (this.db === null || this.closed) await this.ready();
    const s = this.s;
    return this.write(
      queue,
      false,
      () => refs.map((r) => s.complete!.run(now, queue, r.id, r.leaseToken, now).changes === 1),
      false,
    );
  }

  async fail(queue: string, ref: S.LeaseRef, action: S.FailAction, now: number): Promise<boolean> {
    if (this.db === null || this.closed) await this.ready();
    const s = this.s;
    return this.write(queue, action.kind === 'retry', () =>
      action.kind === 'retry'
        ? s.retry!.run(action.runAt, action.error, now, queue, ref.id, ref.leaseToken, now).changes === 1
        : s.dead!.run(action.reason, action.error, now, queue, ref.id, ref.leaseToken, now).changes === 1,
    );
  }

  async extend(queue: string, ref: S.LeaseRef, leaseMs: number, now: number): Promise<boolean> {
    if (this.db === null || this.closed) await this.ready();
    const s = this.s;
    return this.write(
      queue,
      false,
      () => s.extend!.run(now + leaseMs, queue, ref.id, ref.leaseToken, now).changes === 1,
      false,
    );
  }

  async release(queue: string, refs: readonly S.LeaseRef[], now: number): Promise<boolean[]> {
    if (this.db === null || this.closed) await this.ready();
    const s = this.s;
    return this.write(queue, true, () =>
      refs.map((r) => s.release!.run(now, queue, r.id, r.leaseToken, now).changes === 1),
    );
  }

  async reclaimExpired(queue: string, now: number): Promise<number> {
    if (this.db === null || this.closed) await this.ready();
    const s = this.s;
    return this.write(queue, true, () => s.reclaim!.run(now, queue, now).changes);
  }

  async stats(queue: string, now: number): Promise<S.StoreStats> {
    if (this.db === null || this.closed) await this.ready();
    const counts = { pending: 0, active: 0, completed: 0, dead: 0 };
    Object.assign(counts, this.s.counts!.get({ q: queue }) as typeof counts);
    const delayed = this.s.delayed!.get(queue, now) as number;
    const oldest = this.s.oldest!.get(queue, now) as number | null;
    return { ...counts, delayed, oldestPendingAgeMs: oldest === null ? 0 : Math.max(0, now - oldest) };
  }

  async get(queue: string, id: string): Promise<S.StoredItem | undefined> {
    if (this.db === null || this.closed) await this.ready();
    const r = this.s.get!.get(queue, id) as Row | undefined;
    return r === undefined ? undefined : toItem(r);
  }

  async list(queue: string, options: S.ListOptions): Promise<S.StoredItem[]> {
    if (this.db === null || this.closed) await this.ready();
    const where = ['queue = ?'];
    const args: unknown[] = [queue];
    if (options.state !== undefined) {
      where.push('state = ?');
      args.push(options.state);
    }
    const byUpdated = options.order === 'updated';
    if (options.after !== undefined && !byUpdated) {
      where.push('id > ?');
      args.push(options.after);
    }
    args.push(options.limit ?? 100);
    const rows = this.db!.prepare(
      `SELECT * FROM ${this.options.table} WHERE ${where.join(' AND ')} ORDER BY ${byUpdated ? 'updated_at, id' : 'id'} LIMIT ?`,
    ).all(...args) as Row[];
    return rows.map(toItem);
  }

  async redrive(queue: string, selection: S.RedriveSelection, now: number): Promise<string[]> {
    if (this.db === null || this.closed) await this.ready();
    const s = this.s;
    return this.write(queue, true, () => {
      const candidates = selection.ids ?? (s.oldestDead!.all(queue, selection.limit) as string[]);
      const out: string[] = [];
      for (const id of candidates) {
        if (out.length >= selection.limit) break;
        if (s.redriveIds!.run(now, now, now, queue, id).changes === 1) out.push(id);
      }
      return out;
    });
  }

  async purge(
    queue: string,
    state: S.ItemState,
    options: { readonly force?: boolean; readonly olderThan?: number; readonly count?: boolean },
  ): Promise<number> {
    if (this.db === null || this.closed) await this.ready();
    checkPurge(queue, state, options);
    const older = options.olderThan ?? Number.MAX_SAFE_INTEGER;
    const where = `FROM ${this.options.table} WHERE queue = ? AND state = ? AND updated_at < ?`;
    if (options.count === true) {
      return this.db!.prepare(`SELECT count(*) ${where}`).pluck().get(queue, state, older) as number;
    }
    return this.write(queue, false, () => {
      // Idempotency keys of purged completed items stay reserved (as on PostgreSQL) until `sweep`
      // finds them older than keyTtlMs; purging other states frees their keys.
      if (state === 'completed') this.s.keepPurgedKeys!.run(queue, older);
      return this.db!.prepare(`DELETE ${where}`).run(queue, state, older).changes;
    });
  }

  async sweep(queue: string, options: S.SweepOptions, now: number): Promise<number> {
    if (this.db === null || this.closed) await this.ready();
    const s = this.s;
    return this.write(queue, false, () => {
      let n = s.releaseKeys!.run(queue, now - options.keyTtlMs, options.limit).changes;
      n += s.sweepCompleted!.run(queue, now - options.completedMs, options.limit).changes;
      n += s.sweepDead!.run(queue, now - options.deadMs, options.limit).changes;
      n += s.sweepPurgedKeys!.run(queue, now - options.keyTtlMs, options.limit).changes;
      return n;
    });
  }

  async listForRewrap(
    queue: string,
    keyId: string,
    after: string | null,
    limit: number,
  ): Promise<S.StoredItem[]> {
    if (this.db === null || this.closed) await this.ready();
    return (this.s.rewrapList!.all(queue, keyId, after ?? '', limit) as Row[]).map(toItem);
  }

  // Deliberate repetition: the signature of QueueStore.replacePayload, restated by each store.
  async replacePayload(
    queue: string,
    id: string,
    expectedKeyId: string | null,
    payload: Uint8Array,
    keyId: string,
  ): Promise<boolean> {
    if (this.db === null || this.closed) await this.ready();
    const s = this.s;
    return this.write(
      queue,
      false,
      () => s.replace!.run(payload, keyId, queue, id, expectedKeyId).changes === 1,
    );
  }

  async setPaused(queue: string, paused: boolean, now: number): Promise<void> {
    if (this.db === null || this.closed) await this.ready();
    await this.write(queue, !paused, () =>
      paused ? this.s.pause!.run(queue, now) : this.s.resume!.run(queue),
    );
  }

  async isPaused(queue: string): Promise<boolean> {
    if (this.db === null || this.closed) await this.ready();
    return this.s.paused!.get(queue) !== undefined;
  }

  async listQueues(): Promise<string[]> {
    if (this.db === null || this.closed) await this.ready();
    return this.db!.prepare(`SELECT DISTINCT queue FROM ${this.options.table} ORDER BY queue`)
      .pluck()
      .all() as string[];
  }

  async subscribe(queue: string, onReady: () => void): Promise<() => Promise<void>> {
    let set = this.subscribers.get(queue);
    if (set === undefined) {
      set = new Set();
      this.subscribers.set(queue, set);
    }
    const fn = () => onReady();
    set.add(fn);
    return async () => {
      set.delete(fn);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.opening !== null) await this.opening.catch(() => {});
    // Commit what is queued before closing.
    if (this.ops.length > 0) this.flush();
    this.closed = true;
    this.subscribers.clear();
    const db = this.db;
    this.db = null;
    db?.close();
  }
}

/**
 * The embedded SQLite store: WAL journal, `synchronous = FULL` by default, group commit of
 * concurrent writes. One file can be shared by several processes of one machine.
 *
 * @example
 * ```ts
 * import { openQueue, sqliteStore } from 'bulwark/durable';
 * const q = await openQueue({ name: 'emails', store: sqliteStore({ path: ':memory:' }) });
 * await q.enqueue({ to: 'a@example.com' });
 * await q.close();
 * ```
 */
export function sqliteStore(options: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}
