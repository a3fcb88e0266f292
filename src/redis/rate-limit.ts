/**
 * The rate-limit policy over a Redis limiter: admits a call when its key's limits have room, else
 * rejects it with `RateLimitedError` (no waiting queue: a wait would be a Redis round trip per try).
 */
import type { Context } from '../core/context.js';
import { type ExecuteOptions, ExecutionContext, type Operation, type Priority } from '../core/context.js';
import { ConfigError } from '../core/errors.js';
import { PolicyEmitter } from '../core/events.js';
import {
  checkFunction,
  checkKeys,
  checkObject,
  checkPriorities,
  checkString,
  type Dynamic,
  DynamicNumber,
  rules,
} from '../core/options.js';
import { type Link, PolicyBase, start } from '../core/policy.js';
import { type RateLimitEvent, RateLimitedError } from '../limits/rate-limit.js';
import { RedisRateLimiter } from './rate-limiter.js';

/** Options of `redisRateLimit()`. */
export interface RedisRateLimitOptions {
  /** A limiter made by `redisRateLimiter()` (may be shared). */
  readonly limiter: RedisRateLimiter;
  /** The key of a call. Default: one key for every call (`'default'`). */
  readonly key?: (ctx: Context) => string;
  /** Units a call costs. Default 1. May be a function of the context. */
  readonly cost?: Dynamic<number>;
  /** Priorities that are never limited (counted and emitted, never silent). */
  readonly bypass?: readonly Priority[];
  /** Name in events and errors. Default `rateLimit`. */
  readonly name?: string;
}

/** A rate-limit policy over a Redis limiter. See `redisRateLimit()`. */
export class RedisRateLimitPolicy extends PolicyBase<never, RateLimitEvent> {
  readonly kind = 'rateLimit';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<RateLimitEvent>();
  /** The limiter this policy spends from. */
  readonly limiter: RedisRateLimiter;
  private readonly keyOf: ((ctx: Context) => string) | undefined;
  private readonly cost: DynamicNumber;
  private readonly bypass: readonly string[];
  private rejectedCount = 0;

  constructor(options: RedisRateLimitOptions) {
    super();
    const o = checkObject('redisRateLimit', options);
    checkKeys('redisRateLimit', o, ['limiter', 'key', 'cost', 'bypass', 'name']);
    if (!(o.limiter instanceof RedisRateLimiter))
      throw new ConfigError('redisRateLimit.limiter', 'a redisRateLimiter()', o.limiter);
    this.limiter = o.limiter;
    this.keyOf = checkFunction<(ctx: Context) => string>('redisRateLimit.key', o.key);
    this.cost = DynamicNumber.of('redisRateLimit.cost', o.cost, rules.finite(0), 1);
    this.bypass = checkPriorities('redisRateLimit.bypass', o.bypass);
    this.name = checkString('redisRateLimit.name', o.name, 'rateLimit');
  }

  /**
   * Counters of this policy (read by `bulwark/metrics` as `bulwark_ratelimit_rejected_total`).
   *
   * @example
   * ```ts nocheck
   * console.log(policy.stats.rejected); // calls refused so far
   * ```
   */
  get stats(): { readonly rejected: number } {
    return { rejected: this.rejectedCount };
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
    let key = 'default';
    let cost: number;
    try {
      if (this.keyOf !== undefined) {
        key = this.keyOf(ctx);
        if (typeof key !== 'string') throw new ConfigError('redisRateLimit.key(ctx)', 'a string', key);
      }
      cost = this.cost.get(ctx);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.bypass.length !== 0 && this.bypass.includes(ctx.priority)) {
      this.event(ctx, key, 'bypass', 0);
      return start(ctx, next);
    }
    return this.limiter.consume(key, cost).then((d) => {
      if (ctx._isAborted) return Promise.reject(ctx._abortReason);
      if (d.allowed) return start(ctx, next);
      this.rejectedCount++;
      this.event(ctx, key, 'reject', d.retryAfterMs);
      return Promise.reject(new RateLimitedError(this.name, key, d.retryAfterMs, 'limited'));
    });
  }

  private event(ctx: ExecutionContext, key: string, event: 'reject' | 'bypass', retryAfterMs: number): void {
    if (!this.emitter.active) return;
    const base = {
      kind: 'rateLimit',
      name: this.name,
      priority: ctx.priority,
      operation: ctx.name,
      attempt: ctx.attempt,
      key,
    } as const;
    this.emitter.emit(
      event === 'reject'
        ? { ...base, event, reason: 'limited', retryAfterMs }
        : { ...base, event, queued: 0 },
    );
  }
}

/**
 * Makes a rate-limit policy over a Redis limiter; it rejects with `RateLimitedError`.
 *
 * @example
 * ```ts
 * import { redisRateLimit, redisRateLimiter } from 'bulwark/redis';
 * const policy = redisRateLimit({ limiter, key: (ctx) => String(ctx.props.user) });
 * ```
 */
export function redisRateLimit(options: RedisRateLimitOptions): RedisRateLimitPolicy {
  return new RedisRateLimitPolicy(options);
}
