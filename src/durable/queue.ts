/**
 * The durable queue: `openQueue` over any `QueueStore`. It holds the logic every backend shares:
 * ids, payload codec and encryption, retries with the core backoffs, dead letters and redrive,
 * workers with fenced leases, heartbeats, graceful stop and retention.
 *
 * Delivery is at-least-once: a handler may run more than once for one item (a crash or a lost lease
 * after the work was done but before the ack committed), so handlers must be idempotent (use
 * `job.id` or `job.key` as the idempotency key downstream).
 * @module
 */

import { z } from 'zod';
import type { Backoff } from '../core/backoff.js';
import { backoff as backoffs, isBackoff } from '../core/backoff.js';
import { type Clock, type RandomSource, systemClock, systemRandom, type TimerHandle } from '../core/clock.js';
import { isNonRetryable } from '../core/errors.js';
import { type Disposer, type Listener, PolicyEmitter } from '../core/events.js';
import { TokenBucket } from '../limits/algorithms/token-bucket.js';
import { defaultCodec, type PayloadCodec } from './codec.js';
import { type Keyring, openPayload, rewrapPayload, sealPayload } from './encryption.js';
import { BulwarkDurableError } from './errors.js';
import type { DurableQueueEvent } from './events.js';
import { uuidv7 } from './ids.js';
import type {
  ClaimedItem,
  FailAction,
  ItemState,
  LeaseRef,
  NewItem,
  QueueStore,
  StoredItem,
  StoreStats,
} from './store.js';

const DAY = 24 * 3600 * 1000;

/** Retention of terminal items. Pending and active items never expire. */
export interface RetentionOptions {
  /** Keep completed items this long after completion, in ms. Default 1 day. */
  completedMs?: number;
  /** Keep dead items this long after they died, in ms. Default 30 days; must be >= `completedMs`. */
  deadMs?: number;
  /**
   * An idempotency key stays reserved this long after its item completed, in ms (`duplicate: true`
   * for a repeated key). Default: `completedMs`; cannot exceed it.
   */
  keyTtlMs?: number;
}

/** Options of `openQueue`. */
export interface QueueOptions<T = unknown> {
  /** The queue's name: 1-200 characters. Items of different queues never mix. */
  name: string;
  /** Where items are kept: `sqliteStore(...)` or `postgresStore(...)`. */
  store: QueueStore;
  /** Payload codec. Default: JSON, with `Uint8Array`/`Buffer` passed through as bytes. */
  codec?: PayloadCodec<T>;
  /** Encrypts payloads at rest with this keyring (opt-in). */
  keyring?: Keyring;
  /** Attempts per item before it is dead-lettered (per-item override at enqueue). Default 10. */
  maxAttempts?: number;
  /** Delay before each retry, by attempt. Default `backoff.exponential({ initialMs: 1_000, maxMs: 300_000, jitter: 'full' })`. */
  backoff?: Backoff;
  /** Retention of completed and dead items. */
  retention?: RetentionOptions;
  /** Clock (its `date()` is the time written to the store). Default the system clock. */
  clock?: Clock;
  /** Random source for backoff jitter. Default `Math.random`. */
  random?: RandomSource;
}

/** Options of one `enqueue`. */
export interface EnqueueOptions {
  /** Idempotency key: a second enqueue with the same key returns the first item's id with `duplicate: true`. */
  key?: string;
  /** Higher runs first. Default 0. */
  priority?: number;
  /** Do not run before this many ms from now. Default 0. */
  delayMs?: number;
  /** Attempts before dead-lettering. Default: the queue's `maxAttempts`. */
  maxAttempts?: number;
  /** A store transaction handle (a `pg` client inside BEGIN) to enqueue in your transaction (PostgreSQL only). */
  tx?: unknown;
}

/** The result of an enqueue. */
export interface EnqueueResult {
  /** The item's id (the existing item's, for a duplicate key). */
  readonly id: string;
  /** True when the key was already taken: nothing new was stored. */
  readonly duplicate: boolean;
}

/** The item a handler receives. */
export interface Job<T = unknown> {
  readonly id: string;
  readonly queue: string;
  readonly payload: T;
  readonly key: string | null;
  /** 1 on the first attempt (attempts interrupted by crashes count too). */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly priority: number;
  /** When the item was enqueued (ms epoch). */
  readonly createdAt: number;
  /** The error of the previous attempt, as recorded (JSON text), or null. */
  readonly lastError: string | null;
}

/** What a handler gets besides its job. */
export interface JobContext {
  /** Aborted when the lease is lost (`reason` is a `LEASE_LOST` error) or the worker stops past its grace. */
  readonly signal: AbortSignal;
  /** Extends the lease now (heartbeats do this automatically); rejects with `LEASE_LOST` if it was lost. */
  extendLease(): Promise<void>;
}

/** A job handler. Resolve to ack; throw to retry (or dead-letter: `nonRetryable(err)` or exhausted attempts). */
export type JobHandler<T> = (job: Job<T>, ctx: JobContext) => unknown;

/** Options of `queue.work`. */
export interface WorkOptions {
  /** Handlers running at once in this worker. Default 1. */
  concurrency?: number;
  /** Lease per claimed item, in ms: if the worker neither acks nor heartbeats within it, the item runs again. Default 30 000. */
  leaseMs?: number;
  /**
   * Heartbeat period (extends the lease), in ms: at most `leaseMs / 2`; 0 turns heartbeats off.
   * Default `leaseMs / 3`.
   */
  heartbeatMs?: number;
  /** How often to look for work when idle (other processes' enqueues are not notified on SQLite), in ms. Default 1 000. */
  pollMs?: number;
  /** Start at most `perSec` items per second (token bucket with `burst`, default `perSec`), in this worker. */
  rateLimit?: { perSec: number; burst?: number };
  /** How often this worker applies retention, in ms; 0 turns it off. Default 60 000. */
  sweepIntervalMs?: number;
  /**
   * Items claimed ahead of free handler slots and kept in a local buffer (their leases are kept
   * alive by the heartbeats), so that claims and acks go to the store in bigger batches. Higher
   * throughput for short handlers; but buffered items wait for this worker even when another one is
   * idle, and a crash costs each buffered item an attempt (`stop()` returns them uncounted).
   * Default 0.
   */
  prefetch?: number;
}

/** Counters of a worker since it started. */
export interface WorkerStats {
  running: number;
  claimed: number;
  completed: number;
  retried: number;
  dead: number;
  /** Acks, fails or heartbeats refused because the lease was no longer this worker's (`LEASE_LOST`). */
  leaseLost: number;
  /** Items returned to pending by `stop()` at its grace deadline. */
  released: number;
  /** Store operations that failed (the worker retries later). */
  errors: number;
}

/** A stored item as the queue shows it: the decoded payload (undefined when it cannot be decoded). */
export interface ItemView<T = unknown> extends Omit<StoredItem, 'payload'> {
  readonly payload: T | undefined;
  /** Why the payload could not be decoded, when it could not. */
  readonly payloadError?: string;
}

/** Options of `deadLetters.redrive`. */
export interface RedriveOptions {
  /** Only these ids (those still dead). */
  ids?: readonly string[];
  /** At most this many. Default 100. */
  limit?: number;
  /** Pace: at most this many per second. Default: as fast as the store goes. */
  ratePerSec?: number;
  /** Stops the redrive between batches. */
  signal?: AbortSignal;
}

/** Progress of `queue.rewrap`. */
export interface RewrapProgress {
  /** Items re-wrapped by this call. */
  readonly rewrapped: number;
  /**
   * Items of this call whose data key could not be re-wrapped (unknown key, tampered): they keep
   * their old key (and dead-letter as DECRYPT_FAILED when claimed without it). Store errors are
   * not counted here: they reject the call without moving the cursor.
   */
  readonly failed: number;
  /**
   * Items that changed between listing and re-wrapping (re-wrapped by another process, or deleted):
   * left as they are.
   */
  readonly conflicts: number;
  /** Pass back as `cursor` to resume. */
  readonly cursor: string | null;
  /**
   * True when no item of an older key is left after the cursor and this call had no `failed` item.
   * Retire an old key only after a pass from `cursor: null` whose calls all had `failed === 0` and
   * whose last call says `done`.
   */
  readonly done: boolean;
}

/** Queue-level stats: the store's counts plus the queue name. */
export interface QueueStats extends StoreStats {
  readonly queue: string;
}

const positiveInt = (field: string) =>
  z
    .number({ error: `${field} must be a number` })
    .int(`${field} must be an integer`)
    .positive(`${field} must be > 0`);

const queueSchema = z
  .object({
    name: z
      .string()
      .min(1, 'openQueue.name must not be empty')
      .max(200, 'openQueue.name must be at most 200 characters'),
    store: z.custom<QueueStore>(
      (v) => typeof v === 'object' && v !== null && typeof (v as QueueStore).claim === 'function',
      'openQueue.store must be a QueueStore (sqliteStore(...) or postgresStore(...))',
    ),
    codec: z
      .custom<PayloadCodec<unknown>>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as PayloadCodec<unknown>).encode === 'function' &&
          typeof (v as PayloadCodec<unknown>).decode === 'function',
        'openQueue.codec must have encode and decode functions',
      )
      .optional(),
    keyring: z
      .custom<Keyring>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Keyring)._wrap === 'function',
        'openQueue.keyring must be a Keyring (keyring(...) or keyringFromEnv(...))',
      )
      .optional(),
    maxAttempts: positiveInt('openQueue.maxAttempts').optional(),
    backoff: z
      .custom<Backoff>(isBackoff, 'openQueue.backoff must be a backoff, e.g. backoff.exponential()')
      .optional(),
    retention: z
      .object({
        completedMs: positiveInt('openQueue.retention.completedMs').optional(),
        deadMs: positiveInt('openQueue.retention.deadMs').optional(),
        keyTtlMs: z.number().int().min(0, 'openQueue.retention.keyTtlMs must be >= 0').optional(),
      })
      .strict()
      .optional(),
    clock: z
      .custom<Clock>((v) => typeof v === 'object' && v !== null, 'openQueue.clock must be a Clock')
      .optional(),
    random: z
      .custom<RandomSource>((v) => typeof v === 'function', 'openQueue.random must be a function')
      .optional(),
  })
  .strict();

const workSchema = z
  .object({
    concurrency: positiveInt('work.concurrency').optional(),
    leaseMs: positiveInt('work.leaseMs').optional(),
    heartbeatMs: z.number().int().min(0, 'work.heartbeatMs must be >= 0').optional(),
    pollMs: positiveInt('work.pollMs').optional(),
    rateLimit: z
      .object({
        perSec: z.number().positive('work.rateLimit.perSec must be > 0'),
        burst: z.number().positive('work.rateLimit.burst must be > 0').optional(),
      })
      .strict()
      .optional(),
    sweepIntervalMs: z.number().int().min(0, 'work.sweepIntervalMs must be >= 0').optional(),
    prefetch: z
      .number()
      .int('work.prefetch must be an integer')
      .min(0, 'work.prefetch must be >= 0')
      .optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    // A heartbeat must fire (the ticker runs at half its period) well before the lease runs out.
    const leaseMs = o.leaseMs ?? 30_000;
    if (o.heartbeatMs !== undefined && o.heartbeatMs > 0 && o.heartbeatMs > leaseMs / 2) {
      ctx.addIssue({
        code: 'custom',
        path: ['heartbeatMs'],
        message: `work.heartbeatMs (${o.heartbeatMs}) must be at most half of work.leaseMs (${leaseMs}) so the lease is extended before it expires, or 0 to turn heartbeats off`,
      });
    }
  });

function parseOptions<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.length > 0 ? `${what}.${issue.path.join('.')}` : what;
  const message = issue.message.startsWith(what) ? issue.message : `${path}: ${issue.message}`;
  throw new BulwarkDurableError('INVALID_STATE', message);
}

/** Turns an error into the JSON text stored as `lastError`: name, message, code, stack and cause chain. */
export function serializeError(error: unknown, depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) {
    return { message: typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error)) };
  }
  const out: Record<string, unknown> = { name: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) out.code = String(code);
  if (error.stack !== undefined) out.stack = error.stack.slice(0, 2000);
  if (error.cause !== undefined && depth < 5) out.cause = serializeError(error.cause, depth + 1);
  return out;
}

const storeRefs = new WeakMap<QueueStore, number>();

/**
 * Opens a durable queue on a store (creating the store's schema if needed).
 *
 * @example
 * ```ts
 * import { openQueue, sqliteStore } from 'bulwark/durable';
 * const q = await openQueue({ name: 'payments', store: sqliteStore({ path: ':memory:' }) });
 * const { id, duplicate } = await q.enqueue({ amount: 42 }, { key: 'order-42', priority: 5 });
 * const worker = q.work(async (job) => console.log('deliver', job.payload), { concurrency: 8 });
 * await worker.stop({ graceMs: 1_000 });
 * await q.close();
 * console.log(id.length, duplicate); // 36 false
 * ```
 */
export async function openQueue<T = unknown>(options: QueueOptions<T>): Promise<Queue<T>> {
  parseOptions(queueSchema, options, 'openQueue');
  await options.store.init();
  storeRefs.set(options.store, (storeRefs.get(options.store) ?? 0) + 1);
  return new Queue<T>(options);
}

/** A durable queue. Made by `openQueue`. */
export class Queue<T = unknown> {
  readonly name: string;
  readonly store: QueueStore;
  /** Dead letters: list, redrive, purge. */
  readonly deadLetters: DeadLetters<T>;
  /** @internal */ readonly _codec: PayloadCodec<T>;
  /** @internal */ readonly _keyring: Keyring | undefined;
  /** @internal */ readonly _clock: Clock;
  /** @internal */ readonly _random: RandomSource;
  /** @internal */ readonly _backoff: Backoff;
  /** @internal */ readonly _maxAttempts: number;
  /** @internal */ readonly _retention: Required<RetentionOptions>;
  /** @internal */ readonly _events = new PolicyEmitter<DurableQueueEvent>();
  private readonly workers = new Set<Worker<T>>();
  /** Set when `close()` starts: no new workers or enqueues from then on. */
  private closing: Promise<void> | null = null;
  /** Set when `close()` has stopped the workers: every other call is refused from then on. */
  private closed = false;

  constructor(options: QueueOptions<T>) {
    this.name = options.name;
    this.store = options.store;
    this._codec = options.codec ?? (defaultCodec as PayloadCodec<T>);
    this._keyring = options.keyring;
    this._clock = options.clock ?? systemClock;
    this._random = options.random ?? systemRandom;
    this._backoff =
      options.backoff ?? backoffs.exponential({ initialMs: 1_000, maxMs: 300_000, jitter: 'full' });
    this._maxAttempts = options.maxAttempts ?? 10;
    const completedMs = options.retention?.completedMs ?? DAY;
    const deadMs = options.retention?.deadMs ?? Math.max(30 * DAY, completedMs);
    const keyTtlMs = options.retention?.keyTtlMs ?? completedMs;
    if (deadMs < completedMs) {
      throw new BulwarkDurableError(
        'INVALID_STATE',
        `openQueue.retention.deadMs (${deadMs}) must be >= completedMs (${completedMs}): dead letters must outlive completed items`,
      );
    }
    if (keyTtlMs > completedMs) {
      throw new BulwarkDurableError(
        'INVALID_STATE',
        `openQueue.retention.keyTtlMs (${keyTtlMs}) cannot exceed completedMs (${completedMs}): the key lives on the completed item`,
      );
    }
    this._retention = { completedMs, deadMs, keyTtlMs };
    this.deadLetters = new DeadLetters(this);
  }

  /** @internal */
  _emit(event: DurableQueueEvent): void {
    this._events.emit(event);
  }

  /** @internal */
  _wants(event: DurableQueueEvent['event']): boolean {
    return this._events.wants(event);
  }

  /** @internal Base fields of an event. */
  _base(attempt: number): {
    kind: 'durableQueue';
    name: string;
    queue: string;
    priority: string;
    operation: undefined;
    attempt: number;
  } {
    return {
      kind: 'durableQueue',
      name: this.name,
      queue: this.name,
      priority: 'normal',
      operation: undefined,
      attempt,
    };
  }

  /** @internal Throws `CLOSED` once the queue is closed. */
  _checkOpen(): void {
    if (this.closed) {
      throw new BulwarkDurableError('CLOSED', `Queue "${this.name}" is closed; open it again with openQueue`);
    }
  }

  /** Throws `CLOSED` as soon as `close()` has started (no new work while workers are stopping). */
  private checkAccepting(): void {
    this._checkOpen();
    if (this.closing !== null) {
      throw new BulwarkDurableError(
        'CLOSED',
        `Queue "${this.name}" is closing: it accepts no new items or workers; open it again with openQueue`,
      );
    }
  }

  /** @internal Encodes (and encrypts) a payload for item `id`. */
  _seal(id: string, payload: T): { bytes: Uint8Array; keyId: string | null } {
    const plain = this._codec.encode(payload);
    if (this._keyring === undefined) return { bytes: plain, keyId: null };
    return sealPayload(this._keyring, this.name, id, plain);
  }

  /** @internal Decrypts and decodes an item's payload; throws DECRYPT_FAILED or the codec's error. */
  _open(item: StoredItem): T {
    let bytes = item.payload;
    if (item.keyId !== null) {
      if (this._keyring === undefined) {
        throw new BulwarkDurableError(
          'DECRYPT_FAILED',
          `Item ${item.id} of queue "${this.name}" is encrypted with key "${item.keyId}" but the queue has no keyring`,
        );
      }
      bytes = openPayload(this._keyring, this.name, item.id, item.keyId, bytes);
    }
    return this._codec.decode(bytes);
  }

  private makeItem(payload: T, options: EnqueueOptions | undefined, now: number): NewItem {
    const id = uuidv7(now);
    const { bytes, keyId } = this._seal(id, payload);
    const priority = options?.priority ?? 0;
    const delayMs = options?.delayMs ?? 0;
    const maxAttempts = options?.maxAttempts ?? this._maxAttempts;
    const key = options?.key ?? null;
    if (!Number.isInteger(priority)) throw invalid('enqueue.priority', 'an integer', priority);
    if (!(delayMs >= 0) || !Number.isFinite(delayMs))
      throw invalid('enqueue.delayMs', 'a finite number >= 0', delayMs);
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
      throw invalid('enqueue.maxAttempts', 'an integer >= 1', maxAttempts);
    if (key !== null && (typeof key !== 'string' || key.length === 0 || key.length > 500)) {
      throw invalid('enqueue.key', 'a string of 1-500 characters', key);
    }
    return {
      id,
      payload: bytes,
      keyId,
      key,
      priority,
      runAt: now + Math.ceil(delayMs),
      maxAttempts,
      createdAt: now,
    };
  }

  /**
   * Stores a payload durably: when the promise resolves, the item is committed (and synced).
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'mail', store: sqliteStore({ path: ':memory:' }) });
   * const first = await q.enqueue({ to: 'a@example.com' }, { key: 'welcome-a' });
   * const again = await q.enqueue({ to: 'a@example.com' }, { key: 'welcome-a' });
   * console.log(again.id === first.id, again.duplicate); // true true
   * await q.close();
   * ```
   */
  async enqueue(payload: T, options?: EnqueueOptions): Promise<EnqueueResult> {
    this.checkAccepting();
    const now = this._clock.date();
    const item = this.makeItem(payload, options, now);
    const [out] = await this.store.enqueue(this.name, [item], now, options?.tx);
    if (this._events.wants('enqueued')) {
      this._emit({ ...this._base(0), event: 'enqueued', id: out!.id, duplicate: out!.duplicate });
    }
    return out!;
  }

  /**
   * Stores several payloads in one transaction (all or none).
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'bulk', store: sqliteStore({ path: ':memory:' }) });
   * const out = await q.enqueueMany([{ payload: 1 }, { payload: 2, options: { priority: 9 } }]);
   * console.log(out.length); // 2
   * await q.close();
   * ```
   */
  async enqueueMany(
    entries: readonly { payload: T; options?: Omit<EnqueueOptions, 'tx'> }[],
    tx?: unknown,
  ): Promise<EnqueueResult[]> {
    this.checkAccepting();
    const now = this._clock.date();
    const items = entries.map((e) => this.makeItem(e.payload, e.options, now));
    const out = await this.store.enqueue(this.name, items, now, tx);
    if (this._events.wants('enqueued')) {
      for (const o of out)
        this._emit({ ...this._base(0), event: 'enqueued', id: o.id, duplicate: o.duplicate });
    }
    return out;
  }

  /**
   * Starts a worker that runs `handler` for each item: resolve to ack, throw to retry.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue<{ n: number }>({ name: 'jobs', store: sqliteStore({ path: ':memory:' }) });
   * await q.enqueue({ n: 1 });
   * const worker = q.work(async (job, { signal }) => { if (!signal.aborted) console.log(job.payload.n); });
   * await new Promise((r) => setTimeout(r, 50));
   * await worker.stop();
   * await q.close();
   * ```
   */
  work(handler: JobHandler<T>, options: WorkOptions = {}): Worker<T> {
    this.checkAccepting();
    if (typeof handler !== 'function') throw invalid('work(handler)', 'a function (job, ctx) => …', handler);
    parseOptions(workSchema, options, 'work');
    const w = new Worker<T>(this, handler, options, () => this.workers.delete(w));
    this.workers.add(w);
    return w;
  }

  /**
   * Counts by state and the age of the oldest due pending item.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 's', store: sqliteStore({ path: ':memory:' }) });
   * await q.enqueue('x');
   * console.log((await q.stats()).pending); // 1
   * await q.close();
   * ```
   */
  async stats(): Promise<QueueStats> {
    this._checkOpen();
    return { queue: this.name, ...(await this.store.stats(this.name, this._clock.date())) };
  }

  /** @internal */
  _view(item: StoredItem): ItemView<T> {
    const { payload: _raw, ...rest } = item;
    try {
      return { ...rest, payload: this._open(item) };
    } catch (error) {
      return {
        ...rest,
        payload: undefined,
        payloadError: error instanceof Error ? error.message : String(error),
      };
    }
  }

  /**
   * One item by id, with its payload decoded.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'g', store: sqliteStore({ path: ':memory:' }) });
   * const { id } = await q.enqueue({ a: 1 });
   * console.log((await q.get(id))?.payload); // { a: 1 }
   * await q.close();
   * ```
   */
  async get(id: string): Promise<ItemView<T> | undefined> {
    this._checkOpen();
    const item = await this.store.get(this.name, id);
    return item === undefined ? undefined : this._view(item);
  }

  /**
   * Items in id (creation) order, optionally of one state, with keyset pagination (`after`).
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'l', store: sqliteStore({ path: ':memory:' }) });
   * await q.enqueue(1);
   * console.log((await q.list({ state: 'pending', limit: 10 })).length); // 1
   * await q.close();
   * ```
   */
  async list(options: { state?: ItemState; limit?: number; after?: string } = {}): Promise<ItemView<T>[]> {
    this._checkOpen();
    const items = await this.store.list(this.name, options);
    return items.map((i) => this._view(i));
  }

  /**
   * Deletes items in a state: `completed` or `dead`, or pending/active with `force` (destroys work).
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'p', store: sqliteStore({ path: ':memory:' }) });
   * console.log(await q.purge('completed')); // 0
   * await q.close();
   * ```
   */
  async purge(state: ItemState, options: { force?: boolean; olderThanMs?: number } = {}): Promise<number> {
    this._checkOpen();
    const olderThan =
      options.olderThanMs === undefined ? undefined : this._clock.date() - options.olderThanMs;
    return this.store.purge(this.name, state, {
      ...(options.force === undefined ? {} : { force: options.force }),
      ...(olderThan === undefined ? {} : { olderThan }),
    });
  }

  /**
   * Applies retention now (workers also do it every `sweepIntervalMs`); returns rows changed.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'r', store: sqliteStore({ path: ':memory:' }) });
   * console.log(await q.sweep()); // 0
   * await q.close();
   * ```
   */
  async sweep(): Promise<number> {
    this._checkOpen();
    const limit = 1000;
    let total = 0;
    for (let i = 0; i < 1000; i++) {
      const n = await this.store.sweep(this.name, { ...this._retention, limit }, this._clock.date());
      total += n;
      if (n < limit) break;
    }
    return total;
  }

  /**
   * Re-wraps the data keys of items encrypted with older keys using the keyring's current key, in
   * batches; resumable with the returned cursor. Payloads are not re-encrypted (after a key
   * compromise, re-enqueue the payloads instead).
   *
   * @example
   * ```ts
   * import { randomBytes } from 'node:crypto';
   * import { keyring, openQueue, sqliteStore } from 'bulwark/durable';
   * const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
   * const q = await openQueue({ name: 'enc', store: sqliteStore({ path: ':memory:' }), keyring: ring });
   * await q.enqueue({ secret: 1 });
   * ring.add('k2', randomBytes(32), { current: true });
   * let p = await q.rewrap({ batchSize: 100, maxBatches: 10 });
   * let failed = p.failed;
   * while (!p.done && p.failed === 0) {
   *   p = await q.rewrap({ cursor: p.cursor, maxBatches: 10 });
   *   failed += p.failed;
   * }
   * if (p.done && failed === 0) ring.remove('k1'); // only after a full pass without failures
   * console.log((await q.list())[0]?.payload); // { secret: 1 }
   * await q.close();
   * ```
   */
  async rewrap(
    options: { batchSize?: number; cursor?: string | null; maxBatches?: number } = {},
  ): Promise<RewrapProgress> {
    this._checkOpen();
    const ring = this._keyring;
    if (ring === undefined) {
      throw new BulwarkDurableError('KEY_MISSING', `Queue "${this.name}" has no keyring: nothing to re-wrap`);
    }
    const batchSize = options.batchSize ?? 100;
    const maxBatches = options.maxBatches ?? Number.POSITIVE_INFINITY;
    let cursor = options.cursor ?? null;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw invalid('rewrap.batchSize', 'an integer >= 1', batchSize);
    let rewrapped = 0;
    let failed = 0;
    let conflicts = 0;
    for (let b = 0; b < maxBatches; b++) {
      const items = await this.store.listForRewrap(this.name, ring.currentKeyId, cursor, batchSize);
      for (const item of items) {
        let next: { bytes: Uint8Array; keyId: string };
        try {
          next = rewrapPayload(ring, this.name, item.id, item.keyId, item.payload);
        } catch {
          // Only a crypto failure (unknown key, tampered envelope) counts as failed.
          failed++;
          cursor = item.id;
          continue;
        }
        // A store error (busy, unavailable) propagates: the cursor stays before this item, and a
        // new pass lists it again (re-wrapped items are no longer listed).
        if (await this.store.replacePayload(this.name, item.id, item.keyId, next.bytes, next.keyId))
          rewrapped++;
        else conflicts++;
        cursor = item.id;
      }
      if (items.length < batchSize) return { rewrapped, failed, conflicts, cursor, done: failed === 0 };
    }
    return { rewrapped, failed, conflicts, cursor, done: false };
  }

  /**
   * Subscribes to this queue's events (enqueued, claimed, completed, retried, dead, leaseLost,
   * released, redriven, error). They also reach `telemetry.onEvent` as kind `durableQueue`.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'ev', store: sqliteStore({ path: ':memory:' }) });
   * using _sub = q.onEvent((e) => console.log(e.event), ['enqueued']);
   * await q.enqueue(1); // enqueued
   * await q.close();
   * ```
   */
  onEvent(listener: Listener<DurableQueueEvent>, only?: readonly DurableQueueEvent['event'][]): Disposer {
    return this._events.on(listener, only);
  }

  /**
   * Stops this queue's workers (waiting up to `graceMs` for running handlers, default 10 000) and
   * closes the store when no other open queue uses it. From the moment it is called, `enqueue` and
   * `work` are refused (`CLOSED`); calling it again returns the same promise.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.closing ??= this.doClose(options);
    return this.closing;
  }

  private async doClose(options: { graceMs?: number }): Promise<void> {
    try {
      await Promise.all([...this.workers].map((w) => w.stop(options)));
    } finally {
      this.closed = true;
      // Counted once per queue, however many times close() is called.
      const refs = (storeRefs.get(this.store) ?? 1) - 1;
      if (refs <= 0) {
        storeRefs.delete(this.store);
        await this.store.close();
      } else {
        storeRefs.set(this.store, refs);
      }
    }
  }
}

function invalid(field: string, expectation: string, got: unknown): BulwarkDurableError {
  let shown: string;
  try {
    shown = JSON.stringify(got) ?? String(got);
  } catch {
    shown = String(got);
  }
  return new BulwarkDurableError(
    'INVALID_STATE',
    `${field} must be ${expectation} (got ${shown.slice(0, 60)})`,
  );
}

/** A dead letter as listed: why it died and its last error (parsed). */
export interface DeadLetter<T = unknown> extends ItemView<T> {
  /** `lastError` parsed from JSON (message, code, cause chain), or null. */
  readonly error: Record<string, unknown> | null;
}

/** The dead letters of a queue. */
export class DeadLetters<T> {
  constructor(private readonly q: Queue<T>) {}

  /**
   * Dead items, oldest id first, with their reason and last error.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'dl', store: sqliteStore({ path: ':memory:' }) });
   * console.log((await q.deadLetters.list({ limit: 50 })).length); // 0
   * await q.close();
   * ```
   */
  async list(options: { limit?: number; after?: string } = {}): Promise<DeadLetter<T>[]> {
    this.q._checkOpen();
    const items = await this.q.store.list(this.q.name, {
      state: 'dead',
      limit: options.limit ?? 50,
      ...(options.after === undefined ? {} : { after: options.after }),
    });
    return items.map((i) => {
      let error: Record<string, unknown> | null = null;
      try {
        error = i.lastError === null ? null : (JSON.parse(i.lastError) as Record<string, unknown>);
      } catch {
        error = { message: i.lastError };
      }
      return { ...this.q._view(i), error };
    });
  }

  /**
   * Sends dead items back to pending with attempts reset (the redrive is recorded on each item),
   * oldest first or by ids, at most `limit`, paced at `ratePerSec`.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'rd', store: sqliteStore({ path: ':memory:' }) });
   * const { redriven } = await q.deadLetters.redrive({ limit: 100, ratePerSec: 50 });
   * console.log(redriven.length); // 0
   * await q.close();
   * ```
   */
  async redrive(options: RedriveOptions = {}): Promise<{ redriven: string[] }> {
    this.q._checkOpen();
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1) throw invalid('redrive.limit', 'an integer >= 1', limit);
    const rate = options.ratePerSec;
    if (rate !== undefined && !(rate > 0 && Number.isFinite(rate)))
      throw invalid('redrive.ratePerSec', 'a finite number > 0', rate);
    const clock = this.q._clock;
    // Batches of about 1/10 s of the rate, waiting between them so the average stays at the rate.
    const batch = rate === undefined ? limit : Math.max(1, Math.min(limit, Math.floor(rate / 10)));
    const redriven: string[] = [];
    const ids = options.ids;
    let offset = 0;
    while (redriven.length < limit && options.signal?.aborted !== true) {
      const n = Math.min(batch, limit - redriven.length);
      const started = clock.now();
      let got: string[];
      if (ids !== undefined) {
        if (offset >= ids.length) break;
        const slice = ids.slice(offset, offset + n);
        offset += slice.length;
        got = await this.q.store.redrive(this.q.name, { ids: slice, limit: n }, clock.date());
      } else {
        got = await this.q.store.redrive(this.q.name, { limit: n }, clock.date());
        if (got.length === 0) break;
      }
      redriven.push(...got);
      if (got.length > 0 && this.q._wants('redriven'))
        this.q._emit({ ...this.q._base(0), event: 'redriven', ids: got });
      if (ids === undefined && got.length < n) break;
      if (rate !== undefined && redriven.length < limit) {
        const wait = (Math.max(got.length, 1) / rate) * 1000 - (clock.now() - started);
        if (wait > 0) await pause(clock, wait, options.signal);
      }
    }
    return { redriven };
  }

  /**
   * Deletes dead items (older than `olderThanMs` when given).
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'pd', store: sqliteStore({ path: ':memory:' }) });
   * console.log(await q.deadLetters.purge()); // 0
   * await q.close();
   * ```
   */
  purge(options: { olderThanMs?: number } = {}): Promise<number> {
    return this.q.purge('dead', options);
  }
}

/** Waits `ms` on the clock, or less when `signal` aborts. */
function pause(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

interface Running {
  readonly item: ClaimedItem;
  readonly ref: LeaseRef;
  /** Made when the handler first reads `ctx.signal` (most handlers that never read it cost none). */
  controller: AbortController | null;
  /** Set when the signal must abort (lease lost, stop); applied when the controller is made. */
  abortReason: unknown;
  leaseUntil: number;
  /** A heartbeat of this entry is in flight. */
  extending: boolean;
  released: boolean;
  lostCounted: boolean;
  startedAt: number;
}

/** True when an item's last recorded error is the release of `worker.stop()` past its grace period. */
function wasReleasedByStop(lastError: string | null): boolean {
  if (lastError === null || !lastError.includes('RELEASED')) return false;
  try {
    return (JSON.parse(lastError) as { code?: unknown }).code === 'RELEASED';
  } catch {
    return false;
  }
}

function abortEntry(entry: Running, reason: unknown): void {
  if (entry.abortReason !== undefined) return;
  entry.abortReason = reason;
  entry.controller?.abort(reason);
}

/** A running worker of a queue. Made by `queue.work`. */
export class Worker<T> {
  /** Counters since the worker started. */
  readonly stats: WorkerStats = {
    running: 0,
    claimed: 0,
    completed: 0,
    retried: 0,
    dead: 0,
    leaseLost: 0,
    released: 0,
    errors: 0,
  };
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  /** Period of the lease ticker: heartbeats, or (heartbeats off) local expiry checks. */
  private readonly tickMs: number;
  private readonly pollMs: number;
  private readonly sweepIntervalMs: number;
  private readonly bucket: TokenBucket | null;
  private readonly bucketState: Float64Array | null;
  private readonly running = new Map<string, Running>();
  /** Prefetched items waiting for a handler slot (claimed, lease kept alive, not started). */
  private waiting: Running[] = [];
  private readonly prefetch: number;
  private readonly inflight = new Set<Promise<unknown>>();
  private acks: Running[] = [];
  private settleScheduled = false;
  private stopping = false;
  private claiming = false;
  private pumpScheduled = false;
  private claimDone: Promise<void> | null = null;
  private dirty = false;
  private pollTimer: TimerHandle | null = null;
  private sweepTimer: TimerHandle | null = null;
  private leaseTimer: TimerHandle | null = null;
  private unsubscribe: (() => Promise<void>) | null = null;
  private drained: (() => void) | null = null;
  private stopPromise: Promise<void> | null = null;
  private readonly clock: Clock;

  constructor(
    private readonly q: Queue<T>,
    private readonly handler: JobHandler<T>,
    options: WorkOptions,
    private readonly onStopped: () => void,
  ) {
    this.clock = q._clock;
    this.concurrency = options.concurrency ?? 1;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.heartbeatMs = options.heartbeatMs ?? Math.max(1, Math.floor(this.leaseMs / 3));
    // Ticks at half the heartbeat period, so each lease is extended between 1 and 1.5 periods after
    // its last extension (with heartbeats off, expiry is checked every tenth of the lease).
    this.tickMs = Math.max(1, Math.floor(this.heartbeatMs > 0 ? this.heartbeatMs / 2 : this.leaseMs / 10));
    this.pollMs = options.pollMs ?? 1_000;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    this.prefetch = options.prefetch ?? 0;
    if (options.rateLimit !== undefined) {
      const burst = options.rateLimit.burst ?? options.rateLimit.perSec;
      this.bucket = new TokenBucket(burst, options.rateLimit.perSec);
      this.bucketState = this.bucket.create(this.clock.now());
    } else {
      this.bucket = null;
      this.bucketState = null;
    }
    void q.store
      .subscribe(q.name, () => this.wake())
      .then(
        (off) => {
          if (this.stopping) void off();
          else this.unsubscribe = off;
        },
        (error) => this.reportError('subscribe', error),
      );
    if (this.sweepIntervalMs > 0) this.scheduleSweep();
    this.pump();
  }

  private reportError(operation: string, error: unknown): void {
    this.stats.errors++;
    if (this.q._wants('error')) this.q._emit({ ...this.q._base(0), event: 'error', operation, error });
  }

  private track<P>(p: Promise<P>): Promise<P> {
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  private scheduleSweep(): void {
    const t = this.clock.setTimeout(() => {
      if (this.stopping) return;
      this.track(this.q.sweep()).then(
        () => this.scheduleSweep(),
        (error) => {
          this.reportError('sweep', error);
          this.scheduleSweep();
        },
      );
    }, this.sweepIntervalMs);
    t.unref();
    this.sweepTimer = t;
  }

  private wake(): void {
    if (this.stopping) return;
    if (this.claiming) {
      this.dirty = true;
      return;
    }
    this.pump();
  }

  private schedulePoll(ms: number): void {
    if (this.pollTimer !== null || this.stopping) return;
    this.pollTimer = this.clock.setTimeout(() => {
      this.pollTimer = null;
      this.pump();
    }, ms);
  }

  /** Schedules a claim for the next turn of the event loop (wake-ups, polls). */
  private pump(): void {
    if (this.pumpScheduled || this.stopping) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.claimNow();
    });
  }

  private claimNow(): void {
    if (this.stopping || this.claiming) return;
    let n = this.concurrency + this.prefetch - this.running.size - this.waiting.length;
    if (n <= 0) return;
    if (this.bucket !== null) {
      const now = this.clock.now();
      this.bucket.check(this.bucketState!, now, 1);
      const tokens = Math.floor(this.bucketState![0]!);
      if (tokens < 1) {
        this.schedulePoll(Math.max(1, Math.ceil(this.bucket.retryAfter(this.bucketState!, now, 1))));
        return;
      }
      n = Math.min(n, tokens);
    }
    this.claiming = true;
    this.dirty = false;
    this.claimDone = this.track(this.q.store.claim(this.q.name, n, this.leaseMs, this.clock.date())).then(
      (items) => {
        this.claiming = false;
        if (this.bucket !== null && items.length > 0) {
          this.bucket.commit(this.bucketState!, this.clock.now(), items.length);
        }
        for (const item of items) this.waiting.push(this.entryOf(item));
        this.drain();
        if (this.stopping) return;
        if (items.length === n || this.dirty) this.claimNow();
        else this.schedulePoll(this.pollMs);
      },
      (error) => {
        this.claiming = false;
        this.reportError('claim', error);
        this.schedulePoll(this.pollMs);
      },
    );
  }

  private entryOf(item: ClaimedItem): Running {
    return {
      item,
      ref: { id: item.id, leaseToken: item.leaseToken },
      controller: null,
      abortReason: undefined,
      leaseUntil: item.leaseUntil,
      extending: false,
      released: false,
      lostCounted: false,
      startedAt: 0,
    };
  }

  /** Starts waiting items while handler slots are free. */
  private drain(): void {
    while (this.running.size < this.concurrency && this.waiting.length > 0) {
      const entry = this.waiting.shift()!;
      if (entry.lostCounted) continue; // its lease was lost while it waited: it runs elsewhere
      if (this.clock.date() >= entry.leaseUntil) {
        this.lost(entry, 'expired');
        continue;
      }
      this.start(entry);
    }
    if (this.waiting.length > 0 && this.leaseTimer === null) this.armLeaseTimer();
  }

  private start(entry: Running): void {
    const item = entry.item;
    const ref = entry.ref;
    this.stats.claimed++;
    const q = this.q;
    if (q._wants('claimed')) q._emit({ ...q._base(item.attempts), event: 'claimed', id: item.id });
    if (item.attempts > item.maxAttempts) {
      // No attempt left: the last one was interrupted by a stop past its grace period, or ended
      // with an expired lease (a crashed or stalled worker).
      const stopped = wasReleasedByStop(item.lastError);
      const error = stopped
        ? new BulwarkDurableError(
            'CLOSED',
            `Item ${item.id} used its ${item.maxAttempts} attempts; the last was interrupted by worker.stop() after its grace period`,
          )
        : new BulwarkDurableError(
            'LEASE_LOST',
            `Item ${item.id} used its ${item.maxAttempts} attempts without an ack (its leases expired: workers crashed or stalled)`,
          );
      this.settleDead(item, ref, stopped ? 'stopped' : 'lease-expired', error);
      return;
    }
    let payload: T;
    try {
      payload = q._open(item);
    } catch (error) {
      const reason =
        error instanceof BulwarkDurableError && error.code === 'DECRYPT_FAILED'
          ? 'DECRYPT_FAILED'
          : 'DECODE_FAILED';
      this.settleDead(item, ref, reason, error);
      return;
    }
    entry.startedAt = this.clock.now();
    this.running.set(item.id, entry);
    this.stats.running = this.running.size;
    if (this.leaseTimer === null) this.armLeaseTimer();
    const job: Job<T> = {
      id: item.id,
      queue: q.name,
      payload,
      key: item.key,
      attempt: item.attempts,
      maxAttempts: item.maxAttempts,
      priority: item.priority,
      createdAt: item.createdAt,
      lastError: item.lastError,
    };
    const ctx: JobContext = {
      get signal(): AbortSignal {
        if (entry.controller === null) {
          entry.controller = new AbortController();
          if (entry.abortReason !== undefined) entry.controller.abort(entry.abortReason);
        }
        return entry.controller.signal;
      },
      extendLease: () => this.extend(entry, 'manual'),
    };
    let result: unknown;
    try {
      result = this.handler(job, ctx);
    } catch (error) {
      this.onFailure(entry, error);
      return;
    }
    Promise.resolve(result).then(
      () => this.onSuccess(entry),
      (error: unknown) => this.onFailure(entry, error),
    );
  }

  /**
   * One timer per worker (not per item): every `heartbeatMs` it extends the leases of running items
   * that were not extended in the last period; with heartbeats off it checks for local expiry.
   */
  private armLeaseTimer(): void {
    this.leaseTimer = this.clock.setTimeout(() => {
      this.leaseTimer = null;
      if (this.running.size === 0 && this.waiting.length === 0) return;
      const now = this.clock.date();
      for (const entry of this.running.values()) this.tickEntry(entry, now);
      for (const entry of this.waiting) this.tickEntry(entry, now);
      this.armLeaseTimer();
    }, this.tickMs);
  }

  private tickEntry(entry: Running, now: number): void {
    if (entry.released || entry.lostCounted) return;
    if (now >= entry.leaseUntil) {
      if (!entry.extending) this.lost(entry, 'expired');
    } else if (
      this.heartbeatMs > 0 &&
      !entry.extending &&
      entry.leaseUntil - now <= this.leaseMs - this.heartbeatMs
    ) {
      void this.extend(entry, 'heartbeat').catch(() => {});
    }
  }

  private leaseLostError(entry: Running): BulwarkDurableError {
    return new BulwarkDurableError(
      'LEASE_LOST',
      `The lease on item ${entry.item.id} of queue "${this.q.name}" was lost (expired or taken by another worker); the item runs again elsewhere, so make the handler idempotent`,
    );
  }

  private lost(entry: Running, during: 'complete' | 'fail' | 'extend' | 'expired'): void {
    if (!entry.lostCounted) {
      entry.lostCounted = true;
      this.stats.leaseLost++;
      if (this.q._wants('leaseLost')) {
        this.q._emit({ ...this.q._base(entry.item.attempts), event: 'leaseLost', id: entry.item.id, during });
      }
    }
    abortEntry(entry, this.leaseLostError(entry));
  }

  private async extend(entry: Running, why: 'heartbeat' | 'manual'): Promise<void> {
    if (entry.lostCounted) throw this.leaseLostError(entry);
    const now = this.clock.date();
    let ok: boolean;
    entry.extending = true;
    try {
      ok = await this.track(this.q.store.extend(this.q.name, entry.ref, this.leaseMs, now));
    } catch (error) {
      this.reportError('extend', error);
      if (this.clock.date() >= entry.leaseUntil) this.lost(entry, 'expired');
      if (why === 'manual') throw error;
      return;
    } finally {
      entry.extending = false;
    }
    if (ok) {
      entry.leaseUntil = Math.max(entry.leaseUntil, now + this.leaseMs);
      return;
    }
    if (this.running.has(entry.item.id) || this.waiting.includes(entry)) this.lost(entry, 'extend');
    throw this.leaseLostError(entry);
  }

  /** The handler is done: its slot is free now (its ack or failure is tracked until it commits). */
  private finish(entry: Running): void {
    this.running.delete(entry.item.id);
    if (this.waiting.length > 0) this.drain();
    this.stats.running = this.running.size;
    if (this.running.size === 0 && this.waiting.length === 0) {
      if (this.leaseTimer !== null) {
        this.clock.clearTimeout(this.leaseTimer);
        this.leaseTimer = null;
      }
      if (this.drained !== null) this.drained();
    }
    this.scheduleSettle();
  }

  /**
   * Acks of handlers that finished in this turn go to the store as ONE `complete` call, together
   * with the claim that refills their slots (the store commits both in one transaction).
   */
  private scheduleSettle(): void {
    if (this.settleScheduled) return;
    this.settleScheduled = true;
    queueMicrotask(() => {
      this.settleScheduled = false;
      const acks = this.acks;
      if (acks.length > 0) {
        this.acks = [];
        this.flushAcks(acks);
      }
      this.claimNow();
    });
  }

  private flushAcks(acks: Running[]): void {
    const q = this.q;
    this.track(
      q.store.complete(
        q.name,
        acks.map((e) => e.ref),
        this.clock.date(),
      ),
    ).then(
      (results) => {
        for (let i = 0; i < acks.length; i++) {
          const entry = acks[i]!;
          if (results[i] === true) {
            this.stats.completed++;
            if (q._wants('completed')) {
              q._emit({
                ...q._base(entry.item.attempts),
                event: 'completed',
                id: entry.item.id,
                durationMs: this.clock.now() - entry.startedAt,
              });
            }
          } else {
            this.lost(entry, 'complete');
          }
        }
      },
      // The acks may or may not have committed; the lease expiry decides (at-least-once).
      (error) => this.reportError('complete', error),
    );
  }

  private onSuccess(entry: Running): void {
    if (entry.released) return;
    this.acks.push(entry);
    this.finish(entry);
  }

  private failAction(item: ClaimedItem, error: unknown): { action: FailAction; delayMs: number } {
    const text = JSON.stringify(serializeError(error));
    if (isNonRetryable(error))
      return { action: { kind: 'dead', reason: 'non-retryable', error: text }, delayMs: 0 };
    if (item.attempts >= item.maxAttempts) {
      return { action: { kind: 'dead', reason: 'exhausted', error: text }, delayMs: 0 };
    }
    const seq = this.q._backoff.start(undefined, this.q._random);
    let delay = 0;
    for (let i = 0; i < item.attempts; i++) delay = seq.next();
    const now = this.clock.date();
    return {
      action: { kind: 'retry', runAt: now + Math.ceil(delay), error: text },
      delayMs: Math.ceil(delay),
    };
  }

  private onFailure(entry: Running, error: unknown): void {
    if (entry.released) return;
    const q = this.q;
    const { action, delayMs } = this.failAction(entry.item, error);
    this.track(q.store.fail(q.name, entry.ref, action, this.clock.date())).then(
      (ok) => {
        if (ok) this.counted(entry.item, action, delayMs, error);
        else this.lost(entry, 'fail');
      },
      (storeError) => this.reportError('fail', storeError),
    );
    this.finish(entry);
  }

  private counted(item: ClaimedItem, action: FailAction, delayMs: number, error: unknown): void {
    const q = this.q;
    if (action.kind === 'retry') {
      this.stats.retried++;
      if (q._wants('retried'))
        q._emit({ ...q._base(item.attempts), event: 'retried', id: item.id, delayMs, error });
    } else {
      this.stats.dead++;
      if (q._wants('dead')) {
        q._emit({ ...q._base(item.attempts), event: 'dead', id: item.id, reason: action.reason, error });
      }
    }
  }

  private settleDead(item: ClaimedItem, ref: LeaseRef, reason: string, error: unknown): void {
    const q = this.q;
    const action: FailAction = { kind: 'dead', reason, error: JSON.stringify(serializeError(error)) };
    this.track(q.store.fail(q.name, ref, action, this.clock.date())).then(
      (ok) => {
        if (ok) this.counted(item, action, 0, error);
        else {
          this.stats.leaseLost++;
          if (q._wants('leaseLost')) {
            q._emit({ ...q._base(item.attempts), event: 'leaseLost', id: item.id, during: 'fail' });
          }
        }
      },
      (storeError) => this.reportError('fail', storeError),
    );
  }

  /**
   * Stops the worker: claims nothing more, waits up to `graceMs` (default 10 000) for running
   * handlers, then aborts the signals of those still running and returns their items to pending at
   * once (the interrupted attempt counts, as a crash would), so nothing stays stuck active. Their
   * late acks are refused (`LEASE_LOST`).
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'stop', store: sqliteStore({ path: ':memory:' }) });
   * const worker = q.work(async () => {});
   * await worker.stop({ graceMs: 10_000 });
   * await q.close();
   * ```
   */
  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.stopPromise ??= this.doStop(options.graceMs ?? 10_000);
    return this.stopPromise;
  }

  /** Returns prefetched items that never started to pending (uncounted when the store can). */
  private async releaseWaiting(): Promise<void> {
    const waiting = this.waiting.filter((e) => !e.lostCounted);
    this.waiting = [];
    if (waiting.length === 0) return;
    const q = this.q;
    let results: boolean[];
    try {
      if (q.store.release !== undefined) {
        results = await q.store.release(
          q.name,
          waiting.map((e) => e.ref),
          this.clock.date(),
        );
      } else {
        const now = this.clock.date();
        const error = JSON.stringify({ message: 'released unstarted by worker.stop()', code: 'RELEASED' });
        results = await Promise.all(
          waiting.map((e) => q.store.fail(q.name, e.ref, { kind: 'retry', runAt: now, error }, now)),
        );
      }
    } catch (error) {
      this.reportError('release', error);
      return;
    }
    for (let i = 0; i < waiting.length; i++) {
      if (results[i] !== true) continue;
      this.stats.released++;
      if (q._wants('released'))
        q._emit({ ...q._base(waiting[i]!.item.attempts), event: 'released', id: waiting[i]!.item.id });
    }
  }

  private async doStop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.pollTimer !== null) this.clock.clearTimeout(this.pollTimer);
    if (this.sweepTimer !== null) this.clock.clearTimeout(this.sweepTimer);
    this.pollTimer = null;
    this.sweepTimer = null;
    if (this.unsubscribe !== null) await this.unsubscribe().catch(() => {});
    // A claim in flight starts its items when it returns: let them run within the grace period.
    if (this.claimDone !== null) await this.claimDone;
    await this.releaseWaiting();
    if (this.running.size > 0 && graceMs > 0) {
      let graceTimer: TimerHandle | null = null;
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        graceTimer = this.clock.setTimeout(resolve, graceMs);
      });
      if (graceTimer !== null) this.clock.clearTimeout(graceTimer);
      this.drained = null;
    }
    if (this.leaseTimer !== null) {
      this.clock.clearTimeout(this.leaseTimer);
      this.leaseTimer = null;
    }
    if (this.running.size > 0) {
      const q = this.q;
      const releases: Promise<unknown>[] = [];
      for (const entry of [...this.running.values()]) {
        entry.released = true;
        abortEntry(
          entry,
          new BulwarkDurableError('CLOSED', `Worker of queue "${q.name}" stopped after its grace period`),
        );
        const action: FailAction = {
          kind: 'retry',
          runAt: this.clock.date(),
          error: JSON.stringify({
            message: `released by worker.stop() after graceMs=${graceMs}`,
            code: 'RELEASED',
          }),
        };
        releases.push(
          q.store.fail(q.name, entry.ref, action, this.clock.date()).then(
            (ok) => {
              if (ok) {
                this.stats.released++;
                if (q._wants('released')) {
                  q._emit({ ...q._base(entry.item.attempts), event: 'released', id: entry.item.id });
                }
              }
            },
            (error) => this.reportError('release', error),
          ),
        );
        this.running.delete(entry.item.id);
      }
      this.stats.running = 0;
      await Promise.all(releases);
    }
    // Acks of handlers that just finished: send them now, then wait for every store call.
    if (this.acks.length > 0) {
      const acks = this.acks;
      this.acks = [];
      this.flushAcks(acks);
    }
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    this.onStopped();
  }
}
