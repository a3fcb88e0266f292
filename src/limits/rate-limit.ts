/**
 * The rate-limit policy: admits a call when its key's limits have room, else rejects it with
 * `RateLimitedError` at once, or (with `maxWait`) lets it wait in a bounded FIFO queue per key
 * until its turn, for at most `maxWait` ms. One timer per waiting key (for its oldest waiter),
 * cleared when the key's queue empties.
 */

import type { Clock, TimerHandle } from '../core/clock.js';
import type { Context } from '../core/context.js';
import { type ExecuteOptions, ExecutionContext, type Operation, type Priority } from '../core/context.js';
import { BulwarkError, ConfigError } from '../core/errors.js';
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
import { type Link, PolicyBase, start } from '../core/policy.js';
import { RateLimiter, type RateLimitSpec } from './rate-limiter.js';

/**
 * A rate limit refused the call. Retry after `retryAfterMs`.
 *
 * @example
 * ```ts
 * import { RateLimitedError } from 'bulwark';
 * try { await limited.execute(work); } catch (err) {
 *   if (err instanceof RateLimitedError) console.log(`retry in ${err.retryAfterMs} ms`);
 * }
 * ```
 */
export class RateLimitedError extends BulwarkError {
  /** Ms until a call of the same cost could be admitted (Infinity if its cost never fits). */
  readonly retryAfterMs: number;
  /** The policy's name. */
  readonly limiter: string;
  /** The key that was limited. */
  readonly key: string;
  /** Why: no room and no waiting allowed, the queue was full, or the wait would exceed maxWait. */
  readonly reason: 'limited' | 'queueFull' | 'maxWait';

  constructor(limiter: string, key: string, retryAfterMs: number, reason: RateLimitedError['reason']) {
    const wait = Number.isFinite(retryAfterMs)
      ? `retry in ${Math.ceil(retryAfterMs)} ms`
      : 'its cost never fits';
    super('RATE_LIMITED', `Rate limit ${limiter} refused the call for key ${key} (${reason}); ${wait}`);
    this.retryAfterMs = retryAfterMs;
    this.limiter = limiter;
    this.key = key;
    this.reason = reason;
  }
}

/** Events of the rate-limit policy. */
export type RateLimitEvent =
  | (EventBase & {
      readonly kind: 'rateLimit';
      readonly event: 'reject';
      readonly key: string;
      readonly reason: 'limited' | 'queueFull' | 'maxWait';
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
  /** A limiter made by `rateLimiter()` (may be shared). Or give `limits` (and `maxKeys`, `clock`) instead. */
  readonly limiter?: RateLimiter;
  /** The limits, to make a limiter of this policy's own (see `rateLimiter()`). */
  readonly limits?: readonly RateLimitSpec[];
  /** With `limits`: most keys kept. Default 10 000. */
  readonly maxKeys?: number;
  /** The key of a call. Default: one key for every call (`'default'`). */
  readonly key?: (ctx: Context) => string;
  /** Units a call costs. Default 1. May be a function of the context. */
  readonly cost?: Dynamic<number>;
  /** Longest wait for room, in ms. Default 0: reject at once. */
  readonly maxWait?: number;
  /** Calls allowed to wait at once (across keys) when `maxWait > 0`. Default 1 000. */
  readonly queue?: number;
  /** Priorities that are never limited (counted and emitted, never silent). */
  readonly bypass?: readonly Priority[];
  /** Name in events and errors. Default `rateLimit`. */
  readonly name?: string;
  /** With `limits`: source of time. Default `systemClock`. (A given `limiter` has its own.) */
  readonly clock?: Clock;
}

class Waiter {
  next: Waiter | null = null;
  prev: Waiter | null = null;
  onAbort: (() => void) | null = null;
  constructor(
    readonly ctx: ExecutionContext,
    readonly q: KeyQueue,
    readonly cost: number,
    readonly deadline: number,
    readonly resolve: () => void,
    readonly reject: (e: unknown) => void,
  ) {}
}

class KeyQueue {
  head: Waiter | null = null;
  tail: Waiter | null = null;
  timer: TimerHandle | null = null;
  constructor(readonly key: string) {}
}

const DEFAULT_KEY = 'default';

/**
 * A rate-limit policy. See `rateLimit()`.
 */
export class RateLimitPolicy extends PolicyBase<never, RateLimitEvent> {
  readonly kind = 'rateLimit';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<RateLimitEvent>();
  /** The limiter this policy spends from. */
  readonly limiter: RateLimiter;
  private readonly keyOf: ((ctx: Context) => string) | undefined;
  private readonly cost: DynamicNumber;
  private readonly maxWait: number;
  private readonly queueCap: number;
  private readonly bypass: readonly string[];
  private readonly clock: Clock;
  private readonly queues = new Map<string, KeyQueue>();
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
      'maxWait',
      'queue',
      'bypass',
      'name',
      'clock',
    ]);
    if (o.limiter !== undefined) {
      if (!(o.limiter instanceof RateLimiter))
        throw new ConfigError('rateLimit.limiter', 'a rateLimiter()', o.limiter);
      for (const k of ['limits', 'maxKeys', 'clock'] as const) {
        if (o[k] !== undefined) throw new ConfigError(`rateLimit.${k}`, 'absent when limiter is given', o[k]);
      }
      this.limiter = o.limiter;
    } else {
      if (o.limits === undefined)
        throw new ConfigError('rateLimit.limits', 'a non-empty array of limits (or give limiter)', undefined);
      const lo: Record<string, unknown> = { limits: o.limits };
      if (o.maxKeys !== undefined) lo.maxKeys = o.maxKeys;
      if (o.clock !== undefined) lo.clock = o.clock;
      this.limiter = new RateLimiter(lo as unknown as ConstructorParameters<typeof RateLimiter>[0]);
    }
    this.clock = this.limiter.clock;
    this.keyOf = checkFunction<(ctx: Context) => string>('rateLimit.key', o.key);
    this.cost = DynamicNumber.of('rateLimit.cost', o.cost, rules.finite(0), 1);
    this.maxWait = optNumber('rateLimit.maxWait', o.maxWait, rules.finite(0), 0);
    this.queueCap = optNumber('rateLimit.queue', o.queue, rules.intOrInfinity(0), 1000);
    this.bypass = checkPriorities('rateLimit.bypass', o.bypass);
    this.name = checkString('rateLimit.name', o.name, 'rateLimit');
  }

  /** Calls waiting for room now. */
  get queued(): number {
    return this.waiting;
  }

  /** Counters since creation (`allowed`, `rejected`, `bypassed`) and calls waiting now (`queued`). */
  get stats(): {
    readonly allowed: number;
    readonly rejected: number;
    readonly bypassed: number;
    readonly queued: number;
  } {
    return {
      allowed: this.allowedCount,
      rejected: this.rejectedCount,
      bypassed: this.bypassedCount,
      queued: this.waiting,
    };
  }

  /** Runs `fn` under this policy. (Defined per class to keep the call into `_run` monomorphic.) */
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
    // A newcomer never overtakes calls already waiting for the same key.
    const q = this.waiting === 0 ? undefined : this.queues.get(key);
    const wait = q === undefined ? this.limiter._take(key, cost) : Number.MIN_VALUE;
    if (wait < 0) {
      this.allowedCount++;
      return start(ctx, next);
    }
    if (this.maxWait === 0 || wait > this.maxWait)
      return Promise.reject(this.rejection(ctx, key, wait, 'limited'));
    if (this.waiting >= this.queueCap) {
      // Behind other waiters of this key, `wait` is a placeholder: report the limiter's own estimate.
      const retry =
        q === undefined ? wait : Math.max(this.limiter.peek(key, cost).retryAfterMs, Number.MIN_VALUE);
      return Promise.reject(this.rejection(ctx, key, retry, 'queueFull'));
    }
    return this.enqueue(ctx, key, cost, q, wait).then(() =>
      // Aborted between its admission and now: the units stay spent, the function does not run.
      ctx._isAborted ? Promise.reject(ctx._abortReason) : start(ctx, next),
    );
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
    if (!this.emitter.active) return;
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
    return new Promise<void>((resolve, reject) => {
      let q = existing;
      if (q === undefined) {
        q = new KeyQueue(key);
        this.queues.set(key, q);
      }
      const w = new Waiter(ctx, q, cost, this.clock.now() + this.maxWait, resolve, reject);
      w.prev = q.tail;
      if (q.tail === null) q.head = w;
      else q.tail.next = w;
      q.tail = w;
      this.waiting++;
      if (ctx._canAbort) {
        const onAbort = () => {
          const wasHead = q.head === w;
          this.unlink(w);
          reject(ctx._abortReason);
          if (wasHead) this.reschedule(q);
        };
        w.onAbort = onAbort;
        ctx._watch(onAbort);
      }
      this.emit('queued', ctx, key);
      if (q.head === w) this.schedule(q, wait);
    });
  }

  private unlink(w: Waiter): void {
    const q = w.q;
    const { prev, next } = w;
    if (prev === null) q.head = next;
    else prev.next = next;
    if (next === null) q.tail = prev;
    else next.prev = prev;
    w.prev = null;
    w.next = null;
    this.waiting--;
    if (w.onAbort !== null) {
      w.ctx._unwatch(w.onAbort);
      w.onAbort = null;
    }
  }

  private schedule(q: KeyQueue, ms: number): void {
    if (q.timer !== null) this.clock.clearTimeout(q.timer);
    q.timer = this.clock.setTimeout(
      () => {
        q.timer = null;
        this.reschedule(q);
      },
      Math.max(0, Math.ceil(ms)),
    );
  }

  /** Admits the key's waiters that fit now, rejects those whose wait would pass their deadline, and arms the timer for the next. */
  private reschedule(q: KeyQueue): void {
    if (q.timer !== null) {
      this.clock.clearTimeout(q.timer);
      q.timer = null;
    }
    for (let w = q.head; w !== null; w = q.head) {
      const wait = this.limiter._take(q.key, w.cost);
      if (wait < 0) {
        this.unlink(w);
        this.allowedCount++;
        this.emit('dequeued', w.ctx, q.key);
        w.resolve();
        continue;
      }
      const now = this.clock.now();
      if (now + wait > w.deadline) {
        this.unlink(w);
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
 *   maxWait: 500,
 * });
 * await perUser.execute(() => 'ok', { props: { user: 'u1' } });
 * ```
 */
export function rateLimit(options: RateLimitOptions): RateLimitPolicy {
  return new RateLimitPolicy(options);
}
