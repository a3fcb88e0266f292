/**
 * A worker of a durable queue: claims items for its free handler slots, runs the handler under a
 * fenced lease (heartbeats extend it), enforces the per-attempt timeout, batches acks, records
 * failures as retries or dead letters, and stops gracefully. It sees its queue only through the
 * narrow `WorkerHost` interface.
 * @module
 */

import type { Clock, TimerHandle } from '../core/clock.js';
import type { Snapshot } from '../core/component.js';
import { type Disposer, type Listener, PolicyEmitter } from '../core/events.js';
import type { Registry } from '../core/registry.js';
import {
  type Attempt,
  AttemptTimeouts,
  abortAttempt,
  jobOf,
  newAttempt,
  releaseAttempts,
} from './attempt.js';
import { ClaimRate } from './claim-rate.js';
import { WORKER_DESCRIPTOR } from './descriptors.js';
import { BulwarkDurableError } from './errors.js';
import { type DurableWorkerEvent, eventBase } from './events.js';
import { failAction, outOfAttempts, serializeError } from './failures.js';
import { type JobHandler, newWorkerStats, type WorkerStats } from './job.js';
import { Leases, type LostDuring } from './leases.js';
import type { WorkOptions } from './options.js';
import { progressReporter } from './progress.js';
import type { ClaimedItem, FailAction, LeaseRef, QueueStore, StoredItem } from './store.js';

/** What a worker needs of its queue — and nothing more. @internal */
export interface WorkerHost<T> {
  /** The queue's name. */
  readonly name: string;
  readonly store: QueueStore;
  readonly clock: Clock;
  /** The per-attempt timeout, in ms (Infinity: none). */
  readonly timeoutMs: number;
  /** Decrypts and decodes an item's payload; throws DECRYPT_FAILED or the codec's error. */
  open(item: StoredItem): T;
  /** The backoff delay before the retry that follows attempt `attempt`. */
  retryDelayMs(attempt: number): number;
  /** Applies retention (`queue.sweep()`). */
  sweep(): Promise<number>;
}

/** A running worker of a queue. Made by `queue.work`. */
export class Worker<T> {
  readonly kind = 'durableWorker';
  readonly descriptor = WORKER_DESCRIPTOR;
  /** The worker's name (`<queue>/<n>` unless given). */
  readonly name: string;
  /** Counters since the worker started. */
  readonly stats: WorkerStats = newWorkerStats();
  private ignoredSignals = 0;
  private readonly events = new PolicyEmitter<DurableWorkerEvent>();
  private readonly concurrency: number;
  private readonly leases: Leases;
  private readonly pollMs: number;
  private readonly sweepIntervalMs: number;
  private readonly rate: ClaimRate | null;
  private readonly running = new Map<string, Attempt>();
  /** Prefetched items waiting for a handler slot (claimed, lease kept alive, not started). */
  private waiting: Attempt[] = [];
  private readonly prefetch: number;
  private readonly inflight = new Set<Promise<unknown>>();
  private acks: Attempt[] = [];
  private settleScheduled = false;
  private stopping = false;
  private stopped = false;
  /** Claims in flight, and the slots they asked for. */
  private claiming = 0;
  private requested = 0;
  /** Most claims in flight at once (each for up to `chunk` slots). */
  private readonly lanes: number;
  private readonly chunk: number;
  private pumpScheduled = false;
  private readonly claims = new Set<Promise<void>>();
  private dirty = false;
  private pollTimer: TimerHandle | null = null;
  private sweepTimer: TimerHandle | null = null;
  private readonly timeouts: AttemptTimeouts;
  private unsubscribe: (() => Promise<void>) | null = null;
  private drained: (() => void) | null = null;
  private stopPromise: Promise<void> | null = null;
  private readonly clock: Clock;

  /** @internal Made by `queue.work`. */
  constructor(
    private readonly q: WorkerHost<T>,
    private readonly handler: JobHandler<T>,
    options: WorkOptions & { name: string },
    private readonly registry: Registry | undefined,
    private readonly onStopped: () => void,
  ) {
    this.name = options.name;
    this.clock = q.clock;
    this.concurrency = options.concurrency ?? 1;
    this.leases = new Leases(
      {
        queue: q.name,
        store: q.store,
        clock: this.clock,
        attempts: () => [...this.running.values(), ...this.waiting],
        holds: (a) => this.running.has(a.item.id) || this.waiting.includes(a),
        lost: (a, during) => this.lost(a, during),
        track: (p) => this.track(p),
        reportError: (op, error) => this.reportError(op, error),
      },
      options.leaseMs ?? 30_000,
      options.heartbeatMs,
    );
    this.pollMs = options.pollMs ?? 1_000;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
    this.prefetch = options.prefetch ?? 0;
    // One claim lane per 50 slots, at most 4; one when rate-limited (tokens are spent on return).
    const capacity = this.concurrency + this.prefetch;
    this.lanes = options.rateLimit === undefined ? Math.min(4, Math.max(1, Math.ceil(capacity / 100))) : 1;
    this.chunk = Math.ceil(capacity / this.lanes);
    this.rate = options.rateLimit === undefined ? null : new ClaimRate(options.rateLimit, this.clock);
    this.timeouts = new AttemptTimeouts(
      q.timeoutMs,
      this.clock,
      () => this.running.values(),
      (a) => this.timedOut(a, a.item.timeoutMs ?? q.timeoutMs),
    );
    registry?.register(this);
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

  /**
   * The worker's state and figures (no I/O).
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'snap', store: sqliteStore({ path: ':memory:' }) });
   * const worker = q.work(async () => {}, { concurrency: 4 });
   * console.log(worker.snapshot().gauges.concurrency); // 4
   * await q.close();
   * ```
   */
  snapshot(): Snapshot {
    const { inFlight, ...counters } = this.stats;
    return {
      kind: this.kind,
      name: this.name,
      state: this.stopped ? 'stopped' : this.stopping ? 'stopping' : 'running',
      gauges: { inFlight, buffered: this.waiting.length, concurrency: this.concurrency },
      counters: { ...counters, ignoredSignals: this.ignoredSignals },
      details: { queue: this.q.name, leaseMs: this.leases.leaseMs, timeoutMs: this.q.timeoutMs },
    };
  }

  /**
   * Subscribes to this worker's events (claimed, completed, retried, dead, timeout, ignoredSignal,
   * leaseLost, released, error); they also reach `telemetry.onEvent` as kind `durableWorker`.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'wev', store: sqliteStore({ path: ':memory:' }) });
   * const worker = q.work(async () => {});
   * using _sub = worker.onEvent((e) => console.log(e.event, e.queue), ['completed']);
   * await q.close();
   * ```
   */
  onEvent(
    listener: Listener<DurableWorkerEvent>,
    only?: readonly DurableWorkerEvent['event'][] | 'notable',
  ): Disposer {
    return this.events.on(listener, only);
  }

  private emit(event: DurableWorkerEvent): void {
    this.events.emit(event);
  }

  private base(attempt: number) {
    return eventBase('durableWorker', this.name, this.q.name, attempt);
  }

  private reportError(operation: string, error: unknown): void {
    this.stats.errors++;
    if (this.events.wants('error')) this.emit({ ...this.base(0), event: 'error', operation, error });
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
    if (this.claiming > 0) {
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

  /**
   * Claims for the free slots: one store call for all of them, or — for a large worker — up to
   * `lanes` calls in flight at once, each for a full `chunk` of free slots, so slots refill while
   * other claims are on their way (a large claim no longer waits for the slowest one).
   */
  private claimNow(): void {
    while (!this.stopping) {
      let n = this.concurrency + this.prefetch - this.running.size - this.waiting.length - this.requested;
      if (this.claiming > 0 && (this.claiming >= this.lanes || n < this.chunk)) return;
      n = Math.min(n, this.chunk);
      if (n > 0 && this.rate !== null) {
        const tokens = this.rate.available();
        if (tokens < 1) this.schedulePoll(this.rate.retryAfterMs());
        n = Math.min(n, tokens);
      }
      if (n <= 0) return;
      this.claimOnce(n);
    }
  }

  private claimOnce(n: number): void {
    this.claiming++;
    this.requested += n;
    this.dirty = false;
    const done = this.track(this.q.store.claim(this.q.name, n, this.leases.leaseMs, this.clock.date())).then(
      (items) => {
        this.claiming--;
        this.requested -= n;
        this.claims.delete(done);
        this.rate?.spend(items.length);
        for (const item of items) this.waiting.push(newAttempt(item));
        this.drain();
        if (this.stopping) return;
        if (items.length === n || this.dirty) this.claimNow();
        else if (this.claiming === 0) this.schedulePoll(this.pollMs);
      },
      (error) => {
        this.claiming--;
        this.requested -= n;
        this.claims.delete(done);
        this.reportError('claim', error);
        this.schedulePoll(this.pollMs);
      },
    );
    this.claims.add(done);
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
    if (this.waiting.length > 0) this.leases.arm();
  }

  private start(entry: Attempt): void {
    const item = entry.item;
    this.stats.claimed++;
    const q = this.q;
    if (this.events.wants('claimed'))
      this.emit({ ...this.base(item.attempts), event: 'claimed', id: item.id });
    const exhausted = outOfAttempts(item);
    if (exhausted !== null) {
      this.settleDead(item, entry.ref, exhausted.reason, exhausted.error);
      return;
    }
    let payload: T;
    try {
      payload = q.open(item);
    } catch (error) {
      const reason =
        error instanceof BulwarkDurableError && error.code === 'DECRYPT_FAILED'
          ? 'DECRYPT_FAILED'
          : 'DECODE_FAILED';
      this.settleDead(item, entry.ref, reason, error);
      return;
    }
    entry.startedAt = this.clock.now();
    this.running.set(item.id, entry);
    this.stats.inFlight = this.running.size;
    this.leases.arm();
    this.timeouts.started(entry);
    const { job, ctx } = jobOf(entry, q.name, payload, this.extendManually, this.reportProgress);
    let result: unknown;
    try {
      result = this.handler(job, ctx);
    } catch (error) {
      entry.handlerDone = true;
      this.onFailure(entry, error);
      return;
    }
    // A handler that returned no promise settles in a microtask (no promise made for it).
    if (typeof (result as PromiseLike<unknown> | null)?.then !== 'function') {
      queueMicrotask(() => this.onSuccess(entry));
      return;
    }
    Promise.resolve(result).then(
      () => this.onSuccess(entry),
      (error: unknown) => {
        entry.handlerDone = true;
        this.onFailure(entry, error);
      },
    );
  }

  private readonly extendManually = (a: Attempt): Promise<void> => this.leases.extend(a, 'manual');

  /** `job.progress(value)`: the attempt's reporter, made on its first use (most jobs never report). */
  private readonly reportProgress = (a: Attempt, value: unknown): Promise<void> => {
    a.reporter ??= progressReporter(this.q.store, this.q.name, a.ref, this.clock);
    return a.reporter(value);
  };

  private timedOut(entry: Attempt, timeoutMs: number): void {
    if (entry.settled) return;
    this.stats.timeouts++;
    const id = entry.item.id;
    if (this.events.wants('timeout'))
      this.emit({ ...this.base(entry.item.attempts), event: 'timeout', id, timeoutMs });
    const error = new BulwarkDurableError(
      'HANDLER_TIMEOUT',
      `The handler of item ${id} of queue "${this.q.name}" ran longer than timeoutMs=${timeoutMs}; the attempt failed (its signal was aborted). Make the handler honour its signal, or raise the queue's timeoutMs`,
    );
    abortAttempt(entry, error);
    this.onFailure(entry, error);
    // A handler that is still running one more timeout later ignores its signal: report it.
    const check = this.clock.setTimeout(() => {
      if (entry.handlerDone) return;
      this.ignoredSignals++;
      if (this.events.wants('ignoredSignal'))
        this.emit({ ...this.base(entry.item.attempts), event: 'ignoredSignal', id, timeoutMs });
    }, timeoutMs);
    check.unref();
  }

  private countLost(item: ClaimedItem, during: LostDuring): void {
    this.stats.leaseLost++;
    if (this.events.wants('leaseLost'))
      this.emit({ ...this.base(item.attempts), event: 'leaseLost', id: item.id, during });
  }

  private lost(entry: Attempt, during: LostDuring): void {
    if (!entry.lostCounted) {
      entry.lostCounted = true;
      this.countLost(entry.item, during);
    }
    abortAttempt(entry, this.leases.lostError(entry));
  }

  /** The handler is done: its slot is free now (its ack or failure is tracked until it commits). */
  private finish(entry: Attempt): void {
    entry.settled = true;
    this.running.delete(entry.item.id);
    if (this.waiting.length > 0) this.drain();
    this.stats.inFlight = this.running.size;
    if (this.running.size === 0 && this.waiting.length === 0) {
      this.leases.disarm();
      if (this.drained !== null) this.drained();
    }
    this.scheduleSettle();
  }

  /**
   * Acks of handlers that finished in this turn go to the store as ONE `complete` call, and the
   * freed slots are refilled (the store merges concurrent completes into one statement).
   */
  private scheduleSettle(): void {
    if (this.settleScheduled) return;
    this.settleScheduled = true;
    queueMicrotask(() => {
      this.settleScheduled = false;
      if (this.acks.length > 0) this.flushAcks();
      this.claimNow();
    });
  }

  /** Sends the waiting acks as one `complete`. */
  private flushAcks(): void {
    const acks = this.acks;
    this.acks = [];
    const q = this.q;
    const refs = acks.map((e) => e.ref);
    this.track(q.store.complete(q.name, refs, this.clock.date())).then(
      (results) => this.acked(acks, results),
      // The acks may or may not have committed; the lease expiry decides (at-least-once).
      (error) => this.reportError('complete', error),
    );
  }

  /** Counts committed acks; an ack refused by its fence means the lease was lost. */
  private acked(acks: readonly Attempt[], results: readonly boolean[]): void {
    const wants = this.events.wants('completed');
    for (let i = 0; i < acks.length; i++) {
      const entry = acks[i]!;
      if (results[i] !== true) {
        this.lost(entry, 'complete');
        continue;
      }
      this.stats.completed++;
      if (wants) {
        const durationMs = this.clock.now() - entry.startedAt;
        this.emit({ ...this.base(entry.item.attempts), event: 'completed', id: entry.item.id, durationMs });
      }
    }
  }

  private onSuccess(entry: Attempt): void {
    entry.handlerDone = true;
    if (entry.settled) return;
    this.acks.push(entry);
    this.finish(entry);
  }

  private onFailure(entry: Attempt, error: unknown): void {
    if (entry.settled) return;
    const q = this.q;
    const now = this.clock.date();
    const { action, delayMs } = failAction(entry.item, error, now, (a) => q.retryDelayMs(a));
    this.track(q.store.fail(q.name, entry.ref, action, now)).then(
      (ok) => {
        if (ok) this.counted(entry.item, action, delayMs, error);
        else this.lost(entry, 'fail');
      },
      (storeError) => this.reportError('fail', storeError),
    );
    this.finish(entry);
  }

  private counted(item: ClaimedItem, action: FailAction, delayMs: number, error: unknown): void {
    if (action.kind === 'retry') {
      this.stats.retried++;
      if (this.events.wants('retried'))
        this.emit({ ...this.base(item.attempts), event: 'retried', id: item.id, delayMs, error });
    } else {
      this.stats.dead++;
      if (this.events.wants('dead'))
        this.emit({ ...this.base(item.attempts), event: 'dead', id: item.id, reason: action.reason, error });
    }
  }

  private settleDead(item: ClaimedItem, ref: LeaseRef, reason: string, error: unknown): void {
    const q = this.q;
    const action: FailAction = { kind: 'dead', reason, error: JSON.stringify(serializeError(error)) };
    this.track(q.store.fail(q.name, ref, action, this.clock.date())).then(
      (ok) => {
        if (ok) this.counted(item, action, 0, error);
        else this.countLost(item, 'fail');
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

  private countReleased(results: readonly boolean[], entries: readonly Attempt[]): void {
    for (let i = 0; i < entries.length; i++) {
      if (results[i] !== true) continue;
      this.stats.released++;
      const item = entries[i]!.item;
      if (this.events.wants('released'))
        this.emit({ ...this.base(item.attempts), event: 'released', id: item.id });
    }
  }

  /** Returns `entries` to pending (uncounted when `uncounted` and the store can), counting them. */
  private async releaseEntries(
    entries: readonly Attempt[],
    uncounted: boolean,
    message: string,
  ): Promise<void> {
    if (entries.length === 0) return;
    const refs = entries.map((e) => e.ref);
    try {
      const { store, name } = this.q;
      this.countReleased(
        await releaseAttempts(store, name, refs, uncounted, message, this.clock.date()),
        entries,
      );
    } catch (error) {
      this.reportError('release', error);
    }
  }

  private async waitForDrain(graceMs: number): Promise<void> {
    if (this.running.size === 0 || graceMs <= 0) return;
    let graceTimer: TimerHandle | null = null;
    await new Promise<void>((resolve) => {
      this.drained = resolve;
      graceTimer = this.clock.setTimeout(resolve, graceMs);
    });
    if (graceTimer !== null) this.clock.clearTimeout(graceTimer);
    this.drained = null;
  }

  private async doStop(graceMs: number): Promise<void> {
    this.stopping = true;
    for (const t of [this.pollTimer, this.sweepTimer]) if (t !== null) this.clock.clearTimeout(t);
    this.pollTimer = null;
    this.sweepTimer = null;
    if (this.unsubscribe !== null) await this.unsubscribe().catch(() => {});
    // A claim in flight starts its items when it returns: let them run within the grace period.
    while (this.claims.size > 0) await Promise.all([...this.claims]);
    // Prefetched items that never started go back uncounted.
    const waiting = this.waiting.filter((e) => !e.lostCounted);
    this.waiting = [];
    await this.releaseEntries(waiting, true, 'released unstarted by worker.stop()');
    await this.waitForDrain(graceMs);
    this.leases.disarm();
    this.timeouts.close();
    const still = [...this.running.values()];
    for (const entry of still) {
      entry.settled = true;
      abortAttempt(
        entry,
        new BulwarkDurableError('CLOSED', `Worker of queue "${this.q.name}" stopped after its grace period`),
      );
      this.running.delete(entry.item.id);
    }
    this.stats.inFlight = 0;
    await this.releaseEntries(still, false, `released by worker.stop() after graceMs=${graceMs}`);
    // Acks of handlers that just finished: send them now, then wait for every store call.
    if (this.acks.length > 0) this.flushAcks();
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    this.stopped = true;
    this.registry?.unregister(this);
    this.onStopped();
  }
}
