/**
 * Bulkhead: at most `limit` executions at once; up to `queue` more wait in FIFO order (for
 * at most `queueTimeoutMs`); the rest are rejected at once with `BulkheadRejectedError`.
 * A slot is handed straight from a finishing call to the next queued one, so a queued call
 * is never overtaken by a newcomer of the same limit.
 */

import type { Clock } from './clock.js';
import { type ComponentOperation, defineDescriptor, type Figures } from './component.js';
import { type ExecuteOptions, ExecutionContext, type Operation, type Priority } from './context.js';
import { DeadlineQueues } from './deadline-queue.js';
import { BulkheadRejectedError, BulwarkError, ConfigError } from './errors.js';
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
import { s } from './schema.js';
import { finiteOrNull, settingsOperation } from './settings-operation.js';
import { type Waiter, WaitQueue } from './wait-queue.js';

/** The settings of a bulkhead an operator may change at run time (`setLimits`). */
export interface BulkheadSettings {
  /** Executions allowed at once (an integer >= 1). */
  readonly limit?: number;
  /** Executions allowed to wait (an integer >= 0, or Infinity). */
  readonly queue?: number;
  /** Longest wait in the queue, ms (>= 0, or Infinity). */
  readonly queueTimeoutMs?: number;
}

/** Options of `bulkhead()`. */
export interface BulkheadOptions extends CommonOptions {
  /** Executions allowed at once (>= 1). May be a function of the context (a per-tier limit). */
  limit: Dynamic<number>;
  /** Executions allowed to wait for a slot (>= 0). Default 0. May be a function of the context. */
  queue?: Dynamic<number>;
  /** Longest wait in the queue, in ms. Default Infinity. May be a function of the context. */
  queueTimeoutMs?: Dynamic<number>;
  /** Priorities that run at once without taking a slot (counted and emitted, never silent). */
  bypass?: readonly Priority[];
}

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'bulkhead',
  help: 'At most `limit` executions at once; up to `queue` more wait in FIFO order.',
  category: 'bulkhead',
  states: ['ready', 'full'],
  gauges: {
    inFlight: 'Executions running now (holding a slot).',
    queued: 'Executions waiting for a slot now.',
    bypassing: 'Executions of a bypass priority running now without a slot.',
    limit: 'The concurrency limit (0 when it is a function of the context).',
  },
  counters: {
    rejections: 'Executions refused (full, or waited past queueTimeoutMs).',
    bypasses: 'Executions of a bypass priority run without a slot.',
  },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/**
 * A bulkhead policy. See `bulkhead()`.
 */
export class BulkheadPolicy extends PolicyBase<never, BulkheadEvent> {
  readonly kind = 'bulkhead';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<BulkheadEvent>();
  private limit: DynamicNumber;
  /** The limit when it is a constant (read without a call on the hot path), else 0. */
  private fixedLimit: number;
  private queue: DynamicNumber;
  private queueTimeout: DynamicNumber;
  private readonly bypass: readonly string[];
  private readonly clock: Clock;
  private readonly waiters: WaitQueue;
  private running = 0;
  private bypassing = 0;
  private bypassed = 0;
  private rejected = 0;

  // Deliberate repetition: every policy constructor opens the same way (super(), then checkKeys with its
  // own option names) — the shape of option validation, not shared logic.
  constructor(options: BulkheadOptions) {
    super();
    checkKeys('bulkhead', options as unknown as Record<string, unknown>, [
      'limit',
      'queue',
      'queueTimeoutMs',
      'bypass',
      'name',
      'clock',
      'registry',
    ]);
    if (options.limit === undefined) throw new ConfigError('bulkhead.limit', 'an integer >= 1', undefined);
    this.limit = DynamicNumber.of('bulkhead.limit', options.limit, rules.int(1), 1);
    this.fixedLimit = this.limit.fn === null ? this.limit.constant : 0;
    this.queue = DynamicNumber.of('bulkhead.queue', options.queue, rules.intOrInfinity(0), 0);
    this.queueTimeout = DynamicNumber.of(
      'bulkhead.queueTimeoutMs',
      options.queueTimeoutMs,
      rules.atLeast(0),
      Number.POSITIVE_INFINITY,
    );
    this.bypass = checkPriorities('bulkhead.bypass', options.bypass);
    this.name = checkString('bulkhead.name', options.name, 'bulkhead');
    this.clock = clockOf(options.clock, 'bulkhead.clock');
    const timers = new DeadlineQueues<Waiter>(this.clock, (w) =>
      this.waiters.expire(w, () => this.rejection(w.ctx, 'queueTimeout')),
    );
    this.waiters = new WaitQueue(timers);
    this._join('bulkhead', options.registry);
  }

  /** Figures now: `inFlight`, `queued`, `bypassing`, `limit`; counters `rejections`, `bypasses`. */
  protected override _figures(): Figures {
    return {
      state: this.fixedLimit !== 0 && this.running >= this.fixedLimit ? 'full' : 'ready',
      gauges: {
        inFlight: this.running,
        queued: this.waiters.size,
        bypassing: this.bypassing,
        limit: this.fixedLimit,
      },
      counters: { rejections: this.rejected, bypasses: this.bypassed },
      details: this.settings(),
    };
  }

  /** The settings now (constants; a function of the context shows as null). */
  settings(): Record<string, unknown> {
    const at = (d: DynamicNumber) => (d.fn === null ? finiteOrNull(d.constant) : null);
    return { limit: at(this.limit), queue: at(this.queue), queueTimeoutMs: at(this.queueTimeout) };
  }

  /**
   * Changes the limit, the queue or the queue timeout at run time. The next call sees the new
   * values; a larger limit admits queued calls at once (oldest first); a smaller one lets the calls
   * running finish (no new call starts until they are below it). Calls already queued keep their
   * place (a smaller `queue` only refuses newcomers) and the timeout they queued with. A setting
   * given as a function of the context cannot be replaced (BulwarkError `DYNAMIC_SETTING`).
   *
   * @example
   * ```ts
   * import { bulkhead } from 'bulwark';
   * const pool = bulkhead({ limit: 4, queue: 10 });
   * pool.setLimits({ limit: 8, queueTimeoutMs: 500 });
   * console.log(pool.snapshot().gauges.limit); // 8
   * ```
   */
  setLimits(settings: BulkheadSettings): void {
    const o = checkObject('bulkhead.setLimits', settings);
    checkKeys('bulkhead.setLimits', o, ['limit', 'queue', 'queueTimeoutMs']);
    const next = (
      path: string,
      cur: DynamicNumber,
      value: unknown,
      rule: Parameters<typeof DynamicNumber.of>[2],
    ) => {
      if (value === undefined) return cur;
      if (cur.fn !== null)
        throw new BulwarkError(
          'DYNAMIC_SETTING',
          `bulkhead "${this.name}": ${path.split('.').pop()} is a function of the context; change what it reads instead`,
        );
      return DynamicNumber.of(path, value, rule, cur.constant);
    };
    // Checked in full before anything changes: one bad value changes nothing.
    const limit = next('bulkhead.setLimits.limit', this.limit, o.limit, rules.int(1));
    const queue = next('bulkhead.setLimits.queue', this.queue, o.queue, rules.intOrInfinity(0));
    const timeout = next(
      'bulkhead.setLimits.queueTimeoutMs',
      this.queueTimeout,
      o.queueTimeoutMs,
      rules.atLeast(0),
    );
    this.limit = limit;
    this.fixedLimit = limit.fn === null ? limit.constant : 0;
    this.queue = queue;
    this.queueTimeout = timeout;
    let w = this.waiters.head;
    while (w !== null && this.fixedLimit !== 0 && this.running < this.fixedLimit) {
      const after = w.next;
      this.handOver(w);
      w = after;
    }
  }

  /** The control plane's action: `setLimits` (limit, queue, queueTimeoutMs). */
  operations(): readonly ComponentOperation[] {
    return [
      settingsOperation<BulkheadSettings>({
        name: 'setLimits',
        summary: 'Change the concurrency limit, the queue length or the queue timeout (next call)',
        input: s.object({
          limit: s.optional(s.int({ min: 1, max: 1_000_000 })),
          queue: s.optional(s.int({ min: 0, max: 1_000_000 })),
          queueTimeoutMs: s.optional(s.duration({ max: 86_400_000 })),
        }),
        read: () => this.settings(),
        apply: (i) => this.setLimits(i),
      }),
    ];
  }

  /** Executions running now (bypassing ones not included). */
  get inFlight(): number {
    return this.running;
  }

  /** Executions waiting for a slot now. */
  get queued(): number {
    return this.waiters.size;
  }

  // Deliberate repetition: each policy class defines its own copy of `execute` (and opens `_run` the
  // same way) so the call into `_run` stays monomorphic, a measured saving on the hot path (NOTES.md).
  /** Runs `fn` under this policy. */
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
      queueTimeout = this.waiters.size < queue ? this.queueTimeout.get(ctx) : 0;
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.waiters.size < queue) return this.runQueued(ctx, next, limit, queueTimeout);
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
    const wait = this.waiters.wait(ctx, limit, 0, queueTimeout);
    this.emit('queued', ctx);
    await wait; // resolves with the slot already taken for us
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
      this.waiters.size,
    );
  }

  private emit(
    event: 'queued' | 'dequeued' | 'bypass' | 'reject',
    ctx: ExecutionContext,
    reason: 'full' | 'queueTimeout' = 'full',
  ): void {
    if (!this.emitter.wants(event)) return;
    const base = {
      kind: 'bulkhead',
      name: this.name,
      priority: ctx.priority,
      operation: ctx.name,
      attempt: ctx.attempt,
      inFlight: this.running,
      queued: this.waiters.size,
    } as const;
    this.emitter.emit(event === 'reject' ? { ...base, event, reason } : { ...base, event });
  }

  private release(): void {
    this.running--;
    let w = this.waiters.head;
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
      if (this.running < w.weight) this.handOver(w);
      w = next;
    }
  }

  /** Gives a free slot to a queued call. */
  private handOver(w: Waiter): void {
    this.waiters.remove(w);
    this.running++;
    this.emit('dequeued', w.ctx);
    w.resolve();
  }
}

/**
 * Makes a bulkhead: `bulkhead({ limit: 10, queue: 100, queueTimeoutMs: 1_000 })`, or the short
 * form `bulkhead(10, 100)`.
 *
 * @example
 * ```ts
 * import { bulkhead, BulkheadRejectedError } from 'bulwark';
 * const pool = bulkhead({ limit: 10, queue: 100, queueTimeoutMs: 2_000, bypass: ['critical'] });
 * try {
 *   await pool.execute(() => fetch('https://example.org'));
 * } catch (err) {
 *   if (err instanceof BulkheadRejectedError) console.log('shed:', err.code);
 * }
 * console.log(pool.snapshot().gauges); // { inFlight: 1, queued: 0, bypassing: 0, limit: 10 }
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
