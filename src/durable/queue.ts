/**
 * The durable queue: `openQueue` over any `QueueStore`. It holds what every backend shares: ids,
 * payload codec and encryption, option checks, enqueue, reads, retention and re-wrapping; its
 * workers (`worker.ts`) and dead letters (`dead-letters.ts`) see it through narrow interfaces.
 *
 * Delivery is at-least-once: a handler may run more than once for one item (a crash or a lost lease
 * after the work was done but before the ack committed), so handlers must be idempotent (use
 * `job.id` or `job.key` as the idempotency key downstream).
 * @module
 */

import type { Backoff } from '../core/backoff.js';
import { backoff as backoffs } from '../core/backoff.js';
import { type Clock, type RandomSource, systemClock, systemRandom, type TimerHandle } from '../core/clock.js';
import type { ComponentOperation, Snapshot } from '../core/component.js';
import { ConfigError } from '../core/errors.js';
import { type Disposer, type Listener, PolicyEmitter } from '../core/events.js';
import type { Registry } from '../core/registry.js';
import { defaultCodec, type PayloadCodec } from './codec.js';
import { DeadLetters } from './dead-letters.js';
import { QUEUE_DESCRIPTOR, queueSnapshot } from './descriptors.js';
import type { Keyring } from './encryption.js';
import { BulwarkDurableError } from './errors.js';
import { type DurableQueueEvent, eventBase, type QueueState, queueState } from './events.js';
import { FleetLimits } from './fleet-limits.js';
import type { EnqueueResult, ItemView, JobHandler, QueueStats, RewrapProgress } from './job.js';
import { newItem, retryDelay } from './new-item.js';
import { queueOperations } from './operations.js';
import {
  type EnqueueOptions,
  parseWorkOptions,
  type QueueOptions,
  queueSchema,
  settleRetention,
  sweepAll,
  type WorkOptions,
} from './options.js';
import { Payloads } from './payloads.js';
import { rewrapItems } from './rewrap.js';
import { Schedules } from './schedules.js';
import type { ItemState, QueueStore, StoredItem, StoreStats } from './store.js';
import { Worker, type WorkerHost } from './worker.js';

const storeRefs = new WeakMap<QueueStore, number>();

/**
 * Opens a durable queue on a store (creating the store's schema if needed, unless `readOnly`).
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
  queueSchema.parse(options, 'openQueue');
  settleRetention(options.retention);
  await options.store.init(options.readOnly === true ? { readOnly: true } : undefined);
  const q = new Queue<T>(options); // throws DUPLICATE_COMPONENT before taking a store reference
  storeRefs.set(options.store, (storeRefs.get(options.store) ?? 0) + 1);
  return q;
}

/** A durable queue. Made by `openQueue`. */
export class Queue<T = unknown> {
  readonly kind = 'durableQueue';
  readonly descriptor = QUEUE_DESCRIPTOR;
  readonly name: string;
  readonly store: QueueStore;
  /** Dead letters: list, redrive, purge. */
  readonly deadLetters: DeadLetters<T>;
  /** Repeatable and cron jobs (see `schedules.ts`). */
  readonly schedules: Schedules<T>;
  /** Fleet-wide concurrency and rate limits (see `fleet-limits.ts`). */
  readonly limits: FleetLimits;
  private readonly payloads: Payloads<T>;
  private readonly keyring: Keyring | undefined;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly backoff: Backoff;
  private readonly maxAttempts: number;
  private readonly timeoutMs: number;
  private readonly readOnly: boolean;
  private readonly retention: ReturnType<typeof settleRetention>;
  private readonly registry: Registry | undefined;
  private readonly events = new PolicyEmitter<DurableQueueEvent>();
  private readonly workers = new Set<Worker<T>>();
  private readonly host: WorkerHost<T>;
  private workerSeq = 0;
  private readonly counters = { enqueued: 0, duplicates: 0, redriven: 0, scheduled: 0, errors: 0 };
  private lastStats: (StoreStats & { at: number }) | null = null;
  /** Paused as of the last pause/resume/stats() in this process. */
  private paused = false;
  private statsTimer: TimerHandle | null = null;
  private statsRun: Promise<unknown> | null = null;
  /** Set when `close()` starts: no new workers or enqueues from then on. */
  private closing: Promise<void> | null = null;
  /** The state last reported by a `stateChange` event (the initial one is set in the constructor). */
  private lastState: QueueState = 'open';
  /** Set when `close()` has stopped the workers: every other call is refused from then on. */
  private closed = false;

  /** @internal Made by `openQueue`. */
  constructor(options: QueueOptions<T>) {
    this.name = options.name;
    this.keyring = options.keyring;
    this.payloads = new Payloads(this.name, options.codec ?? (defaultCodec as PayloadCodec<T>), this.keyring);
    this.store = this.payloads.withSubjectKeys(options.store, options.subjectKeys);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.backoff =
      options.backoff ?? backoffs.exponential({ initialMs: 1_000, maxMs: 300_000, jitter: 'full' });
    this.maxAttempts = options.maxAttempts ?? 10;
    this.timeoutMs = options.timeoutMs ?? 15 * 60_000;
    this.readOnly = options.readOnly === true;
    this.lastState = this.readOnly ? 'readOnly' : 'open';
    this.retention = settleRetention(options.retention);
    this.registry = options.registry;
    this.host = {
      name: this.name,
      store: this.store,
      clock: this.clock,
      timeoutMs: this.timeoutMs,
      open: (item) => this.payloads.open(item),
      retryDelayMs: (attempt) => retryDelay(this.backoff, this.random, attempt),
      sweep: () => this.sweep(),
    };
    const check = (write: boolean) => (write ? this.checkWritable() : this.checkOpen());
    const common = { name: this.name, store: this.store, clock: this.clock, check };
    this.deadLetters = new DeadLetters<T>({
      ...common,
      view: (item) => this.payloads.view(item),
      rebind: (item, to) => this.payloads.rebind(item, to),
      redriven: (ids, to) => this.onRedriven(ids, to),
      purge: (state, o) => this.purge(state, o),
    });
    this.schedules = new Schedules<T>({
      ...common,
      maxAttempts: this.maxAttempts,
      seal: (id, payload) => this.payloads.seal(id, payload),
      open: (item) => this.payloads.open(item as StoredItem),
      fired: (schedule, ids) => this.onScheduled(schedule, ids),
      error: (operation, error) => this.emitError(operation, error),
    });
    this.limits = new FleetLimits(common);
    this.registry?.register(this);
    const every = options.statsIntervalMs ?? 30_000;
    if (every > 0 && !this.readOnly) this.scheduleStats(every);
  }

  private onScheduled(schedule: string, ids: readonly string[]): void {
    this.counters.scheduled += ids.length;
    if (this.events.wants('scheduled'))
      this.events.emit({ ...this.base(), event: 'scheduled', schedule, ids });
  }

  private emitError(operation: string, error: unknown): void {
    this.counters.errors++;
    if (this.events.wants('error')) this.events.emit({ ...this.base(), event: 'error', operation, error });
  }

  private base = () => eventBase('durableQueue', this.name, this.name, 0);

  private onRedriven(ids: readonly string[], to: string): void {
    this.counters.redriven += ids.length;
    if (this.events.wants('redriven')) this.events.emit({ ...this.base(), event: 'redriven', ids, to });
  }

  private scheduleStats(every: number): void {
    const t = this.clock.setTimeout(() => {
      this.statsTimer = null;
      if (this.closing !== null) return;
      this.statsRun = this.stats().then(
        () => this.scheduleStats(every),
        (error: unknown) => {
          this.emitError('stats', error);
          this.scheduleStats(every);
        },
      );
    }, every);
    t.unref();
    this.statsTimer = t;
  }

  /** The control plane's views and actions on this queue (see `queueOperations`). */
  operations(): readonly ComponentOperation[] {
    return queueOperations(this);
  }

  /**
   * The queue's state and figures, without I/O: this process's workers and counters, and the
   * store's counts as of the last refresh (every `statsIntervalMs`, and at each `stats()` call;
   * `details.statsAt` says when).
   *
   * @example
   * ```ts
   * import { createRegistry } from 'bulwark';
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const registry = createRegistry();
   * const q = await openQueue({ name: 'snap', store: sqliteStore({ path: ':memory:' }), registry });
   * await q.enqueue(1);
   * await q.stats();
   * console.log(registry.snapshot('durableQueue')[0]?.gauges.pending); // 1
   * await q.close();
   * ```
   */
  snapshot(): Snapshot {
    let inFlight = 0;
    for (const w of this.workers) inFlight += w.stats.inFlight;
    return queueSnapshot(
      this.name,
      this.state(),
      this.workers.size,
      inFlight,
      this.lastStats,
      this.counters,
      {
        store: this.store.description,
        timeoutMs: this.timeoutMs,
        maxAttempts: this.maxAttempts,
      },
    );
  }

  /** Throws `CLOSED` once the queue is closed. */
  private checkOpen(): void {
    if (this.closed) {
      throw new BulwarkDurableError('CLOSED', `Queue "${this.name}" is closed; open it again with openQueue`);
    }
  }

  /** Throws `READ_ONLY` for a read-only queue, `CLOSED` once closed. */
  private checkWritable(): void {
    this.checkOpen();
    if (this.readOnly) {
      throw new BulwarkDurableError(
        'READ_ONLY',
        `Queue "${this.name}" was opened read-only (readOnly: true); open it without readOnly to change it`,
      );
    }
  }

  /** Throws `CLOSED` as soon as `close()` has started (no new work while workers are stopping). */
  private checkAccepting(): void {
    this.checkWritable();
    if (this.closing !== null) {
      throw new BulwarkDurableError(
        'CLOSED',
        `Queue "${this.name}" is closing: it accepts no new items or workers; open it again with openQueue`,
      );
    }
  }

  /** Seals and stores `entries` in one transaction (`path(i)` names entry i's options in errors). */
  private async put(
    entries: readonly { payload: T; options?: EnqueueOptions | undefined }[],
    tx: unknown,
    path: (i: number) => string,
  ): Promise<EnqueueResult[]> {
    this.checkAccepting();
    // Subject keys are loaded (an await) only when some entry names a subject.
    const sealings = entries.some((e) => e.options?.subject !== undefined)
      ? await this.payloads.sealings(entries.map((e) => e.options?.subject))
      : [];
    const now = this.clock.date();
    const q = { store: this.store, maxAttempts: this.maxAttempts, payloads: this.payloads };
    const items = entries.map((e, i) => newItem(q, e.payload, e.options, now, path(i), sealings[i]));
    const out = await this.store.enqueue(this.name, items, now, tx);
    this.enqueued(out);
    return out;
  }

  private enqueued(out: readonly EnqueueResult[]): void {
    const wants = this.events.wants('enqueued');
    for (const o of out) {
      if (o.duplicate) this.counters.duplicates++;
      else this.counters.enqueued++;
      if (wants) this.events.emit({ ...this.base(), event: 'enqueued', id: o.id, duplicate: o.duplicate });
    }
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
    return (await this.put([{ payload, options }], options?.tx, () => 'enqueue'))[0]!;
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
    return this.put(entries, tx, (i) => `enqueueMany[${i}].options`);
  }

  /**
   * Starts a worker that runs `handler` for each item: resolve to ack, throw to retry. The worker
   * joins `options.registry` (default: the queue's registry).
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
    if (typeof handler !== 'function')
      throw new ConfigError('work(handler)', 'a function (job, ctx) => …', handler);
    const o = parseWorkOptions(options);
    const name = o.name ?? `${this.name}/${++this.workerSeq}`;
    const registry = o.registry ?? this.registry;
    const w = new Worker<T>(this.host, handler, { ...o, name }, registry, () => {
      this.workers.delete(w);
      if (this.workers.size === 0) void this.schedules.stop();
    });
    this.workers.add(w);
    this.schedules.start();
    return w;
  }

  /**
   * Counts by state and the age of the oldest due pending item (also refreshes `snapshot()`).
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
    this.checkOpen();
    const now = this.clock.date();
    const st = await this.store.stats(this.name, now);
    this.lastStats = { ...st, at: now };
    if (this.store.isPaused !== undefined) this.paused = await this.store.isPaused(this.name);
    return { queue: this.name, ...st };
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
    this.checkOpen();
    const item = await this.store.get(this.name, id);
    return item === undefined ? undefined : this.payloads.view(item);
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
    this.checkOpen();
    const items = await this.store.list(this.name, options);
    return items.map((i) => this.payloads.view(i));
  }

  /**
   * Deletes items in a state: `completed` or `dead`, or pending/active with `force` (destroys work).
   * `count` reports how many a purge with the same arguments would delete now (the same
   * predicate), changing nothing.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'p', store: sqliteStore({ path: ':memory:' }) });
   * console.log(await q.purge('completed')); // 0
   * await q.close();
   * ```
   */
  async purge(
    state: ItemState,
    options: { force?: boolean; olderThanMs?: number; count?: boolean } = {},
  ): Promise<number> {
    if (options.count === true) this.checkOpen();
    else this.checkWritable();
    const olderThan = options.olderThanMs === undefined ? undefined : this.clock.date() - options.olderThanMs;
    return this.store.purge(this.name, state, {
      ...(options.force === undefined ? {} : { force: options.force }),
      ...(olderThan === undefined ? {} : { olderThan }),
      ...(options.count === true ? { count: true } : {}),
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
    this.checkWritable();
    return sweepAll(this.store, this.name, this.retention, this.clock);
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
   * const p = await q.rewrap({ batchSize: 100 }); // resume with { cursor: p.cursor } until p.done
   * if (p.done && p.failed === 0) ring.remove('k1'); // only after a full pass without failures
   * console.log((await q.list())[0]?.payload); // { secret: 1 }
   * await q.close();
   * ```
   */
  async rewrap(
    options: { batchSize?: number; cursor?: string | null; maxBatches?: number } = {},
  ): Promise<RewrapProgress> {
    this.checkWritable();
    const ring = this.keyring;
    if (ring === undefined) {
      throw new BulwarkDurableError('KEY_MISSING', `Queue "${this.name}" has no keyring: nothing to re-wrap`);
    }
    return rewrapItems(this.store, this.name, ring, options);
  }

  /**
   * Pauses the queue for every process sharing its store: workers everywhere claim nothing until
   * `resume()` (running handlers finish; enqueues are still accepted). Throws `INVALID_STATE` on a
   * store without pause support.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'pause', store: sqliteStore({ path: ':memory:' }) });
   * await q.pause();
   * console.log(await q.isPaused(), q.snapshot().state); // true paused
   * await q.resume();
   * await q.close();
   * ```
   */
  async pause(): Promise<void> {
    await this.setPaused(true);
  }

  /** Resumes a paused queue everywhere (idle workers are woken). */
  async resume(): Promise<void> {
    await this.setPaused(false);
  }

  /** True while the queue is paused (read from the store). */
  async isPaused(): Promise<boolean> {
    this.checkOpen();
    this.paused = (await this.store.isPaused?.(this.name)) ?? false;
    this.noteState();
    return this.paused;
  }

  private async setPaused(paused: boolean): Promise<void> {
    this.checkWritable();
    if (this.store.setPaused === undefined) {
      throw new BulwarkDurableError('INVALID_STATE', `Store ${this.store.description} cannot pause queues`);
    }
    await this.store.setPaused(this.name, paused, this.clock.date());
    this.paused = paused;
    const event = paused ? 'paused' : 'resumed';
    if (this.events.wants(event)) this.events.emit({ ...this.base(), event });
    this.noteState();
  }

  /**
   * Subscribes to this queue's own events (enqueued, redriven, paused, resumed, error); its workers' events are on
   * `worker.onEvent` (and on a registry both joined). All reach `telemetry.onEvent`.
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
  onEvent(
    listener: Listener<DurableQueueEvent>,
    only?: readonly DurableQueueEvent['event'][] | 'notable',
  ): Disposer {
    return this.events.on(listener, only);
  }

  /**
   * Stops this queue's workers (waiting up to `graceMs` for running handlers, default 10 000) and
   * closes the store when no other open queue uses it. From the moment it is called, `enqueue` and
   * `work` are refused (`CLOSED`); calling it again returns the same promise.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.closing ??= this.doClose(options);
    this.noteState();
    return this.closing;
  }

  private state(): QueueState {
    return queueState(this.closed, this.closing !== null, this.paused, this.readOnly);
  }

  /** Emits `stateChange` when the snapshot's state moved since the last call. */
  private noteState(): void {
    const from = this.lastState;
    this.lastState = this.state();
    if (from !== this.lastState && this.events.wants('stateChange'))
      this.events.emit({ ...this.base(), event: 'stateChange', from, to: this.lastState });
  }

  private async doClose(options: { graceMs?: number }): Promise<void> {
    try {
      if (this.statsTimer !== null) this.clock.clearTimeout(this.statsTimer);
      await Promise.all([...this.workers].map((w) => w.stop(options)));
      await this.schedules.stop();
      await this.statsRun;
    } finally {
      this.closed = true;
      this.noteState();
      this.registry?.unregister(this);
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
