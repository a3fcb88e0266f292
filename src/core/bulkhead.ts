/**
 * Bulkhead: at most `limit` executions at once; up to `queue` more wait in FIFO order (for
 * at most `queueTimeout` ms); the rest are rejected at once with `BulkheadRejectedError`.
 * A slot is handed straight from a finishing call to the next queued one, so a queued call
 * is never overtaken by a newcomer of the same limit.
 */

import type { Clock } from './clock.js';
import { type ExecuteOptions, ExecutionContext, type Operation, type Priority } from './context.js';
import { type DeadlineNode, type DeadlineQueue, DeadlineQueues } from './deadline-queue.js';
import { BulkheadRejectedError, ConfigError } from './errors.js';
import { type BulkheadEvent, PolicyEmitter } from './events.js';
import {
  checkKeys,
  checkObject,
  checkPriorities,
  checkString,
  type Dynamic,
  DynamicNumber,
  rules,
} from './options.js';
import { type CommonOptions, clockOf, invoke, type Link, PolicyBase, start } from './policy.js';

/** Options of `bulkhead()`. */
export interface BulkheadOptions extends CommonOptions {
  /** Executions allowed at once (>= 1). May be a function of the context (a per-tier limit). */
  limit: Dynamic<number>;
  /** Executions allowed to wait for a slot (>= 0). Default 0. May be a function of the context. */
  queue?: Dynamic<number>;
  /** Longest wait in the queue, in ms. Default Infinity. May be a function of the context. */
  queueTimeout?: Dynamic<number>;
  /** Priorities that run at once without taking a slot (counted and emitted, never silent). */
  bypass?: readonly Priority[];
}

class Waiter implements DeadlineNode<Waiter> {
  _dlPrev: Waiter | null = null;
  _dlNext: Waiter | null = null;
  _dlDeadline = 0;
  _dlQueued = false;
  prev: Waiter | null = null;
  next: Waiter | null = null;
  onAbort: (() => void) | null = null;
  /** The deadline queue this waiter is in (for its queueTimeout), if any. */
  timeoutQueue: DeadlineQueue<Waiter> | null = null;
  constructor(
    readonly ctx: ExecutionContext,
    readonly limit: number,
    readonly resolve: () => void,
    readonly reject: (e: unknown) => void,
  ) {}
}

/**
 * A bulkhead policy. See `bulkhead()`.
 */
export class BulkheadPolicy extends PolicyBase<never, BulkheadEvent> {
  readonly kind = 'bulkhead';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<BulkheadEvent>();
  private readonly limit: DynamicNumber;
  /** The limit when it is a constant (read without a call on the hot path), else 0. */
  private readonly fixedLimit: number;
  private readonly queue: DynamicNumber;
  private readonly queueTimeout: DynamicNumber;
  private readonly bypass: readonly string[];
  private readonly clock: Clock;
  private readonly timers: DeadlineQueues<Waiter>;
  private running = 0;
  private waiting = 0;
  private bypassing = 0;
  private bypassed = 0;
  private head: Waiter | null = null;
  private tail: Waiter | null = null;
  private rejected = 0;

  constructor(options: BulkheadOptions) {
    super();
    checkKeys('bulkhead', options as unknown as Record<string, unknown>, [
      'limit',
      'queue',
      'queueTimeout',
      'bypass',
      'name',
      'clock',
    ]);
    if (options.limit === undefined) throw new ConfigError('bulkhead.limit', 'an integer >= 1', undefined);
    this.limit = DynamicNumber.of('bulkhead.limit', options.limit, rules.int(1), 1);
    this.fixedLimit = this.limit.fn === null ? this.limit.constant : 0;
    this.queue = DynamicNumber.of('bulkhead.queue', options.queue, rules.intOrInfinity(0), 0);
    this.queueTimeout = DynamicNumber.of(
      'bulkhead.queueTimeout',
      options.queueTimeout,
      rules.atLeast(0),
      Number.POSITIVE_INFINITY,
    );
    this.bypass = checkPriorities('bulkhead.bypass', options.bypass);
    this.name = checkString('bulkhead.name', options.name, 'bulkhead');
    this.clock = clockOf(options.clock, 'bulkhead.clock');
    this.timers = new DeadlineQueues<Waiter>(this.clock, (w) => this.onQueueTimeout(w));
  }

  /** Executions running now (bypassing ones not included). */
  get active(): number {
    return this.running;
  }

  /** Executions waiting for a slot now. */
  get queued(): number {
    return this.waiting;
  }

  /**
   * Live figures (`active`, `queued`, `bypassing`: running now without a slot) and counters
   * since creation (`rejected`, `bypassed`).
   */
  get stats(): {
    readonly active: number;
    readonly queued: number;
    readonly bypassing: number;
    readonly rejected: number;
    readonly bypassed: number;
  } {
    return {
      active: this.running,
      queued: this.waiting,
      bypassing: this.bypassing,
      rejected: this.rejected,
      bypassed: this.bypassed,
    };
  }

  /**
   * Runs `fn` under this policy. (Defined on each policy class, not only on the base, so that
   * the call into `_run` stays monomorphic: a measurable saving on the hot path.)
   */
  override execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | never> {
    return this._run(ExecutionContext.root(fn, options), null) as Promise<T | never>;
  }

  /** @internal */
  _run(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    // A caller that aborted before the call gets its reason at once (as retry and fetch do).
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    let limit = this.fixedLimit;
    if (limit === 0) {
      try {
        limit = this.limit.get(ctx);
      } catch (error) {
        return Promise.reject(error); // a bad dynamic value rejects; execute() never throws synchronously
      }
    }
    if (this.running < limit) {
      this.running++;
      return start(ctx, next).then(this.releaseOk, this.releaseError);
    }
    if (this.bypass.length !== 0 && this.bypass.includes(ctx.priority)) return this.runBypassing(ctx, next);
    let queue: number;
    let queueTimeout: number;
    try {
      queue = this.queue.get(ctx);
      queueTimeout = this.waiting < queue ? this.queueTimeout.get(ctx) : 0;
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.waiting < queue) return this.runQueued(ctx, next, limit, queueTimeout);
    return Promise.reject(this.rejection(ctx, 'full'));
  }

  private readonly releaseOk = (value: unknown): unknown => {
    this.release();
    return value;
  };

  private readonly releaseError = (error: unknown): never => {
    this.release();
    throw error;
  };

  private async runQueued(
    ctx: ExecutionContext,
    next: Link | null,
    limit: number,
    queueTimeout: number,
  ): Promise<unknown> {
    await this.enqueue(ctx, limit, queueTimeout); // resolves with the slot already taken for us
    try {
      // Aborted between the handover and now: give the slot back without running.
      if (ctx._isAborted) throw ctx._abortReason;
      return await invoke(ctx, next);
    } finally {
      this.release();
    }
  }

  private async runBypassing(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    this.bypassing++;
    this.bypassed++;
    this.emit('bypass', ctx);
    try {
      return await invoke(ctx, next);
    } finally {
      this.bypassing--;
    }
  }

  private rejection(ctx: ExecutionContext, reason: 'full' | 'queueTimeout'): BulkheadRejectedError {
    this.rejected++;
    this.emit('reject', ctx, reason);
    return new BulkheadRejectedError(
      this.name,
      reason === 'full' ? 'BULKHEAD_FULL' : 'BULKHEAD_QUEUE_TIMEOUT',
      this.running,
      this.waiting,
    );
  }

  private emit(
    event: 'queued' | 'dequeued' | 'bypass' | 'reject',
    ctx: ExecutionContext,
    reason: 'full' | 'queueTimeout' = 'full',
  ): void {
    if (!this.emitter.active) return;
    const base = {
      kind: 'bulkhead',
      name: this.name,
      priority: ctx.priority,
      operation: ctx.name,
      attempt: ctx.attempt,
      active: this.running,
      queued: this.waiting,
    } as const;
    this.emitter.emit(event === 'reject' ? { ...base, event, reason } : { ...base, event });
  }

  private enqueue(ctx: ExecutionContext, limit: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w = new Waiter(ctx, limit, resolve, reject);
      w.prev = this.tail;
      if (this.tail === null) this.head = w;
      else this.tail.next = w;
      this.tail = w;
      this.waiting++;
      if (timeoutMs !== Number.POSITIVE_INFINITY) {
        // Kept on the waiter: past the bound on distinct durations `for()` makes a new queue each time.
        const q = this.timers.for(timeoutMs);
        w.timeoutQueue = q;
        q.add(w);
      }
      if (ctx._canAbort) {
        // Watched without an AbortController (ctx.signal is made only when the function reads it).
        const onAbort = () => {
          this.unlink(w);
          reject(ctx._abortReason);
        };
        w.onAbort = onAbort;
        ctx._watch(onAbort);
      }
      this.emit('queued', ctx);
    });
  }

  /** Removes a waiter from the queue and its timers and listeners. */
  private unlink(w: Waiter): void {
    const prev = w.prev;
    const next = w.next;
    if (prev === null) this.head = next;
    else prev.next = next;
    if (next === null) this.tail = prev;
    else next.prev = prev;
    w.prev = null;
    w.next = null;
    this.waiting--;
    if (w.timeoutQueue !== null) {
      w.timeoutQueue.remove(w);
      w.timeoutQueue = null;
    }
    if (w.onAbort !== null) {
      w.ctx._unwatch(w.onAbort);
      w.onAbort = null;
    }
  }

  private onQueueTimeout(w: Waiter): void {
    this.unlink(w);
    w.reject(this.rejection(w.ctx, 'queueTimeout'));
  }

  private release(): void {
    this.running--;
    let w = this.head;
    if (this.fixedLimit !== 0) {
      // One limit for all: hand free slots to the queue, oldest first.
      while (w !== null && this.running < this.fixedLimit) {
        const next = w.next;
        this.handOver(w);
        w = next;
      }
      return;
    }
    // A limit per call (e.g. per priority): first fit in FIFO order, so a waiter whose own
    // limit is reached does not block a later one whose limit is higher (e.g. critical).
    while (w !== null) {
      const next = w.next;
      if (this.running < w.limit) this.handOver(w);
      w = next;
    }
  }

  /** Gives a free slot to a queued call. */
  private handOver(w: Waiter): void {
    this.unlink(w);
    this.running++;
    this.emit('dequeued', w.ctx);
    w.resolve();
  }
}

/**
 * Makes a bulkhead: `bulkhead({ limit: 10, queue: 100, queueTimeout: 1_000 })`, or the short
 * form `bulkhead(10, 100)`.
 *
 * @example
 * ```ts
 * import { bulkhead, BulkheadRejectedError } from 'bulwark';
 * const pool = bulkhead({ limit: 10, queue: 100, queueTimeout: 2_000, bypass: ['critical'] });
 * try {
 *   await pool.execute(() => fetch('https://example.org'));
 * } catch (err) {
 *   if (err instanceof BulkheadRejectedError) console.log('shed:', err.code);
 * }
 * console.log(pool.active, pool.queued);
 * ```
 */
export function bulkhead(
  limitOrOptions: Dynamic<number> | BulkheadOptions,
  queue?: Dynamic<number>,
): BulkheadPolicy {
  if (typeof limitOrOptions === 'number' || typeof limitOrOptions === 'function') {
    return new BulkheadPolicy(
      queue === undefined ? { limit: limitOrOptions } : { limit: limitOrOptions, queue },
    );
  }
  return new BulkheadPolicy(checkObject('bulkhead', limitOrOptions) as unknown as BulkheadOptions);
}
