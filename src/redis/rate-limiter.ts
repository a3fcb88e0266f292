/**
 * A rate limiter whose state lives in Redis, shared by every instance that uses the same Redis and
 * prefix. One decision = one round trip: one Lua script (EVALSHA) checks every limit of the call
 * and charges them only if all admit it, with the time taken from the Redis server. When Redis
 * fails or does not answer within `timeoutMs`, that call is decided by an in-memory insurance
 * limiter (or allowed / denied, per `onRedisError`); the next call tries Redis again.
 */
import type { Cluster, Redis } from 'ioredis';

import { ConfigError } from '../core/errors.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter } from '../core/events.js';
import { checkEnum, checkKeys, checkObject, checkString, optNumber, rules } from '../core/options.js';
import {
  type RateLimitDecision,
  RateLimiter,
  type RateLimitSpec,
  rateLimiter,
} from '../limits/rate-limiter.js';
import { RATE_LIMIT_SCRIPT, RATE_LIMIT_SHA } from './script.js';

/** Events of a Redis rate limiter. */
export type RedisRateLimiterEvent =
  | (EventBase & {
      readonly policy: 'redisRateLimiter';
      /** Redis failed or timed out: calls are decided by the insurance (or `onRedisError`). */
      readonly event: 'fallback';
      readonly key: string;
      /** The Redis error, or a `RedisTimeoutError`. */
      readonly error: unknown;
    })
  | (EventBase & {
      readonly policy: 'redisRateLimiter';
      /** Redis answered again after a fallback. */
      readonly event: 'recovered';
      readonly key: string;
    });

declare module '../core/events.js' {
  interface PolicyEventMap {
    redisRateLimiter: RedisRateLimiterEvent;
  }
}

/** Redis did not answer within `timeoutMs`. */
export class RedisTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`Redis did not answer within ${timeoutMs} ms`);
    this.name = 'RedisTimeoutError';
  }
}

/** The subset of an ioredis client (or Cluster) the limiter uses. */
export type RedisClientLike = Pick<Redis | Cluster, 'evalsha' | 'eval'>;

/** Options of `redisRateLimiter()`. */
export interface RedisRateLimiterOptions {
  /** An ioredis client (`new Redis(...)`) or Cluster, owned by the caller. */
  readonly client: RedisClientLike;
  /** The limits, all enforced together (token bucket, GCRA, fixed window, sliding-window counter). */
  readonly limits: readonly RateLimitSpec[];
  /** Prefix of every key. Default `'bulwark:rl:'`. */
  readonly prefix?: string;
  /** Longest wait for Redis, in ms, before the call is decided without it. Default 50. */
  readonly timeoutMs?: number;
  /** The in-memory limiter used while Redis fails. Default: `rateLimiter` of the same limits scaled by `share`. */
  readonly insurance?: {
    /** An in-memory limiter of your own (then `share` must be absent). */
    readonly limiter?: RateLimiter;
    /** This instance's share of each limit, in (0, 1] (e.g. 1 / number of instances). Default 1. */
    readonly share?: number;
  };
  /** What a call gets when Redis fails: `'insurance'` (default), `'allow'` or `'deny'`. */
  readonly onRedisError?: 'insurance' | 'allow' | 'deny';
  /** Name in events. Default `'redisRateLimiter'`. */
  readonly name?: string;
  /** Tests only: the time (ms) to pass to the script instead of the server's `TIME`. @internal */
  readonly _now?: () => number;
}

class Decision implements RateLimitDecision {
  constructor(
    readonly allowed: boolean,
    readonly remaining: number,
    readonly retryAfterMs: number,
    readonly resetMs: number,
    readonly limit: number,
    readonly windowMs: number,
  ) {}
}

const KINDS = {
  'token-bucket': 1,
  gcra: 2,
  'fixed-window': 3,
  'sliding-window-counter': 4,
} as const;

function num(s: unknown): number {
  return s === 'inf' ? Number.POSITIVE_INFINITY : Number(s);
}

function scaled(spec: RateLimitSpec, share: number): RateLimitSpec {
  if (share === 1) return spec;
  switch (spec.algorithm) {
    case 'token-bucket':
      return { ...spec, capacity: spec.capacity * share, refillRate: spec.refillRate * share };
    case 'gcra':
      return {
        ...spec,
        rate: spec.rate * share,
        burst: Math.max(0, Math.floor(((spec.burst ?? 0) + 1) * share) - 1),
      };
    default:
      return { ...spec, limit: spec.limit * share };
  }
}

/** A Redis rate limiter. See `redisRateLimiter()`. */
export class RedisRateLimiter {
  /** @internal */
  readonly emitter = new PolicyEmitter<RedisRateLimiterEvent>();
  readonly name: string;
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly onRedisError: 'insurance' | 'allow' | 'deny';
  /** The in-memory limiter deciding while Redis fails. */
  readonly insurance: RateLimiter;
  private readonly client: RedisClientLike;
  /** The limits as the in-memory limiter sees them (for `limit`/`windowMs` of a decision). */
  private readonly shape: RateLimiter;
  private readonly args: string[];
  private readonly nowFn: (() => number) | undefined;
  private failing = false;
  private redisCount = 0;
  private fallbackCount = 0;

  constructor(options: RedisRateLimiterOptions) {
    const o = checkObject('redisRateLimiter', options);
    checkKeys('redisRateLimiter', o, [
      'client',
      'limits',
      'prefix',
      'timeoutMs',
      'insurance',
      'onRedisError',
      'name',
      '_now',
    ]);
    const client = o.client as RedisClientLike | undefined;
    if (
      client === null ||
      typeof client !== 'object' ||
      typeof client.evalsha !== 'function' ||
      typeof client.eval !== 'function'
    ) {
      throw new ConfigError('redisRateLimiter.client', 'an ioredis client', client);
    }
    this.client = client;
    if (!Array.isArray(o.limits) || o.limits.length === 0) {
      throw new ConfigError('redisRateLimiter.limits', 'a non-empty array of limits', o.limits);
    }
    const limits = o.limits as RateLimitSpec[];
    // Validates every limit with the in-memory limiter's own checks.
    this.shape = rateLimiter({ limits });
    limits.forEach((l, i) => {
      if (l.algorithm === 'sliding-window-log') {
        throw new ConfigError(
          `redisRateLimiter.limits[${i}].algorithm`,
          'token-bucket, gcra, fixed-window or sliding-window-counter',
          l.algorithm,
        );
      }
    });
    this.args = [];
    for (const l of limits) {
      switch (l.algorithm) {
        case 'token-bucket':
          this.args.push(String(KINDS[l.algorithm]), String(l.capacity), String(l.refillRate / 1000), '');
          break;
        case 'gcra': {
          const interval = l.periodMs / l.rate;
          this.args.push('2', String(interval), String(interval * ((l.burst ?? 0) + 1)), '');
          break;
        }
        default:
          this.args.push(
            String(KINDS[l.algorithm as 'fixed-window']),
            String(l.limit),
            String(l.windowMs),
            '',
          );
      }
    }
    this.prefix = checkString('redisRateLimiter.prefix', o.prefix, 'bulwark:rl:');
    this.timeoutMs = optNumber('redisRateLimiter.timeoutMs', o.timeoutMs, rules.positive, 50);
    this.onRedisError = checkEnum(
      'redisRateLimiter.onRedisError',
      o.onRedisError,
      ['insurance', 'allow', 'deny'] as const,
      'insurance',
    );
    this.name = checkString('redisRateLimiter.name', o.name, 'redisRateLimiter');
    const ins = checkObject('redisRateLimiter.insurance', o.insurance);
    checkKeys('redisRateLimiter.insurance', ins, ['limiter', 'share']);
    if (ins.limiter !== undefined) {
      if (!(ins.limiter instanceof RateLimiter))
        throw new ConfigError('redisRateLimiter.insurance.limiter', 'a rateLimiter()', ins.limiter);
      if (ins.share !== undefined)
        throw new ConfigError('redisRateLimiter.insurance.share', 'absent when limiter is given', ins.share);
      this.insurance = ins.limiter;
    } else {
      const share = optNumber('redisRateLimiter.insurance.share', ins.share, rules.ratio, 1);
      this.insurance = rateLimiter({ limits: limits.map((l) => scaled(l, share)) });
    }
    if (o._now !== undefined && typeof o._now !== 'function')
      throw new ConfigError('redisRateLimiter._now', 'a function', o._now);
    this.nowFn = o._now as (() => number) | undefined;
  }

  /** Counters since creation: calls decided by Redis, and by the fallback; whether Redis is failing now. */
  get stats(): { readonly redis: number; readonly fallback: number; readonly failing: boolean } {
    return { redis: this.redisCount, fallback: this.fallbackCount, failing: this.failing };
  }

  /** Registers a listener for `fallback`/`recovered` events. */
  onEvent(listener: Listener<RedisRateLimiterEvent>): Disposer {
    return this.emitter.on(listener);
  }

  /**
   * Spends `cost` units (default 1) for `key` in every limit if all of them admit it, else spends
   * nothing. Never rejects: a Redis failure is decided by the fallback.
   */
  consume(key: string, cost = 1): Promise<RateLimitDecision> {
    if (typeof key !== 'string')
      return Promise.reject(new ConfigError('redisRateLimiter.consume(key)', 'a string', key));
    if (typeof cost !== 'number' || !Number.isFinite(cost) || cost < 0) {
      return Promise.reject(new ConfigError('redisRateLimiter.consume(cost)', 'a finite number >= 0', cost));
    }
    const n = this.shape.algorithms.length;
    const keys = new Array<string>(n);
    const base = `${this.prefix}{${key}}:`;
    for (let i = 0; i < n; i++) keys[i] = base + i;
    const argv = [String(cost), this.nowFn === undefined ? '' : String(this.nowFn()), ...this.args];
    return new Promise<RateLimitDecision>((resolve) => {
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        resolve(this.fail(key, cost, new RedisTimeoutError(this.timeoutMs)));
      }, this.timeoutMs);
      this.run(keys, argv).then(
        (reply) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          let d: RateLimitDecision;
          try {
            d = this.decision(reply);
          } catch (error) {
            resolve(this.fail(key, cost, error));
            return;
          }
          this.redisCount++;
          if (this.failing) {
            this.failing = false;
            this.emit('recovered', key, undefined);
          }
          resolve(d);
        },
        (error: unknown) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve(this.fail(key, cost, error));
        },
      );
    });
  }

  /** EVALSHA; on NOSCRIPT (script cache flushed or never loaded), EVAL, which also loads it. */
  private run(keys: string[], argv: string[]): Promise<unknown> {
    const c = this.client as Redis;
    return c.evalsha(RATE_LIMIT_SHA, keys.length, ...keys, ...argv).catch((error: unknown) => {
      if (error instanceof Error && error.message.startsWith('NOSCRIPT'))
        return c.eval(RATE_LIMIT_SCRIPT, keys.length, ...keys, ...argv);
      throw error;
    });
  }

  private decision(reply: unknown): RateLimitDecision {
    if (!Array.isArray(reply) || reply.length !== 5)
      throw new Error('unexpected reply from the rate-limit script');
    const allowed = reply[0] === 1;
    const alg = this.shape.algorithms[Number(reply[1])];
    if (alg === undefined) throw new Error('unexpected reply from the rate-limit script');
    const retry = num(reply[3]);
    return new Decision(
      allowed,
      num(reply[2]),
      allowed ? 0 : retry > 0 ? retry : Number.MIN_VALUE,
      num(reply[4]),
      alg.limit,
      alg.windowMs,
    );
  }

  private fail(key: string, cost: number, error: unknown): RateLimitDecision {
    this.fallbackCount++;
    if (!this.failing) {
      this.failing = true;
      this.emit('fallback', key, error);
    }
    const first = this.shape.algorithms[0]!;
    switch (this.onRedisError) {
      case 'allow':
        return new Decision(true, first.limit, 0, 0, first.limit, first.windowMs);
      case 'deny':
        return new Decision(false, 0, first.windowMs, first.windowMs, first.limit, first.windowMs);
      default:
        return this.insurance.consume(key, cost);
    }
  }

  private emit(event: 'fallback' | 'recovered', key: string, error: unknown): void {
    if (!this.emitter.active) return;
    const base = {
      policy: 'redisRateLimiter',
      name: this.name,
      priority: 'normal',
      operation: undefined,
      attempt: 1,
      key,
    } as const;
    this.emitter.emit(event === 'fallback' ? { ...base, event, error } : { ...base, event });
  }
}

/**
 * Makes a rate limiter whose state lives in Redis (shared by every instance), with an in-memory
 * insurance limiter for the calls Redis cannot decide in time.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { redisRateLimiter } from 'bulwark/redis';
 * const limiter = redisRateLimiter({
 *   client: new Redis(),
 *   limits: [{ algorithm: 'gcra', rate: 100, periodMs: 1_000, burst: 20 }],
 *   insurance: { share: 1 / 10 }, // ten instances
 * });
 * const d = await limiter.consume('user-42');
 * ```
 */
export function redisRateLimiter(options: RedisRateLimiterOptions): RedisRateLimiter {
  return new RedisRateLimiter(options);
}
