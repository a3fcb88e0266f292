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

import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { BulwarkDurableError } from './errors.js';
import type {
  ClaimedItem,
  EnqueueOutcome,
  FailAction,
  ItemState,
  LeaseRef,
  ListOptions,
  NewItem,
  QueueStore,
  RedriveSelection,
  StoredItem,
  StoreStats,
  SweepOptions,
} from './store.js';

/**
 * Options of {@link postgresStore}.
 *
 * @example
 * ```ts
 * import type { PostgresStoreOptions } from 'bulwark/durable';
 * const options: PostgresStoreOptions = { connectionString: 'postgres://app@db/app', schema: 'jobs', poolSize: 20 };
 * console.log(options.schema); // jobs
 * ```
 */
export interface PostgresStoreOptions {
  /**
   * A `postgres://` connection string; a `schema` query parameter (`?schema=jobs`) sets the schema
   * when `schema` is not given. Ignored when `pool` is given. Default: the `pg` defaults
   * (`PG*` environment variables).
   */
  readonly connectionString?: string;
  /**
   * A `pg.Pool` of your own. The store uses it and does not close it; its LISTEN connection is one
   * client checked out of this pool for as long as someone subscribes.
   */
  readonly pool?: Pool;
  /** Schema holding the tables (created by `init`). Default `'bulwark'`. */
  readonly schema?: string;
  /** Connections of the store's own pool (plus one for LISTEN). Default 10. */
  readonly poolSize?: number;
  /** How long to wait for a connection before a call fails with `STORE_UNAVAILABLE`. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * Client-side limit per statement of the store's own pool; a statement over it fails with
   * `STORE_UNAVAILABLE` and its connection is discarded (catches half-open connections). Default 30000 ms.
   */
  readonly queryTimeoutMs?: number;
  /** Send NOTIFY on enqueue, retry and redrive so that idle workers elsewhere wake at once. Default true. */
  readonly notify?: boolean;
  /**
   * Commit claims, completes and lease extensions without waiting for the WAL flush
   * (`synchronous_commit = off` for those statements only; enqueues, failures and dead-lettering
   * always wait). Safe for at-least-once delivery: if the PostgreSQL server itself crashes, the
   * last few hundred milliseconds of claims and completes may be lost, and those items simply run
   * again (a lost claim was never claimed; a lost completion expires and re-runs). Default true.
   */
  readonly asyncAcks?: boolean;
  /** How often the LISTEN connection is pinged (a failed or slow ping reconnects it). Default 10000 ms. */
  readonly listenCheckMs?: number;
  /** Called with errors of background work (the LISTEN connection). Default: ignored. */
  readonly onError?: (error: unknown) => void;
}

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
 * The latest schema version this code creates and understands (`<schema>.schema_version`).
 *
 * @example
 * ```ts nocheck
 * import { POSTGRES_SCHEMA_VERSION } from 'bulwark/durable/postgres-store';
 * console.log(POSTGRES_SCHEMA_VERSION); // 1
 * ```
 */
export const POSTGRES_SCHEMA_VERSION = 1;

const optionsSchema = z
  .object({
    connectionString: z.string().min(1).optional(),
    pool: z
      .custom<Pool>(
        (v) =>
          typeof v === 'object' && v !== null && typeof (v as { connect?: unknown }).connect === 'function',
        'a pg.Pool',
      )
      .optional(),
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,47}$/, 'a lower-case identifier of at most 48 characters ([a-z_][a-z0-9_]*)')
      .optional(),
    poolSize: z.number().int().min(1).max(1000).optional(),
    connectTimeoutMs: z.number().int().min(1).optional(),
    queryTimeoutMs: z.number().int().min(1).optional(),
    notify: z.boolean().optional(),
    asyncAcks: z.boolean().optional(),
    listenCheckMs: z.number().int().min(10).optional(),
    onError: z.custom<(error: unknown) => void>((v) => typeof v === 'function', 'a function').optional(),
  })
  .strict();

function validate(options: PostgresStoreOptions): void {
  const r = optionsSchema.safeParse(options);
  if (r.success) return;
  const issue = r.error.issues[0]!;
  const path = ['postgresStore', ...issue.path.map(String)].join('.');
  if (issue.code === 'unrecognized_keys') {
    throw ConfigError.unknown(`postgresStore.${issue.keys[0] ?? ''}`, Object.keys(optionsSchema.shape));
  }
  throw new ConfigError(path, issue.message, undefined, `${path}: ${issue.message}`);
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  '40001', // serialization_failure (a retry will do)
  '40P01', // deadlock_detected
]);
const TRANSIENT_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Connection closed|not queryable|ended by the server|terminating connection|the database system is (starting up|shutting down|in recovery)/i;

/** True when `error` means the database is unreachable or the connection broke (worth retrying). */
function isUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (TRANSIENT_CODES.has(code) || code.startsWith('08'))) return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === 'string' && TRANSIENT_MESSAGE.test(message);
}

interface Row extends QueryResultRow {
  id: string;
  queue: string;
  payload: Buffer;
  key_id: string | null;
  key: string | null;
  priority: number;
  run_at: string;
  state: ItemState;
  attempts: number;
  max_attempts: number;
  created_at: string;
  updated_at: string;
  last_error: string | null;
  dead_reason: string | null;
  redrives: number;
  last_redrive_at: string | null;
  lease_token: string | null;
  lease_until: string | null;
}

const COLUMNS =
  'id, queue, payload, key_id, key, priority, run_at, state, attempts, max_attempts, created_at, updated_at, last_error, dead_reason, redrives, last_redrive_at, lease_token, lease_until';

function toItem(r: Row): StoredItem {
  return {
    id: r.id,
    queue: r.queue,
    payload: r.payload,
    keyId: r.key_id,
    key: r.key,
    priority: r.priority,
    runAt: Number(r.run_at),
    state: r.state,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    lastError: r.last_error,
    deadReason: r.dead_reason,
    redrives: r.redrives,
    lastRedriveAt: r.last_redrive_at === null ? null : Number(r.last_redrive_at),
  };
}

function toClaimed(r: Row): ClaimedItem {
  return { ...toItem(r), leaseToken: r.lease_token ?? '', leaseUntil: Number(r.lease_until) };
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** The schema's DDL, by version. Each runs once, in order, under the migration lock. */
function migrations(s: string): readonly string[] {
  return [
    // v1
    `CREATE TABLE ${s}.items (
       queue text NOT NULL,
       id text COLLATE "C" NOT NULL,
       payload bytea NOT NULL,
       key_id text,
       key text,
       priority integer NOT NULL DEFAULT 0,
       run_at bigint NOT NULL,
       state text NOT NULL CHECK (state IN ('pending', 'active', 'completed', 'dead')),
       attempts integer NOT NULL DEFAULT 0,
       max_attempts integer NOT NULL,
       created_at bigint NOT NULL,
       updated_at bigint NOT NULL,
       last_error text,
       dead_reason text,
       redrives integer NOT NULL DEFAULT 0,
       last_redrive_at bigint,
       lease_token text,
       lease_until bigint,
       PRIMARY KEY (queue, id)
     );
     CREATE INDEX items_ready ON ${s}.items (queue, priority DESC, run_at, id) WHERE state = 'pending';
     CREATE INDEX items_leases ON ${s}.items (queue, lease_until) WHERE state = 'active';
     CREATE INDEX items_terminal ON ${s}.items (queue, state, updated_at) WHERE state IN ('completed', 'dead');
     CREATE TABLE ${s}.keys (
       queue text NOT NULL,
       key text NOT NULL,
       item_id text COLLATE "C" NOT NULL,
       released_at bigint,
       PRIMARY KEY (queue, key)
     );
     CREATE INDEX keys_released ON ${s}.keys (queue, released_at) WHERE released_at IS NOT NULL;`,
  ];
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
  validate(options);
  let schema = options.schema;
  let connectionString = options.connectionString;
  let description = 'postgres';
  if (connectionString !== undefined) {
    try {
      const url = new URL(connectionString);
      const fromUrl = url.searchParams.get('schema');
      if (fromUrl !== null) {
        url.searchParams.delete('schema');
        connectionString = url.toString();
        if (schema === undefined) {
          if (!/^[a-z_][a-z0-9_]{0,47}$/.test(fromUrl)) {
            throw new ConfigError(
              'postgresStore.connectionString',
              'a schema parameter that is a lower-case identifier',
              fromUrl,
            );
          }
          schema = fromUrl;
        }
      }
      description = `postgres://${url.host}${url.pathname}`;
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      description = 'postgres';
    }
  } else if (options.pool !== undefined) {
    const o = (
      options.pool as unknown as { options?: { host?: unknown; port?: unknown; database?: unknown } }
    ).options;
    if (o !== undefined && typeof o.host === 'string') {
      description = `postgres://${o.host}${o.port === undefined ? '' : `:${String(o.port)}`}/${String(o.database ?? '')}`;
    }
  }
  const sch = schema ?? 'bulwark';
  description += `?schema=${sch}`;
  return new PgStore(options, sch, connectionString, description);
}

type Listener = () => void;

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
  // LISTEN state
  readonly #subs = new Map<string, Set<Listener>>();
  #listenClient: PoolClient | undefined;
  #listenStarting: Promise<void> | undefined;
  #listenTimer: ReturnType<typeof setTimeout> | undefined;
  #listenCheck: ReturnType<typeof setInterval> | undefined;
  #listenBackoff = 100;
  #listenedBefore = false;
  // SQL
  readonly #sql: ReturnType<typeof statements>;

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
    let mod: typeof import('pg');
    try {
      mod = await import('pg');
    } catch (error) {
      throw new BulwarkDurableError(
        'STORE_UNAVAILABLE',
        'The PostgreSQL store needs the `pg` package: install it (`npm install pg`) or pass your own `pool`',
        { cause: error },
      );
    }
    const PoolCtor = (mod as unknown as { default?: typeof import('pg') }).default?.Pool ?? mod.Pool;
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
    if (isUnavailable(error)) {
      const why = error instanceof Error ? error.message : String(error);
      return new BulwarkDurableError(
        'STORE_UNAVAILABLE',
        `PostgreSQL store ${this.description} is unavailable (${why}); the call can be retried once the database is reachable`,
        { cause: error },
      );
    }
    return error;
  }

  #check(): void {
    if (this.#closed) throw closedError();
  }

  async init(): Promise<void> {
    this.#check();
    const pool = await this.#getPool();
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw this.#wrap(error);
    }
    let broken: unknown;
    const onError = (e: unknown) => {
      broken = e;
    };
    client.on('error', onError);
    try {
      const s = this.#s;
      // Fast path: already at the latest version (no lock needed).
      const present = await client.query<{ p: boolean }>('SELECT to_regclass($1) IS NOT NULL AS p', [
        `${s}.schema_version`,
      ]);
      if (present.rows[0]?.p === true) {
        const current = await client.query<{ v: number | null }>(
          `SELECT max(version) AS v FROM ${s}.schema_version`,
        );
        if (current.rows[0]?.v === POSTGRES_SCHEMA_VERSION) return;
      }
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
          `bulwark.migrate.${this.schema}`,
        ]);
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${s}.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
        );
        const r = await client.query<{ v: number | null }>(
          `SELECT max(version) AS v FROM ${s}.schema_version`,
        );
        const at = r.rows[0]?.v ?? 0;
        if (at > POSTGRES_SCHEMA_VERSION) {
          throw new BulwarkDurableError(
            'INVALID_STATE',
            `Schema ${this.schema} is at version ${at}, newer than this bulwark understands (${POSTGRES_SCHEMA_VERSION}); upgrade bulwark`,
          );
        }
        const all = migrations(s);
        for (let v = at + 1; v <= POSTGRES_SCHEMA_VERSION; v++) {
          await client.query(all[v - 1]!);
          await client.query(`INSERT INTO ${s}.schema_version (version) VALUES ($1)`, [v]);
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    } catch (error) {
      throw this.#wrap(error);
    } finally {
      client.removeListener('error', onError);
      client.release(broken === undefined ? undefined : (broken as Error));
    }
  }

  async enqueue(
    queue: string,
    items: readonly NewItem[],
    now: number,
    tx?: unknown,
  ): Promise<EnqueueOutcome[]> {
    this.#check();
    if (tx !== undefined && tx !== null) {
      if (typeof tx !== 'object' || typeof (tx as { query?: unknown }).query !== 'function') {
        throw new BulwarkDurableError(
          'TX_UNSUPPORTED',
          'The PostgreSQL store takes a `pg` Client or PoolClient (inside your BEGIN) as `tx`; got something else',
        );
      }
      if (items.length === 0) return [];
      return this.#insert(queue, items, uniformNow(items.length, now), tx as TxClient);
    }
    if (items.length === 0) return [];
    // Enqueues of one queue that arrive while one is in flight go out together in the next
    // statement (one commit, one WAL flush); each call still resolves only after that commit.
    let batch = this.#enqueuing.get(queue);
    if (batch === undefined) {
      batch = { inFlight: false, waiting: [], size: 0 };
      this.#enqueuing.set(queue, batch);
    }
    return new Promise<EnqueueOutcome[]>((resolve, reject) => {
      batch.waiting.push({ items, now, resolve, reject });
      batch.size += items.length;
      if (!batch.inFlight) {
        // Wait for the rest of this turn of the event loop: calls made together go out together.
        batch.inFlight = true;
        setImmediate(() => void this.#flushEnqueues(queue, batch));
      }
    });
  }

  readonly #enqueuing = new Map<string, EnqueueBatch>();

  async #flushEnqueues(queue: string, batch: EnqueueBatch): Promise<void> {
    batch.inFlight = true;
    while (batch.waiting.length > 0) {
      // Take calls up to MAX_GROUP items (a single larger call goes alone).
      let take = 0;
      let size = 0;
      while (take < batch.waiting.length) {
        const next = batch.waiting[take]!.items.length;
        if (take > 0 && size + next > MAX_GROUP) break;
        size += next;
        take++;
      }
      const calls = batch.waiting.splice(0, take);
      batch.size -= size;
      if (calls.length === 1) {
        const c = calls[0]!;
        try {
          c.resolve(await this.#insert(queue, c.items, uniformNow(size, c.now), undefined));
        } catch (error) {
          c.reject(error);
        }
        continue;
      }
      const all: NewItem[] = [];
      const nows: number[] = [];
      for (const c of calls) {
        for (const it of c.items) {
          all.push(it);
          nows.push(c.now);
        }
      }
      try {
        const out = await this.#insert(queue, all, nows, undefined);
        let j = 0;
        for (const c of calls) {
          c.resolve(out.slice(j, j + c.items.length));
          j += c.items.length;
        }
      } catch (error) {
        if (error instanceof BulwarkDurableError) {
          for (const c of calls) c.reject(error);
          continue;
        }
        // One call's bad item (a duplicate id, say) must not fail the others: retry each alone.
        for (const c of calls) {
          try {
            c.resolve(await this.#insert(queue, c.items, uniformNow(c.items.length, c.now), undefined));
          } catch (e) {
            c.reject(e);
          }
        }
      }
    }
    batch.inFlight = false;
    this.#enqueuing.delete(queue);
  }

  /** One INSERT statement for `items` (a repeated key within them is a duplicate of its first occurrence). */
  async #insert(
    queue: string,
    items: readonly NewItem[],
    nows: readonly number[],
    client: TxClient | undefined,
  ): Promise<EnqueueOutcome[]> {
    const n = items.length;
    let unique: readonly NewItem[] = items;
    let uniqueNows: readonly number[] = nows;
    let firstOfKey: Map<string, number> | undefined;
    let alias: number[] | undefined;
    for (let i = 0; i < n; i++) {
      const k = items[i]!.key;
      if (k === null) continue;
      firstOfKey ??= new Map();
      const first = firstOfKey.get(k);
      if (first === undefined) firstOfKey.set(k, i);
      else {
        alias ??= new Array<number>(n).fill(-1);
        alias[i] = first;
      }
    }
    if (alias !== undefined) {
      unique = items.filter((_, i) => alias[i] === -1);
      uniqueNows = nows.filter((_, i) => alias[i] === -1);
    }
    const m = unique.length;
    const ids = new Array<string>(m);
    // Payloads travel as ONE binary bytea plus offsets and lengths (a bytea[] would be hex text).
    const parts = new Array<Buffer>(m);
    const offs = new Array<number>(m);
    const lens = new Array<number>(m);
    let at = 0;
    const keyIds = new Array<string | null>(m);
    const keys = new Array<string | null>(m);
    const priorities = new Array<number>(m);
    const runAts = new Array<number>(m);
    const maxAttempts = new Array<number>(m);
    const createdAts = new Array<number>(m);
    let anyKey = false;
    for (let i = 0; i < m; i++) {
      const it = unique[i]!;
      ids[i] = it.id;
      const b = asBuffer(it.payload);
      parts[i] = b;
      offs[i] = at;
      lens[i] = b.length;
      at += b.length;
      keyIds[i] = it.keyId;
      keys[i] = it.key;
      if (it.key !== null) anyKey = true;
      priorities[i] = it.priority;
      runAts[i] = it.runAt;
      maxAttempts[i] = it.maxAttempts;
      createdAts[i] = it.createdAt;
    }
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
    const values: unknown[] = [
      queue,
      ids,
      m === 1 ? parts[0]! : Buffer.concat(parts, at),
      keyIds,
      keys,
      priorities,
      runAts,
      maxAttempts,
      createdAts,
      uniqueNows,
      offs,
      lens,
    ];
    if (notify) values.push(this.#channel);
    const r = await this.#q<{ id: string; existing: string | null }>(
      sql.text,
      values,
      client === undefined ? sql.name : undefined,
      client,
    );
    if (client === undefined && this.#notify) this.#notifyLater(queue);
    const byId = new Map<string, string | null>();
    for (const row of r.rows) byId.set(row.id, row.existing);
    const out = new Array<EnqueueOutcome>(n);
    for (let i = 0; i < n; i++) {
      const a = alias?.[i] ?? -1;
      if (a !== -1) {
        out[i] = { id: out[a]!.id, duplicate: true };
        continue;
      }
      const id = items[i]!.id;
      const existing = byId.get(id) ?? null;
      out[i] =
        existing !== null && existing !== id ? { id: existing, duplicate: true } : { id, duplicate: false };
    }
    return out;
  }

  async claim(queue: string, limit: number, leaseMs: number, now: number): Promise<ClaimedItem[]> {
    this.#check();
    if (limit <= 0) return [];
    const sql = this.#sql.claim;
    const r = await this.#q<Row>(sql.text, [queue, now, limit, now + leaseMs], sql.name);
    const out = r.rows.map(toClaimed);
    if (out.length > 1) out.sort(claimOrder);
    return out;
  }

  async complete(queue: string, refs: readonly LeaseRef[], now: number): Promise<boolean[]> {
    this.#check();
    if (refs.length === 0) return [];
    // Completes of one queue that arrive while one is in flight go out together in the next statement.
    let batch = this.#completing.get(queue);
    if (batch === undefined) {
      batch = { inFlight: false, waiting: [] };
      this.#completing.set(queue, batch);
    }
    return new Promise<boolean[]>((resolve, reject) => {
      batch.waiting.push({ refs, now, resolve, reject });
      if (!batch.inFlight) {
        // Wait for the rest of this turn of the event loop: calls made together go out together.
        batch.inFlight = true;
        setImmediate(() => void this.#flushCompletes(queue, batch));
      }
    });
  }

  readonly #completing = new Map<string, CompleteBatch>();

  async #flushCompletes(queue: string, batch: CompleteBatch): Promise<void> {
    while (batch.waiting.length > 0) {
      batch.inFlight = true;
      const calls = batch.waiting;
      batch.waiting = [];
      let n = 0;
      for (const c of calls) n += c.refs.length;
      const ids = new Array<string>(n);
      const tokens = new Array<string>(n);
      const nows = new Array<number>(n);
      let j = 0;
      for (const c of calls) {
        for (const ref of c.refs) {
          ids[j] = ref.id;
          tokens[j] = ref.leaseToken;
          nows[j] = c.now;
          j++;
        }
      }
      try {
        const sql = this.#sql.complete;
        const r = await this.#q<{ id: string; token: string }>(
          sql.text,
          [queue, ids, tokens, nows],
          sql.name,
        );
        if (r.rows.length === n && calls.length === 1) {
          calls[0]!.resolve(new Array<boolean>(n).fill(true));
          continue;
        }
        const done = new Set<string>();
        for (const row of r.rows) done.add(`${row.id}\u0000${row.token}`);
        j = 0;
        for (const c of calls) {
          const out = new Array<boolean>(c.refs.length);
          for (let i = 0; i < out.length; i++, j++) {
            // A ref repeated in one statement settles once: later copies report false.
            out[i] = done.delete(`${ids[j]!}\u0000${tokens[j]!}`);
          }
          c.resolve(out);
        }
      } catch (error) {
        for (const c of calls) c.reject(error);
      }
    }
    batch.inFlight = false;
    this.#completing.delete(queue);
  }

  async fail(queue: string, ref: LeaseRef, action: FailAction, now: number): Promise<boolean> {
    this.#check();
    const sql = this.#sql.fail;
    const values: unknown[] =
      action.kind === 'retry'
        ? [queue, ref.id, ref.leaseToken, now, 'pending', action.runAt, action.error, null]
        : [queue, ref.id, ref.leaseToken, now, 'dead', null, action.error, action.reason];
    const r = await this.#q(sql.text, values, sql.name);
    const ok = r.rows.length === 1;
    if (ok && this.#notify && action.kind === 'retry' && action.runAt <= now) this.#notifyLater(queue);
    return ok;
  }

  readonly #notifying = new Map<string, { again: boolean }>();

  /** NOTIFY after a commit, at most one in flight per queue (one more follows if asked meanwhile). */
  #notifyLater(queue: string): void {
    const state = this.#notifying.get(queue);
    if (state !== undefined) {
      state.again = true;
      return;
    }
    const st = { again: false };
    this.#notifying.set(queue, st);
    const send = (): void => {
      st.again = false;
      this.#q('SELECT pg_notify($1, $2)', [this.#channel, queue], this.#sql.notify.name).then(
        () => {
          if (st.again && !this.#closed) send();
          else this.#notifying.delete(queue);
        },
        (error: unknown) => {
          this.#notifying.delete(queue);
          this.#report(error);
        },
      );
    };
    send();
  }

  async extend(queue: string, ref: LeaseRef, leaseMs: number, now: number): Promise<boolean> {
    this.#check();
    const sql = this.#sql.extend;
    const r = await this.#q(sql.text, [queue, ref.id, ref.leaseToken, now + leaseMs, now], sql.name);
    return r.rows.length === 1;
  }

  async release(queue: string, refs: readonly LeaseRef[], now: number): Promise<boolean[]> {
    this.#check();
    const n = refs.length;
    if (n === 0) return [];
    const ids = refs.map((r) => r.id);
    const tokens = refs.map((r) => r.leaseToken);
    const r = await this.#q<{ id: string; token: string }>(
      `WITH refs AS (SELECT * FROM unnest($2::text[], $3::text[]) AS r(id, token))
       UPDATE ${this.#s}.items i SET state = 'pending', attempts = greatest(i.attempts - 1, 0),
         lease_token = NULL, lease_until = NULL, updated_at = $4
       FROM refs WHERE i.queue = $1 AND i.id = refs.id AND i.lease_token = refs.token
         AND i.state = 'active' AND i.lease_until > $4
       RETURNING i.id, refs.token`,
      [queue, ids, tokens, now],
    );
    if (r.rows.length > 0 && this.#notify) this.#notifyLater(queue);
    const done = new Set<string>();
    for (const row of r.rows) done.add(`${row.id}\u0000${row.token}`);
    return ids.map((id, i) => done.delete(`${id}\u0000${tokens[i]!}`));
  }

  async listQueues(): Promise<string[]> {
    this.#check();
    const s = this.#s;
    // A skip scan over the primary key: one index probe per queue, however many items.
    const r = await this.#q<{ queue: string }>(
      `WITH RECURSIVE q AS (
         (SELECT queue FROM ${s}.items ORDER BY queue LIMIT 1)
         UNION ALL
         SELECT (SELECT i.queue FROM ${s}.items i WHERE i.queue > q.queue ORDER BY i.queue LIMIT 1)
         FROM q WHERE q.queue IS NOT NULL
       )
       SELECT queue FROM q WHERE queue IS NOT NULL`,
      [],
    );
    return r.rows.map((row) => row.queue);
  }

  async reclaimExpired(queue: string, now: number): Promise<number> {
    this.#check();
    const r = await this.#q(
      `UPDATE ${this.#s}.items SET state = 'pending', lease_token = NULL, lease_until = NULL, updated_at = $2
       WHERE queue = $1 AND state = 'active' AND lease_until <= $2`,
      [queue, now],
    );
    const count = r.rowCount ?? 0;
    if (count > 0 && this.#notify) this.#notifyLater(queue);
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
    }>(
      `SELECT count(*) FILTER (WHERE state = 'pending')::int AS pending,
              count(*) FILTER (WHERE state = 'pending' AND run_at > $2)::int AS delayed,
              count(*) FILTER (WHERE state = 'active')::int AS active,
              count(*) FILTER (WHERE state = 'completed')::int AS completed,
              count(*) FILTER (WHERE state = 'dead')::int AS dead,
              min(run_at) FILTER (WHERE state = 'pending' AND run_at <= $2) AS oldest
       FROM ${this.#s}.items WHERE queue = $1`,
      [queue, now],
    );
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
    const r = await this.#q<Row>(`SELECT ${COLUMNS} FROM ${this.#s}.items WHERE queue = $1 AND id = $2`, [
      queue,
      id,
    ]);
    const row = r.rows[0];
    return row === undefined ? undefined : toItem(row);
  }

  async list(queue: string, options: ListOptions): Promise<StoredItem[]> {
    this.#check();
    const r = await this.#q<Row>(
      `SELECT ${COLUMNS} FROM ${this.#s}.items
       WHERE queue = $1 AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR id > $3)
       ORDER BY id LIMIT $4`,
      [queue, options.state ?? null, options.after ?? null, options.limit ?? 100],
    );
    return r.rows.map(toItem);
  }

  async redrive(queue: string, selection: RedriveSelection, now: number): Promise<string[]> {
    this.#check();
    if (selection.limit <= 0) return [];
    const s = this.#s;
    const r = await this.#q<{ id: string }>(
      `WITH sel AS MATERIALIZED (
         SELECT id, row_number() OVER (ORDER BY updated_at, id) AS rn FROM (
           SELECT id, updated_at FROM ${s}.items
           WHERE queue = $1 AND state = 'dead' AND ($2::text[] IS NULL OR id = ANY($2::text[]))
           ORDER BY updated_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) d
       ), upd AS (
         UPDATE ${s}.items i SET state = 'pending', attempts = 0, run_at = $4, updated_at = $4,
           redrives = i.redrives + 1, last_redrive_at = $4
         FROM sel WHERE i.queue = $1 AND i.id = sel.id AND i.state = 'dead'
         RETURNING i.id
       )
       SELECT upd.id FROM upd JOIN sel ON sel.id = upd.id ORDER BY sel.rn`,
      [queue, selection.ids === undefined ? null : [...selection.ids], selection.limit, now],
    );
    if (r.rows.length > 0 && this.#notify) this.#notifyLater(queue);
    return r.rows.map((row) => row.id);
  }

  async purge(
    queue: string,
    state: ItemState,
    options: { readonly force?: boolean; readonly olderThan?: number },
  ): Promise<number> {
    this.#check();
    if ((state === 'pending' || state === 'active') && options.force !== true) {
      throw new BulwarkDurableError(
        'INVALID_STATE',
        `Refusing to purge ${state} items of queue "${queue}": they have not run yet; pass force: true to delete them anyway`,
      );
    }
    const s = this.#s;
    const r = await this.#q<{ n: number }>(
      `WITH del AS (
         DELETE FROM ${s}.items WHERE queue = $1 AND state = $2 AND ($3::bigint IS NULL OR updated_at < $3)
         RETURNING id, key
       ), k AS (
         DELETE FROM ${s}.keys k USING del
         WHERE $2 <> 'completed' AND del.key IS NOT NULL AND k.queue = $1 AND k.key = del.key AND k.item_id = del.id
       )
       SELECT count(*)::int AS n FROM del`,
      [queue, state, options.olderThan ?? null],
    );
    return r.rows[0]?.n ?? 0;
  }

  async sweep(queue: string, options: SweepOptions, now: number): Promise<number> {
    this.#check();
    const s = this.#s;
    const r = await this.#q<{ items: number; keys: number }>(
      `WITH victims AS MATERIALIZED (
         (SELECT id FROM ${s}.items WHERE queue = $1 AND state = 'completed' AND updated_at <= $2
          ORDER BY updated_at LIMIT $5)
         UNION ALL
         (SELECT id FROM ${s}.items WHERE queue = $1 AND state = 'dead' AND updated_at <= $3
          ORDER BY updated_at LIMIT $5)
       ), del AS (
         DELETE FROM ${s}.items i USING (SELECT id FROM victims LIMIT $5) v
         WHERE i.queue = $1 AND i.id = v.id AND i.state IN ('completed', 'dead')
         RETURNING i.id, i.key, i.state
       ), kdead AS (
         DELETE FROM ${s}.keys k USING del
         WHERE del.state = 'dead' AND del.key IS NOT NULL AND k.queue = $1 AND k.key = del.key AND k.item_id = del.id
         RETURNING 1
       ), kold AS (
         DELETE FROM ${s}.keys k WHERE k.queue = $1 AND k.ctid = ANY(ARRAY(
           SELECT ctid FROM ${s}.keys WHERE queue = $1 AND released_at IS NOT NULL AND released_at <= $4 LIMIT $5))
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM del)::int AS items, (SELECT count(*) FROM kold)::int AS keys`,
      [queue, now - options.completedMs, now - options.deadMs, now - options.keyTtlMs, options.limit],
    );
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
    const r = await this.#q<Row>(
      `SELECT ${COLUMNS} FROM ${this.#s}.items
       WHERE queue = $1 AND key_id IS NOT NULL AND key_id <> $2 AND ($3::text IS NULL OR id > $3)
       ORDER BY id LIMIT $4`,
      [queue, keyId, after, limit],
    );
    return r.rows.map(toItem);
  }

  async replacePayload(
    queue: string,
    id: string,
    expectedKeyId: string | null,
    payload: Uint8Array,
    keyId: string,
  ): Promise<boolean> {
    this.#check();
    const r = await this.#q(
      `UPDATE ${this.#s}.items SET payload = $4, key_id = $5
       WHERE queue = $1 AND id = $2 AND key_id IS NOT DISTINCT FROM $3 RETURNING id`,
      [queue, id, expectedKeyId, asBuffer(payload), keyId],
    );
    return r.rows.length === 1;
  }

  // ---- LISTEN/NOTIFY ----

  async subscribe(queue: string, onReady: () => void): Promise<() => Promise<void>> {
    this.#check();
    let set = this.#subs.get(queue);
    if (set === undefined) {
      set = new Set();
      this.#subs.set(queue, set);
    }
    // Wrap so that the same function subscribed twice is two subscriptions.
    const listener: Listener = () => onReady();
    set.add(listener);
    try {
      await withTimeout(this.#ensureListening(), this.#options.listenCheckMs ?? 10_000, 'subscribing');
    } catch (error) {
      // The LISTEN connection reconnects in the background; the queue polls meanwhile.
      this.#report(error);
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      const cur = this.#subs.get(queue);
      cur?.delete(listener);
      if (cur !== undefined && cur.size === 0) this.#subs.delete(queue);
      if (this.#subs.size === 0) this.#stopListening();
    };
  }

  #ensureListening(): Promise<void> {
    if (this.#listenClient !== undefined || this.#closed) return Promise.resolve();
    this.#listenStarting ??= this.#startListening().finally(() => {
      this.#listenStarting = undefined;
    });
    return this.#listenStarting;
  }

  async #startListening(): Promise<void> {
    if (this.#listenTimer !== undefined) {
      clearTimeout(this.#listenTimer);
      this.#listenTimer = undefined;
    }
    let client: PoolClient | undefined;
    const limit = this.#options.listenCheckMs ?? 10_000;
    try {
      const pool = await this.#getPool();
      // Bounded: a half-open network must not leave the LISTEN connection hanging forever.
      client = await withTimeout(pool.connect(), limit, 'connecting the LISTEN connection', (late) =>
        destroyClient(late),
      );
      const c = client;
      c.on('error', (error) => this.#dropListener(c, error));
      c.on('end', () => this.#dropListener(c, new Error('LISTEN connection ended')));
      c.on('notification', (msg) => {
        if (msg.channel !== this.#channel) return;
        if (msg.payload === undefined) return;
        this.#fire(msg.payload);
      });
      await withTimeout(c.query(`LISTEN "${this.#channel}"`), limit, 'LISTEN');
      if (this.#closed || this.#subs.size === 0) {
        c.release(true);
        return;
      }
      this.#listenClient = c;
      this.#listenBackoff = 100;
      const every = this.#options.listenCheckMs ?? 10_000;
      this.#listenCheck = setInterval(() => this.#ping(c, every), every);
      this.#listenCheck.unref?.();
      // After a reconnect, notifications may have been missed: let every subscriber look.
      if (this.#listenedBefore) for (const q of this.#subs.keys()) this.#fire(q);
      this.#listenedBefore = true;
    } catch (error) {
      if (client !== undefined) destroyClient(client);
      this.#scheduleListen();
      throw this.#wrap(error);
    }
  }

  #ping(c: PoolClient, timeoutMs: number): void {
    if (this.#listenClient !== c) return;
    let settled = false;
    const timer = setTimeout(() => {
      if (!settled)
        this.#dropListener(c, new Error(`LISTEN connection did not answer a ping within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref?.();
    c.query('SELECT 1').then(
      () => {
        settled = true;
        clearTimeout(timer);
      },
      (error: unknown) => {
        settled = true;
        clearTimeout(timer);
        this.#dropListener(c, error);
      },
    );
  }

  #dropListener(c: PoolClient, error: unknown): void {
    if (this.#listenClient !== c) return;
    this.#listenClient = undefined;
    if (this.#listenCheck !== undefined) {
      clearInterval(this.#listenCheck);
      this.#listenCheck = undefined;
    }
    this.#report(this.#wrap(error));
    destroyClient(c);
    if (!this.#closed && this.#subs.size > 0) this.#scheduleListen();
  }

  #scheduleListen(): void {
    if (this.#closed || this.#subs.size === 0 || this.#listenTimer !== undefined) return;
    const delay = this.#listenBackoff;
    this.#listenBackoff = Math.min(this.#listenBackoff * 2, 5000);
    this.#listenTimer = setTimeout(() => {
      this.#listenTimer = undefined;
      this.#ensureListening().catch((error: unknown) => this.#report(error));
    }, delay);
    this.#listenTimer.unref?.();
  }

  #stopListening(): void {
    if (this.#listenTimer !== undefined) {
      clearTimeout(this.#listenTimer);
      this.#listenTimer = undefined;
    }
    if (this.#listenCheck !== undefined) {
      clearInterval(this.#listenCheck);
      this.#listenCheck = undefined;
    }
    const c = this.#listenClient;
    this.#listenClient = undefined;
    if (c !== undefined) destroyClient(c);
  }

  #fire(queue: string): void {
    const set = this.#subs.get(queue);
    if (set === undefined) return;
    for (const l of set) {
      try {
        l();
      } catch (error) {
        this.#report(error);
      }
    }
  }

  async dropSchema(): Promise<void> {
    this.#check();
    await this.#q(`DROP SCHEMA IF EXISTS ${this.#s} CASCADE`, []);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subs.clear();
    this.#stopListening();
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

/** Most items one grouped INSERT carries. */
const MAX_GROUP = 1000;

function uniformNow(n: number, now: number): number[] {
  return new Array<number>(n).fill(now);
}

interface EnqueueCall {
  readonly items: readonly NewItem[];
  readonly now: number;
  readonly resolve: (out: EnqueueOutcome[]) => void;
  readonly reject: (error: unknown) => void;
}

interface EnqueueBatch {
  inFlight: boolean;
  waiting: EnqueueCall[];
  size: number;
}

interface CompleteCall {
  readonly refs: readonly LeaseRef[];
  readonly now: number;
  readonly resolve: (out: boolean[]) => void;
  readonly reject: (error: unknown) => void;
}

interface CompleteBatch {
  inFlight: boolean;
  waiting: CompleteCall[];
}

/** A pg client or pool client used as a caller's transaction. */
interface TxClient {
  query(config: { text: string; values: unknown[] }): Promise<QueryResult<QueryResultRow>>;
}

function closedError(cause?: unknown): BulwarkDurableError {
  return new BulwarkDurableError('CLOSED', 'The PostgreSQL store was closed; open a new one', { cause });
}

/** Releases a pool client and destroys its socket at once (a half-open connection never ends by itself). */
function destroyClient(c: PoolClient): void {
  c.removeAllListeners('notification');
  c.on('error', () => {});
  try {
    c.release(true);
  } catch {
    // released already
  }
  try {
    (c as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
  } catch {
    // nothing more to do
  }
}

/** `p`, or a rejection after `ms`; a value that arrives late goes to `onLate`. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string, onLate?: (late: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`${what} took more than ${ms} ms`));
    }, ms);
    timer.unref?.();
    p.then(
      (v) => {
        clearTimeout(timer);
        if (timedOut) onLate?.(v);
        else resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        if (!timedOut) reject(e);
      },
    );
  });
}

function claimOrder(a: ClaimedItem, b: ClaimedItem): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.runAt !== b.runAt) return a.runAt - b.runAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

interface Statement {
  readonly name: string;
  readonly text: string;
}

/** The hot statements, prepared once per connection (named per schema). */
function statements(s: string, schema: string, asyncAcks: boolean) {
  const named = (name: string, text: string): Statement => ({
    name: `bulwark2_${schema}_${asyncAcks ? 'a' : 's'}_${name}`,
    text,
  });
  // set_config(…, true) lasts until the end of the statement's own (implicit) transaction.
  const cfg = asyncAcks
    ? `cfg AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS v), `
    : '';
  const withCfg = asyncAcks ? ', cfg' : '';
  const input = `SELECT t.id, substring($3::bytea FROM t.off + 1 FOR t.len) AS payload, t.key_id, t.key, t.priority,
        t.run_at, t.max_attempts, t.created_at, t.now
      FROM unnest($2::text[], $4::text[], $5::text[], $6::int4[], $7::int8[], $8::int4[], $9::int8[], $10::int8[], $11::int4[], $12::int4[])
      AS t(id, key_id, key, priority, run_at, max_attempts, created_at, now, off, len)`;
  const insertCols = `(queue, id, payload, key_id, key, priority, run_at, state, attempts, max_attempts, created_at, updated_at)`;
  const enqueuePlain = (notify: boolean) => `WITH ins AS (
      INSERT INTO ${s}.items ${insertCols}
      SELECT $1, id, payload, key_id, key, priority, run_at, 'pending', 0, max_attempts, created_at, now FROM (${input}) i
      RETURNING id
    )${notify ? ', n AS MATERIALIZED (SELECT pg_notify($13, $1))' : ''}
    SELECT ins.id, NULL::text AS existing FROM ins${notify ? ' CROSS JOIN n' : ''}`;
  const enqueueKeyed = (notify: boolean) => `WITH input AS MATERIALIZED (${input}),
    k AS (
      INSERT INTO ${s}.keys (queue, key, item_id)
      SELECT $1, key, id FROM input WHERE key IS NOT NULL
      ON CONFLICT (queue, key) DO UPDATE SET item_id = ${s}.keys.item_id
      RETURNING key, item_id
    ), ins AS (
      INSERT INTO ${s}.items ${insertCols}
      SELECT $1, i.id, i.payload, i.key_id, i.key, i.priority, i.run_at, 'pending', 0, i.max_attempts, i.created_at, i.now
      FROM input i LEFT JOIN k ON k.key = i.key
      WHERE i.key IS NULL OR k.item_id = i.id
      RETURNING id
    )${notify ? ', n AS MATERIALIZED (SELECT pg_notify($13, $1))' : ''}
    SELECT i.id, k.item_id AS existing
    FROM input i LEFT JOIN k ON k.key = i.key${notify ? ' CROSS JOIN n' : ''}`;
  const failText = `UPDATE ${s}.items SET state = $5, run_at = COALESCE($6::bigint, run_at),
      last_error = $7, dead_reason = $8, lease_token = NULL, lease_until = NULL, updated_at = $4
    WHERE queue = $1 AND id = $2 AND lease_token = $3 AND state = 'active' AND lease_until > $4
    RETURNING id`;
  return {
    enqueue: named('enqueue', enqueuePlain(false)),
    enqueueNotify: named('enqueue_n', enqueuePlain(true)),
    enqueueKeys: named('enqueue_k', enqueueKeyed(false)),
    enqueueKeysNotify: named('enqueue_kn', enqueueKeyed(true)),
    claim: named(
      'claim',
      `WITH ${cfg}expired AS MATERIALIZED (
         SELECT id, priority, run_at FROM ${s}.items
         WHERE queue = $1 AND state = 'active' AND lease_until <= $2
         ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED
       ), ready AS MATERIALIZED (
         SELECT id, priority, run_at FROM ${s}.items
         WHERE queue = $1 AND state = 'pending' AND run_at <= $2
         ORDER BY priority DESC, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
       ), pick AS MATERIALIZED (
         SELECT id FROM (SELECT * FROM expired UNION ALL SELECT * FROM ready) c
         ORDER BY priority DESC, run_at, id LIMIT $3
       )
       UPDATE ${s}.items i SET state = 'active', attempts = i.attempts + 1,
         lease_token = gen_random_uuid()::text, lease_until = $4, updated_at = $2
       FROM pick${withCfg} WHERE i.queue = $1 AND i.id = pick.id
       RETURNING i.id, i.queue, i.payload, i.key_id, i.key, i.priority, i.run_at, i.state, i.attempts,
         i.max_attempts, i.created_at, i.updated_at, i.last_error, i.dead_reason, i.redrives,
         i.last_redrive_at, i.lease_token, i.lease_until`,
    ),
    complete: named(
      'complete',
      `WITH ${cfg}refs AS (SELECT * FROM unnest($2::text[], $3::text[], $4::int8[]) AS r(id, token, now)),
       done AS (
         UPDATE ${s}.items i SET state = 'completed', lease_token = NULL, lease_until = NULL, updated_at = refs.now
         FROM refs${withCfg} WHERE i.queue = $1 AND i.id = refs.id AND i.lease_token = refs.token AND i.state = 'active' AND i.lease_until > refs.now
         RETURNING i.id, i.key, refs.token, refs.now
       ), k AS (
         UPDATE ${s}.keys k SET released_at = done.now FROM done
         WHERE done.key IS NOT NULL AND k.queue = $1 AND k.key = done.key AND k.item_id = done.id
       )
       SELECT id, token FROM done`,
    ),
    fail: named('fail', failText),
    notify: named('notify', 'SELECT pg_notify($1, $2)'),
    extend: named(
      'extend',
      `${asyncAcks ? `WITH ${cfg.slice(0, -2)} ` : ''}UPDATE ${s}.items SET lease_until = $4${withCfg === '' ? '' : ' FROM cfg'}
       WHERE queue = $1 AND id = $2 AND lease_token = $3 AND state = 'active' AND lease_until > $5 RETURNING id`,
    ),
  };
}
