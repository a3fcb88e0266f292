/**
 * A PostgreSQL `QueueStore`: many processes on many nodes share one queue table.
 *
 * - Claims take rows with `FOR UPDATE SKIP LOCKED` in one statement (CTE + `UPDATE … RETURNING`),
 *   ordered by priority desc, run time, id, over a partial index on pending rows; the same
 *   statement takes over items whose lease expired (they compete by priority and run time).
 * - Completes are batched: one statement for many items (`unnest` of ids and lease tokens), fenced
 *   by the lease token.
 * - Idle workers are woken by LISTEN/NOTIFY: one dedicated connection per store listens; enqueue
 *   notifies inside its own statement (so the notification fires at commit, also inside a caller's
 *   transaction), and so do a retry that returns an item to pending and a redrive.
 * - Idempotency keys live in a `keys` table (`INSERT … ON CONFLICT DO UPDATE … RETURNING`, race-free
 *   under concurrent enqueues of one key); a key stays reserved while its item is pending, active or
 *   dead, and after completion until `sweep` finds it older than `keyTtlMs`.
 * - Times are the `now` the queue passes in, stored as `bigint` milliseconds since the epoch.
 * - The schema is versioned (`schema_version`) and migrated under `pg_advisory_xact_lock`, so many
 *   processes can call `init()` at once.
 * - A lost connection or a restarting server never crashes the process: the pool and the LISTEN
 *   connection have `error` listeners, calls during the outage reject with a `BulwarkDurableError`
 *   `STORE_UNAVAILABLE` (cause chained) that the queue's worker retries, and the LISTEN connection
 *   reconnects with backoff (checked by a periodic ping, which also catches half-open connections).
 * @module
 */

import type { Pool, QueryResult, QueryResultRow } from 'pg';
import { BulwarkDurableError, storeError } from './errors.js';
import { loadPgPool } from './peers.js';
import { completeBatches, enqueueBatches, uniformNow } from './pg-batching.js';
import { withPoolClient } from './pg-client.js';
import { type PgClient, PgFeatures } from './pg-features.js';
import { PgNotifier } from './pg-notify.js';
import { type PostgresStoreOptions, settlePostgresOptions } from './pg-options.js';
import {
  asBuffer,
  insertParams,
  migrate,
  POSTGRES_SCHEMA_VERSION,
  queries,
  type Row,
  schemaVersion,
  statements,
} from './pg-sql.js';
import { type ClaimRow, claimedRows, leanClaimed, toItem } from './rows.js';
import {
  type ClaimedItem,
  checkPurge,
  type EnqueueOutcome,
  type FailAction,
  type ItemState,
  type LeaseRef,
  type ListOptions,
  type NewItem,
  type QueueStore,
  type RedriveSelection,
  type StoredItem,
  type StoreStats,
  type SweepOptions,
} from './store.js';
import { classifyPg, readOnlyError } from './store-errors.js';

export type { PostgresStoreOptions } from './pg-options.js';
export { POSTGRES_SCHEMA_VERSION } from './pg-sql.js';

/** What a missing `pg` package is. */
const NO_PG =
  'The PostgreSQL store needs the `pg` package: install it (`npm install pg`) or pass your own `pool`';

/**
 * A {@link QueueStore} on PostgreSQL, with the schema it uses.
 *
 * @example
 * ```ts
 * import { postgresStore, type PostgresQueueStore } from 'bulwark/durable';
 * const store: PostgresQueueStore = postgresStore({ connectionString: 'postgres://app@db/app?schema=jobs' });
 * console.log(store.schema, store.description); // jobs postgres://db/app?schema=jobs
 * ```
 */
export interface PostgresQueueStore extends QueueStore {
  /** The schema holding the store's tables. */
  readonly schema: string;
  /** Drops the store's schema and everything in it (tests, uninstall). Irreversible. */
  dropSchema(): Promise<void>;
}

/**
 * A durable-queue store on PostgreSQL (13 or newer), shared by every process and node that opens a
 * queue on the same database and schema. `pg` is an optional peer dependency, loaded when the store
 * first connects (unless you pass your own `pool`).
 *
 * Pass a `pg` client inside your own `BEGIN` as `tx` to enqueue in your transaction (a
 * transactional outbox): the item exists only if your transaction commits.
 *
 * @example
 * ```ts nocheck
 * import { openQueue, postgresStore } from 'bulwark/durable';
 * const store = postgresStore({ connectionString: 'postgres://app@db/app', schema: 'jobs' });
 * const queue = await openQueue({ name: 'emails', store });
 * await queue.enqueue({ to: 'a@example.com' });
 * ```
 */
export function postgresStore(options: PostgresStoreOptions = {}): PostgresQueueStore {
  const { schema: sch, connectionString, description } = settlePostgresOptions(options);
  return new PgStore(options, sch, connectionString, description);
}

class PgStore implements PostgresQueueStore {
  readonly description: string;
  readonly schema: string;
  readonly #options: PostgresStoreOptions;
  readonly #connectionString: string | undefined;
  readonly #s: string;
  readonly #channel: string;
  readonly #notify: boolean;
  #pool: Pool | undefined;
  #poolPromise: Promise<Pool> | undefined;
  #ownPool = false;
  #closed = false;
  readonly #notifier: PgNotifier;
  // SQL
  readonly #sql: ReturnType<typeof statements>;
  readonly #text: ReturnType<typeof queries>;
  /** Schedules, fleet-wide limits, progress, per-item timeouts, redrive into another queue. */
  readonly features: PgFeatures;

  constructor(
    options: PostgresStoreOptions,
    schema: string,
    connectionString: string | undefined,
    description: string,
  ) {
    this.#options = options;
    this.schema = schema;
    this.#s = `"${schema}"`;
    this.#channel = `bulwark_${schema}`;
    this.#notify = options.notify ?? true;
    this.#connectionString = connectionString;
    this.description = description;
    this.#sql = statements(this.#s, schema, options.asyncAcks ?? true);
    this.#text = queries(this.#s);
    this.#notifier = new PgNotifier(
      {
        pool: async () => this.#getPool(),
        query: (text, values, name) => this.#q(text, values, name),
        closed: () => this.#closed,
        report: (error) => this.#report(error),
        wrap: (error) => this.#wrap(error),
      },
      this.#channel,
      this.#sql.notify.name,
      options.listenCheckMs ?? 10_000,
    );
    this.features = new PgFeatures({
      schema,
      q: (text, values, name) => this.#q(text, values, name),
      pool: async () => this.#getPool(),
      wrap: (error) => this.#wrap(error),
      checkWrite: () => this.#checkWrite(),
      insert: (queue, items, nows, client) => this.#insert(queue, items, nows, client),
      claimStatement: () => this.#sql.claim,
      notifyLater: (queue) => this.#notifier.notifyLater(queue),
    });
    if (options.pool !== undefined) {
      this.#pool = options.pool;
      this.#pool.on('error', this.#onPoolError);
    }
  }

  readonly #onPoolError = (error: Error): void => {
    // An idle client lost its connection: pg-pool discards it. Nothing to do but report.
    this.#report(error);
  };

  #report(error: unknown): void {
    const onError = this.#options.onError;
    if (onError === undefined) return;
    try {
      onError(error);
    } catch {
      // a throwing reporter must not break the store
    }
  }

  #getPool(): Pool | Promise<Pool> {
    if (this.#closed) throw closedError();
    if (this.#pool !== undefined) return this.#pool;
    this.#poolPromise ??= this.#makePool().catch((error: unknown) => {
      this.#poolPromise = undefined;
      throw error;
    });
    return this.#poolPromise;
  }

  async #makePool(): Promise<Pool> {
    const PoolCtor = await loadPgPool(
      (cause) => new BulwarkDurableError('STORE_UNAVAILABLE', NO_PG, { cause }),
    );
    const pool = new PoolCtor({
      ...(this.#connectionString === undefined ? {} : { connectionString: this.#connectionString }),
      max: (this.#options.poolSize ?? 10) + 1,
      connectionTimeoutMillis: this.#options.connectTimeoutMs ?? 5000,
      query_timeout: this.#options.queryTimeoutMs ?? 30_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'bulwark-durable',
    });
    pool.on('error', this.#onPoolError);
    if (this.#closed) {
      await pool.end();
      throw closedError();
    }
    this.#pool = pool;
    this.#ownPool = true;
    return pool;
  }

  /** Runs one statement on the pool (or on `tx`), mapping connection failures to STORE_UNAVAILABLE. */
  async #q<R extends QueryResultRow>(
    text: string,
    values: readonly unknown[],
    name?: string,
    tx?: TxClient,
  ): Promise<QueryResult<R>> {
    try {
      if (tx !== undefined) return (await tx.query({ text, values: values as unknown[] })) as QueryResult<R>;
      const pool = this.#pool ?? (await this.#getPool());
      const config =
        name === undefined
          ? { text, values: values as unknown[] }
          : { name, text, values: values as unknown[] };
      return await pool.query<R>(config);
    } catch (error) {
      throw this.#wrap(error);
    }
  }

  #wrap(error: unknown): unknown {
    if (error instanceof BulwarkDurableError) return error;
    if (this.#closed && !(error instanceof Error && 'severity' in error)) return closedError(error);
    return classifyPg(error, this.description);
  }

  #check(): void {
    if (this.#closed) throw closedError();
  }

  #tooNew(at: number): BulwarkDurableError {
    return storeError(
      'STORE_CONFIG',
      this.description,
      `schema "${this.schema}" is at version ${at}, newer than this bulwark understands (${POSTGRES_SCHEMA_VERSION}); upgrade bulwark`,
    );
  }

  /** Opened with `init({ readOnly: true })`: nothing is created and writes are refused. */
  #readOnly = false;

  /** Throws `CLOSED` once closed, `READ_ONLY` when opened read-only. */
  #checkWrite(): void {
    this.#check();
    if (this.#readOnly) throw readOnlyError(this.description);
  }

  async init(options?: { readonly readOnly?: boolean }): Promise<void> {
    this.#check();
    this.#readOnly = options?.readOnly === true;
    const pool = await this.#getPool();
    await withPoolClient(
      pool,
      (e) => this.#wrap(e),
      async (client) => {
        // Fast path: already at the latest version (no lock needed).
        const at = await schemaVersion(client, this.#s);
        if (at !== null && at > POSTGRES_SCHEMA_VERSION) throw this.#tooNew(at);
        if (this.#readOnly) {
          if (at === null) {
            throw storeError(
              'STORE_NOT_FOUND',
              this.description,
              `schema "${this.schema}" holds no bulwark tables`,
            );
          }
          return;
        }
        if (at === POSTGRES_SCHEMA_VERSION) return;
        const after = await migrate(client, this.#s, this.schema);
        if (after > POSTGRES_SCHEMA_VERSION) throw this.#tooNew(after);
      },
    );
  }

  async enqueue(
    queue: string,
    items: readonly NewItem[],
    now: number,
    tx?: unknown,
  ): Promise<EnqueueOutcome[]> {
    this.#checkWrite();
    if (tx !== undefined && tx !== null) {
      if (typeof tx !== 'object' || typeof (tx as { query?: unknown }).query !== 'function') {
        throw new BulwarkDurableError(
          'TX_UNSUPPORTED',
          'The PostgreSQL store takes a `pg` Client or PoolClient (inside your BEGIN) as `tx`; got something else',
        );
      }
      if (items.length === 0) return [];
      if (items.some((i) => i.timeoutMs != null))
        return this.features.enqueueWithTimeouts(queue, items, now, tx as PgClient);
      return this.#insert(queue, items, uniformNow(items.length, now), tx as TxClient);
    }
    if (items.length === 0) return [];
    if (items.some((i) => i.timeoutMs != null)) return this.features.enqueueWithTimeouts(queue, items, now);
    return this.#enqueues.add(queue, items, now);
  }

  readonly #enqueues = enqueueBatches((queue, items, nows) => this.#insert(queue, items, nows, undefined));

  /** One INSERT statement for `items` (a repeated key within them is a duplicate of its first occurrence). */
  async #insert(
    queue: string,
    items: readonly NewItem[],
    nows: readonly number[],
    client: TxClient | undefined,
  ): Promise<EnqueueOutcome[]> {
    const { values, anyKey, outcomes } = insertParams(queue, items, nows);
    // Inside a caller's transaction the NOTIFY rides in the statement (it fires at their COMMIT);
    // otherwise it follows the commit, coalesced (a NOTIFY inside the insert would serialise commits).
    const notify = client !== undefined && this.#notify;
    const sql = anyKey
      ? notify
        ? this.#sql.enqueueKeysNotify
        : this.#sql.enqueueKeys
      : notify
        ? this.#sql.enqueueNotify
        : this.#sql.enqueue;
    if (notify) values.push(this.#channel);
    const r = await this.#q<{ id: string; existing: string | null }>(
      sql.text,
      values,
      client === undefined ? sql.name : undefined,
      client,
    );
    if (client === undefined && this.#notify) this.#notifier.notifyLater(queue);
    return outcomes(r.rows);
  }

  async claim(queue: string, limit: number, leaseMs: number, now: number): Promise<ClaimedItem[]> {
    this.#checkWrite();
    if (limit <= 0) return [];
    if (this.features.mayBeLimited(queue, now)) {
      const limited = await this.features.claimLimited(queue, limit, leaseMs, now);
      if (limited !== undefined) return limited;
    }
    const sql = this.#sql.claim;
    const r = await this.#q<ClaimRow>(sql.text, [queue, now, limit, now + leaseMs], sql.name);
    return claimedRows(r.rows, (row) => leanClaimed(row, queue, now, now + leaseMs));
  }

  async complete(queue: string, refs: readonly LeaseRef[], now: number): Promise<boolean[]> {
    this.#checkWrite();
    if (refs.length === 0) return [];
    return this.#completes.add(queue, refs, now);
  }

  readonly #completes = completeBatches(async (queue, ids, tokens, nows) => {
    const sql = this.#sql.complete;
    const r = await this.#q<{ id: string; token: string }>(sql.text, [queue, ids, tokens, nows], sql.name);
    return r.rows;
  });

  async fail(queue: string, ref: LeaseRef, action: FailAction, now: number): Promise<boolean> {
    this.#checkWrite();
    const sql = this.#sql.fail;
    const values: unknown[] =
      action.kind === 'retry'
        ? [queue, ref.id, ref.leaseToken, now, 'pending', action.runAt, action.error, null]
        : [queue, ref.id, ref.leaseToken, now, 'dead', null, action.error, action.reason];
    const r = await this.#q(sql.text, values, sql.name);
    const ok = r.rows.length === 1;
    if (ok && this.#notify && action.kind === 'retry' && action.runAt <= now)
      this.#notifier.notifyLater(queue);
    return ok;
  }

  async extend(queue: string, ref: LeaseRef, leaseMs: number, now: number): Promise<boolean> {
    this.#checkWrite();
    const sql = this.#sql.extend;
    const r = await this.#q(sql.text, [queue, ref.id, ref.leaseToken, now + leaseMs, now], sql.name);
    return r.rows.length === 1;
  }

  async release(queue: string, refs: readonly LeaseRef[], now: number): Promise<boolean[]> {
    this.#checkWrite();
    const n = refs.length;
    if (n === 0) return [];
    const ids = refs.map((r) => r.id);
    const tokens = refs.map((r) => r.leaseToken);
    const r = await this.#q<{ id: string; token: string }>(this.#text.release, [queue, ids, tokens, now]);
    if (r.rows.length > 0 && this.#notify) this.#notifier.notifyLater(queue);
    const done = new Set<string>();
    for (const row of r.rows) done.add(`${row.id}\u0000${row.token}`);
    return ids.map((id, i) => done.delete(`${id}\u0000${tokens[i]!}`));
  }

  async listQueues(): Promise<string[]> {
    this.#check();
    // A skip scan over the primary key: one index probe per queue, however many items.
    const r = await this.#q<{ queue: string }>(this.#text.listQueues, []);
    return r.rows.map((row) => row.queue);
  }

  async reclaimExpired(queue: string, now: number): Promise<number> {
    this.#checkWrite();
    const r = await this.#q(this.#text.reclaim, [queue, now]);
    const count = r.rowCount ?? 0;
    if (count > 0 && this.#notify) this.#notifier.notifyLater(queue);
    return count;
  }

  async stats(queue: string, now: number): Promise<StoreStats> {
    this.#check();
    const r = await this.#q<{
      pending: number;
      delayed: number;
      active: number;
      completed: number;
      dead: number;
      oldest: string | null;
    }>(this.#text.stats, [queue, now]);
    const row = r.rows[0]!;
    return {
      pending: row.pending,
      delayed: row.delayed,
      active: row.active,
      completed: row.completed,
      dead: row.dead,
      oldestPendingAgeMs: row.oldest === null ? 0 : Math.max(0, now - Number(row.oldest)),
    };
  }

  async get(queue: string, id: string): Promise<StoredItem | undefined> {
    this.#check();
    const r = await this.#q<Row>(this.#text.get, [queue, id]);
    const row = r.rows[0];
    return row === undefined ? undefined : toItem(row);
  }

  async list(queue: string, options: ListOptions): Promise<StoredItem[]> {
    this.#check();
    const state = options.state ?? null;
    const limit = options.limit ?? 100;
    const r =
      options.order === 'updated'
        ? await this.#q<Row>(this.#text.listByUpdated, [queue, state, limit])
        : await this.#q<Row>(this.#text.list, [queue, state, options.after ?? null, limit]);
    return r.rows.map(toItem);
  }

  async redrive(queue: string, selection: RedriveSelection, now: number): Promise<string[]> {
    this.#checkWrite();
    if (selection.limit <= 0) return [];
    const r = await this.#q<{ id: string }>(this.#text.redrive, [
      queue,
      selection.ids === undefined ? null : [...selection.ids],
      selection.limit,
      now,
    ]);
    if (r.rows.length > 0 && this.#notify) this.#notifier.notifyLater(queue);
    return r.rows.map((row) => row.id);
  }

  async purge(
    queue: string,
    state: ItemState,
    options: { readonly force?: boolean; readonly olderThan?: number; readonly count?: boolean },
  ): Promise<number> {
    if (options.count === true) this.#check();
    else this.#checkWrite();
    checkPurge(queue, state, options);
    const text = options.count === true ? this.#text.purgeCount : this.#text.purge;
    const r = await this.#q<{ n: number }>(text, [queue, state, options.olderThan ?? null]);
    return r.rows[0]?.n ?? 0;
  }

  async sweep(queue: string, options: SweepOptions, now: number): Promise<number> {
    this.#checkWrite();
    const r = await this.#q<{ items: number; keys: number }>(this.#text.sweep, [
      queue,
      now - options.completedMs,
      now - options.deadMs,
      now - options.keyTtlMs,
      options.limit,
    ]);
    const row = r.rows[0];
    return row === undefined ? 0 : row.items + row.keys;
  }

  async listForRewrap(
    queue: string,
    keyId: string,
    after: string | null,
    limit: number,
  ): Promise<StoredItem[]> {
    this.#check();
    const r = await this.#q<Row>(this.#text.rewrapList, [queue, keyId, after, limit]);
    return r.rows.map(toItem);
  }

  // Deliberate repetition: the signature of QueueStore.replacePayload, restated by each store.
  async replacePayload(
    queue: string,
    id: string,
    expectedKeyId: string | null,
    payload: Uint8Array,
    keyId: string,
  ): Promise<boolean> {
    this.#checkWrite();
    const r = await this.#q(this.#text.replace, [queue, id, expectedKeyId, asBuffer(payload), keyId]);
    return r.rows.length === 1;
  }

  async subscribe(queue: string, onReady: () => void): Promise<() => Promise<void>> {
    this.#check();
    return this.#notifier.subscribe(queue, onReady);
  }

  async setPaused(queue: string, paused: boolean, now: number): Promise<void> {
    this.#checkWrite();
    await this.#q(paused ? this.#text.pause : this.#text.resume, paused ? [queue, now] : [queue]);
    if (!paused && this.#notify) this.#notifier.notifyLater(queue);
  }

  async isPaused(queue: string): Promise<boolean> {
    this.#check();
    return (await this.#q(this.#text.paused, [queue])).rows.length === 1;
  }

  async dropSchema(): Promise<void> {
    this.#checkWrite();
    await this.#q(`DROP SCHEMA IF EXISTS ${this.#s} CASCADE`, []);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#notifier.stop();
    const pending = this.#poolPromise;
    if (pending !== undefined) await pending.catch(() => undefined);
    const pool = this.#pool;
    if (pool !== undefined) {
      if (this.#ownPool) {
        await pool.end().catch(() => {});
        pool.removeListener('error', this.#onPoolError);
      } else {
        pool.removeListener('error', this.#onPoolError);
      }
    }
  }
}

/** A pg client or pool client used as a caller's transaction. */
interface TxClient {
  query(config: { text: string; values: unknown[] }): Promise<QueryResult<QueryResultRow>>;
}

function closedError(cause?: unknown): BulwarkDurableError {
  return new BulwarkDurableError('CLOSED', 'The PostgreSQL store was closed; open a new one', { cause });
}
