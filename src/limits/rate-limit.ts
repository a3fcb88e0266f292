/**
 * The rate-limit policy: admits a call when its key's limits have room, else rejects it with
 * `RateLimitedError` at once, or (with `maxWaitMs`, over an in-memory `rateLimiter()`) lets it
 * wait in a bounded FIFO queue per key until its turn, for at most `maxWaitMs`. One timer per
 * waiting key (for its oldest waiter), cleared when the key's queue empties.
 *
 * ONE policy for every limiter: an in-memory `rateLimiter()` (decided synchronously) or anything
 * with `consume(key, cost)` returning a decision or a promise of one (the Redis limiter of
 * `bulwark/redis`). A call does not wait for an asynchronous limiter (a wait would be a round
 * trip per try): `maxWaitMs` needs an in-memory limiter.
 */

import type { Clock, TimerHandle } from '../core/clock.js';
import { type ComponentOperation, defineDescriptor, type Figures } from '../core/component.js';
import type { Context } from '../core/context.js';
import { type ExecuteOptions, ExecutionContext, type Operation, type Priority } from '../core/context.js';
import { BulwarkError, ConfigError, RejectedError } from '../core/errors.js';
import { type EventBase, PolicyEmitter } from '../core/events.js';
import {
  checkFunction,
  checkKeys,
  checkObject,
  checkPriorities,
  checkString,
  type Dynamic,
  DynamicNumber,
  optNumber,
  rules,
} from '../core/options.js';
import { clockOf, type Link, PolicyBase, start } from '../core/policy.js';
import type { Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { settingsOperation } from '../core/settings-operation.js';
import { type Waiter, WaitQueue } from '../core/wait-queue.js';
import { type RateLimitDecision, RateLimiter, type RateLimitSpec } from './rate-limiter.js';

/**
 * A rate limit refused the call (`reason`: `rateLimited` — no room and no waiting allowed —,
 * `queueFull` or `maxWait` — the wait would pass `maxWaitMs`). Retry after `retryAfterMs`.
 *
 * @example
 * ```ts
 * import { RateLimitedError } from 'bulwark';
 * try { await limited.execute(work); } catch (err) {
 *   if (err instanceof RateLimitedError) console.log(`retry in ${err.retryAfterMs} ms`);
 * }
 * ```
 */
export class RateLimitedError extends RejectedError {
  /** The policy's name. */
  readonly limiter: string;
  /** The key that was limited. */
  readonly key: string;
  /** Why: no room and no waiting allowed, the queue was full, or the wait would exceed maxWaitMs. */
  declare readonly reason: 'rateLimited' | 'queueFull' | 'maxWait';

  constructor(limiter: string, key: string, retryAfterMs: number, reason: RateLimitedError['reason']) {
    const wait = Number.isFinite(retryAfterMs)
      ? `retry in ${Math.ceil(retryAfterMs)} ms`
      : 'its cost never fits';
    super(
      'RATE_LIMITED',
      reason,
      retryAfterMs,
      `Rate limit ${limiter} refused the call for key ${key} (${reason}); ${wait}`,
    );
    this.limiter = limiter;
    this.key = key;
  }
}

/**
 * Any limiter the policy can spend from: `rateLimiter()` (in memory), `redisRateLimiter()`
 * (bulwark/redis), or your own.
 */
export interface RateLimiterLike {
  consume(key: string, cost: number): RateLimitDecision | PromiseLike<RateLimitDecision>;
}

/** Events of the rate-limit policy. */
export type RateLimitEvent =
  | (EventBase & {
      readonly kind: 'rateLimit';
      readonly event: 'reject';
      readonly key: string;
      readonly reason: 'rateLimited' | 'queueFull' | 'maxWait';
      readonly retryAfterMs: number;
    })
  | (EventBase & {
      readonly kind: 'rateLimit';
      readonly event: 'queued' | 'dequeued' | 'bypass';
      readonly key: string;
      readonly queued: number;
    });

declare module '../core/events.js' {
  interface PolicyEventMap {
    rateLimit: RateLimitEvent;
  }
}

/** Options of `rateLimit()`. */
export interface RateLimitOptions {
  /**
   * The limiter to spend from (may be shared): a `rateLimiter()`, a `redisRateLimiter()`, or
   * anything with `consume(key, cost)`. Or give `limits` (and `maxKeys`, `clock`) instead.
   */
  readonly limiter?: RateLimiter | RateLimiterLike;
  /** The limits, to make an in-memory limiter of this policy's own (see `rateLimiter()`). */
  readonly limits?: readonly RateLimitSpec[];
  /** With `limits`: most keys kept. Default 10 000. */
  readonly maxKeys?: number;
  /** The key of a call. Default: one key for every call (`'default'`). */
  readonly key?: (ctx: Context) => string;
  /** Units a call costs. Default 1. May be a function of the context. */
  readonly cost?: Dynamic<number>;
  /** Longest wait for room, in ms (in-memory limiters only). Default 0: reject at once. */
  readonly maxWaitMs?: number;
  /** Calls allowed to wait at once (across keys) when `maxWaitMs > 0`. Default 1 000. */
  readonly queue?: number;
  /** Priorities that are never limited (counted and emitted, never silent). */
  readonly bypass?: readonly Priority[];
  /** Name in events, errors and snapshots. Default `rateLimit`. */
  readonly name?: string;
  /** With `limits`: source of time. Default `systemClock`. (A given `limiter` has its own.) */
  readonly clock?: Clock;
  /** A registry to join at creation. */
  readonly registry?: Registry;
}

const positive = s.number({ above: 0, max: 1e9 });
const LIMIT_SHAPES = {
  'token-bucket': s.object({ algorithm: s.string(), capacity: positive, refillRate: positive }),
  gcra: s.object({
    algorithm: s.string(),
    rate: positive,
    periodMs: positive,
    burst: s.optional(s.int({ min: 0, max: 1e9 })),
  }),
  'fixed-window': s.object({ algorithm: s.string(), limit: positive, windowMs: positive }),
} as const;
/** One limit, as the control plane takes it (the same rules as `rateLimiter({ limits })`), by its algorithm. */
const LIMIT_SCHEMA = s.custom<RateLimitSpec>(
  'a limit: token-bucket {capacity, refillRate}, gcra {rate, periodMs, burst}, or fixed-window, sliding-window-counter, sliding-window-log {limit, windowMs}',
  (v, path) => {
    const a = typeof v === 'object' && v !== null ? (v as { algorithm?: unknown }).algorithm : undefined;
    const kinds = ['token-bucket', 'gcra', 'fixed-window', 'sliding-window-counter', 'sliding-window-log'];
    if (typeof a !== 'string' || !kinds.includes(a))
      return s.fail(`${path}.algorithm`, `one of ${kinds.join(', ')}`, a);
    const shape = a === 'token-bucket' || a === 'gcra' ? LIMIT_SHAPES[a] : LIMIT_SHAPES['fixed-window'];
    return shape.parse(v, path) as unknown as RateLimitSpec;
  },
  {
    type: 'object',
    required: ['algorithm'],
    properties: {
      algorithm: {
        enum: ['token-bucket', 'gcra', 'fixed-window', 'sliding-window-counter', 'sliding-window-log'],
      },
    },
  },
);

/** The waiters of one key, and the timer for its oldest. */
class KeyQueue extends WaitQueue {
  timer: TimerHandle | null = null;
}

const DEFAULT_KEY = 'default';

// The kind's descriptor (`descriptor` finds it by kind).
defineDescriptor({
  kind: 'rateLimit',
  help: "Admits a call when its key's limits have room; else rejects it, or lets it wait up to maxWaitMs.",
  category: 'limiter',
  states: ['ready'],
  gauges: { queued: 'Calls waiting for room now.' },
  counters: {
    admissions: 'Calls admitted by the limits.',
    rejections: 'Calls refused (rateLimited, queueFull, maxWait).',
    bypasses: 'Calls of a bypass priority run without spending.',
  },
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/**
 * A rate-limit policy. See `rateLimit()`.
 */
export class RateLimitPolicy extends PolicyBase<never, RateLimitEvent> {
  readonly kind = 'rateLimit';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<RateLimitEvent>();
  /** The limiter this policy spends from. */
  readonly limiter: RateLimiter | RateLimiterLike;
  /** The limiter when it is in memory (decided synchronously, may wait), else null. */
  private readonly memory: RateLimiter | null;
  private readonly keyOf: ((ctx: Context) => string) | undefined;
  private readonly cost: DynamicNumber;
  private readonly maxWait: number;
  private readonly queueCap: number;
  private readonly bypass: readonly string[];
  private readonly clock: Clock | null;
  private readonly queues = new Map<string, KeyQueue>();
  private readonly onCancel = (w: Waiter, wasHead: boolean) => {
    this.waiting--;
    if (wasHead) this.reschedule(w.queue as KeyQueue);
  };
  private waiting = 0;
  private allowedCount = 0;
  private rejectedCount = 0;
  private bypassedCount = 0;

  constructor(options: RateLimitOptions) {
    super();
    const o = checkObject('rateLimit', options);
    checkKeys('rateLimit', o, [
      'limiter',
      'limits',
      'maxKeys',
      'key',
      'cost',
      'maxWaitMs',
      'queue',
      'bypass',
      'name',
      'clock',
      'registry',
    ]);
    if (o.limiter !== undefined) {
      if (typeof (o.limiter as RateLimiterLike | null)?.consume !== 'function')
        throw new ConfigError(
          'rateLimit.limiter',
          'a limiter with consume(key, cost), e.g. rateLimiter() or redisRateLimiter()',
          o.limiter,
        );
      for (const k of ['limits', 'maxKeys', 'clock'] as const) {
        if (o[k] !== undefined) throw new ConfigError(`rateLimit.${k}`, 'absent when limiter is given', o[k]);
      }
      this.limiter = o.limiter as RateLimiterLike;
    } else {
      if (o.limits === undefined)
        throw new ConfigError('rateLimit.limits', 'a non-empty array of limits (or give limiter)', undefined);
      const lo: Record<string, unknown> = { limits: o.limits };
      if (o.maxKeys !== undefined) lo.maxKeys = o.maxKeys;
      if (o.clock !== undefined) lo.clock = clockOf(o.clock as Clock, 'rateLimit.clock');
      this.limiter = new RateLimiter(lo as unknown as ConstructorParameters<typeof RateLimiter>[0]);
    }
    this.memory = this.limiter instanceof RateLimiter ? this.limiter : null;
    this.clock = this.memory === null ? null : this.memory.clock;
    this.keyOf = checkFunction<(ctx: Context) => string>('rateLimit.key', o.key);
    this.cost = DynamicNumber.of('rateLimit.cost', o.cost, rules.finite(0), 1);
    this.maxWait = optNumber('rateLimit.maxWaitMs', o.maxWaitMs, rules.finite(0), 0);
    if (this.maxWait > 0 && this.memory === null)
      throw new ConfigError(
        'rateLimit.maxWaitMs',
        '0 with a limiter that is not in memory (rateLimiter())',
        o.maxWaitMs,
      );
    this.queueCap = optNumber('rateLimit.queue', o.queue, rules.intOrInfinity(0), 1000);
    this.bypass = checkPriorities('rateLimit.bypass', o.bypass);
    this.name = checkString('rateLimit.name', o.name, 'rateLimit');
    this._join('rateLimit', o.registry);
  }

  protected override _figures(): Figures {
    return {
      state: 'ready',
      gauges: { queued: this.waiting },
      counters: {
        admissions: this.allowedCount,
        rejections: this.rejectedCount,
        bypasses: this.bypassedCount,
      },
      ...(this.memory === null ? {} : { details: { limits: this.memory.limits } }),
    };
  }

  /**
   * Replaces the limits of this policy's in-memory limiter at run time (see
   * `RateLimiter.setLimits`): the next call is decided by them, and calls waiting for room are
   * admitted at once if they now fit. A limiter that is not in memory (Redis) cannot be changed
   * here (BulwarkError `NOT_IN_MEMORY`).
   *
   * @example
   * ```ts
   * import { rateLimit } from 'bulwark';
   * const api = rateLimit({ limits: [{ algorithm: 'gcra', rate: 10, periodMs: 1_000, burst: 5 }] });
   * api.setLimits([{ algorithm: 'gcra', rate: 50, periodMs: 1_000, burst: 20 }]);
   * ```
   */
  setLimits(limits: readonly RateLimitSpec[]): void {
    if (this.memory === null)
      throw new BulwarkError(
        'NOT_IN_MEMORY',
        `rateLimit "${this.name}" spends from a limiter that is not in memory; change that limiter's own configuration`,
      );
    this.memory.setLimits(limits);
    for (const q of [...this.queues.values()]) this.reschedule(q);
  }

  /** The control plane's action `setLimits` (in-memory limiters only). */
  operations(): readonly ComponentOperation[] {
    if (this.memory === null) return [];
    const memory = this.memory;
    return [
      settingsOperation<{ limits: RateLimitSpec[] }>({
        name: 'setLimits',
        summary: 'Replace the rate limits (rates, bursts, windows); waiting calls that now fit go at once',
        input: s.object({ limits: s.array(LIMIT_SCHEMA, { min: 1, max: 8 }) }),
        read: () => ({ limits: memory.limits }),
        apply: (i) => this.setLimits(i.limits),
      }),
    ];
  }

  /** Calls waiting for room now. */
  get queued(): number {
    return this.waiting;
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
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    let key = DEFAULT_KEY;
    let cost: number;
    try {
      if (this.keyOf !== undefined) {
        key = this.keyOf(ctx);
        if (typeof key !== 'string') throw new ConfigError('rateLimit.key(ctx)', 'a string', key);
      }
      cost = this.cost.get(ctx);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.bypass.length !== 0 && this.bypass.includes(ctx.priority)) {
      this.bypassedCount++;
      this.emit('bypass', ctx, key);
      return start(ctx, next);
    }
    const memory = this.memory;
    if (memory === null) return this.consumeFrom(ctx, next, key, cost);
    // A newcomer never overtakes calls already waiting for the same key.
    const q = this.waiting === 0 ? undefined : this.queues.get(key);
    const wait = q === undefined ? memory._take(key, cost) : Number.MIN_VALUE;
    if (wait < 0) {
      this.allowedCount++;
      return start(ctx, next);
    }
    if (this.maxWait === 0 || wait > this.maxWait)
      return Promise.reject(this.rejection(ctx, key, wait, 'rateLimited'));
    if (this.waiting >= this.queueCap) {
      // Behind other waiters of this key, `wait` is a placeholder: report the limiter's own estimate.
      const retry = q === undefined ? wait : Math.max(memory.peek(key, cost).retryAfterMs, Number.MIN_VALUE);
      return Promise.reject(this.rejection(ctx, key, retry, 'queueFull'));
    }
    return this.enqueue(ctx, key, cost, q, wait).then(() =>
      // Aborted between its admission and now: the units stay spent, the function does not run.
      ctx._isAborted ? Promise.reject(ctx._abortReason) : start(ctx, next),
    );
  }

  /** A limiter that is not in memory: one decision (sync or async), no waiting. */
  private consumeFrom(ctx: ExecutionContext, next: Link | null, key: string, cost: number): Promise<unknown> {
    let d: RateLimitDecision | PromiseLike<RateLimitDecision>;
    try {
      d = this.limiter.consume(key, cost);
    } catch (error) {
      return Promise.reject(error);
    }
    const decide = (decision: RateLimitDecision): Promise<unknown> => {
      if (ctx._isAborted) return Promise.reject(ctx._abortReason);
      if (decision.allowed) {
        this.allowedCount++;
        return start(ctx, next);
      }
      return Promise.reject(this.rejection(ctx, key, decision.retryAfterMs, 'rateLimited'));
    };
    return typeof (d as PromiseLike<RateLimitDecision>).then === 'function'
      ? Promise.resolve(d).then(decide)
      : decide(d as RateLimitDecision);
  }

  private rejection(
    ctx: ExecutionContext,
    key: string,
    retryAfterMs: number,
    reason: RateLimitedError['reason'],
  ): RateLimitedError {
    this.rejectedCount++;
    if (this.emitter.active) {
      this.emitter.emit({
        kind: 'rateLimit',
        event: 'reject',
        name: this.name,
        priority: ctx.priority,
        operation: ctx.name,
        attempt: ctx.attempt,
        key,
        reason,
        retryAfterMs,
      });
    }
    return new RateLimitedError(this.name, key, retryAfterMs, reason);
  }

  private emit(event: 'queued' | 'dequeued' | 'bypass', ctx: ExecutionContext, key: string): void {
    if (!this.emitter.wantsPerCall(event)) return;
    this.emitter.emit({
      kind: 'rateLimit',
      event,
      name: this.name,
      priority: ctx.priority,
      operation: ctx.name,
      attempt: ctx.attempt,
      key,
      queued: this.waiting,
    });
  }

  private enqueue(
    ctx: ExecutionContext,
    key: string,
    cost: number,
    existing: KeyQueue | undefined,
    wait: number,
  ): Promise<void> {
    let q = existing;
    if (q === undefined) {
      q = new KeyQueue(null, this.onCancel, key);
      this.queues.set(key, q);
    }
    const clock = this.clock as Clock;
    const p = q.wait(ctx, cost, clock.now() + this.maxWait, Number.POSITIVE_INFINITY);
    this.waiting++;
    this.emit('queued', ctx, key);
    if (q.size === 1) this.schedule(q, wait);
    return p;
  }

  private schedule(q: KeyQueue, ms: number): void {
    const clock = this.clock as Clock;
    if (q.timer !== null) clock.clearTimeout(q.timer);
    q.timer = clock.setTimeout(
      () => {
        q.timer = null;
        this.reschedule(q);
      },
      Math.max(0, Math.ceil(ms)),
    );
  }

  /** Admits the key's waiters that fit now, rejects those whose wait would pass their deadline, and arms the timer for the next. */
  private reschedule(q: KeyQueue): void {
    const clock = this.clock as Clock;
    const memory = this.memory as RateLimiter;
    if (q.timer !== null) {
      clock.clearTimeout(q.timer);
      q.timer = null;
    }
    for (let w = q.head; w !== null; w = q.head) {
      const wait = memory._take(q.key, w.weight);
      if (wait < 0) {
        q.remove(w);
        this.waiting--;
        this.allowedCount++;
        this.emit('dequeued', w.ctx, q.key);
        w.resolve();
        continue;
      }
      if (clock.now() + wait > w.deadline) {
        q.remove(w);
        this.waiting--;
        w.reject(this.rejection(w.ctx, q.key, wait, 'maxWait'));
        continue;
      }
      this.schedule(q, wait);
      return;
    }
    this.queues.delete(q.key);
  }
}

/**
 * Makes a rate-limit policy.
 *
 * @example
 * ```ts
 * import { rateLimit } from 'bulwark';
 * const perUser = rateLimit({
 *   limits: [{ algorithm: 'token-bucket', capacity: 10, refillRate: 5 }],
 *   key: (ctx) => String(ctx.props.user),
 *   maxWaitMs: 500,
 * });
 * await perUser.execute(() => 'ok', { props: { user: 'u1' } });
 * ```
 */
export function rateLimit(options: RateLimitOptions): RateLimitPolicy {
  return new RateLimitPolicy(options);
}
