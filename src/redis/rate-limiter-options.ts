/**
 * The options of `redisRateLimiter()`, validated through `src/core/schema.ts`, and what the limiter
 * reports to the telemetry spine (its descriptor).
 */
import type { Cluster, Redis } from 'ioredis';

import { registrySchema } from '../core/breaker/options.js';
import type { Clock } from '../core/clock.js';
import type { ComponentDescriptor } from '../core/component.js';
import { ConfigError } from '../core/errors.js';
import { clockOf } from '../core/policy.js';
import type { Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { RateLimiter, type RateLimitSpec, rateLimiter } from '../limits/rate-limiter.js';
import { clientSchema } from './client-schema.js';

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
  /**
   * While Redis is failing, calls are decided at once without it, and one call per this many ms
   * tries Redis again (waiting up to `timeoutMs`); its success ends the fallback. Default 100.
   */
  readonly probeIntervalMs?: number;
  /** Most calls decided by one EVALSHA; more in the same tick go in further scripts. Default 128. */
  readonly maxBatch?: number;
  /** Clock for the timeouts and probes (tests pass a fake clock). Default: the system clock. */
  readonly clock?: Clock;
  /** The in-memory limiter used while Redis fails. Default: `rateLimiter` of the same limits scaled by `share`. */
  readonly insurance?: {
    /** An in-memory limiter of your own (then `share` must be absent). */
    readonly limiter?: RateLimiter;
    /** This instance's share of each limit, in (0, 1] (e.g. 1 / number of instances). Default 1. */
    readonly share?: number;
  };
  /** What a call gets when Redis fails: `'insurance'` (default), `'allow'` or `'deny'`. */
  readonly onRedisError?: 'insurance' | 'allow' | 'deny';
  /** Name in events and snapshots. Default `'redisRateLimiter'`. */
  readonly name?: string;
  /** The registry the limiter joins at creation. */
  readonly registry?: Registry;
  /** Tests only: the time (ms) to pass to the script instead of the server's `TIME`. @internal */
  readonly _now?: () => number;
}

const PATH = 'redisRateLimiter';

/** `limits`: checked by the in-memory limiter's own rules, reported under this path. */
const limitsSchema = s.custom<RateLimitSpec[]>('an array of 1 to 16 limits', (v, path) => {
  if (!Array.isArray(v) || v.length === 0 || v.length > 16)
    return s.fail(path, 'an array of 1 to 16 limits', v);
  try {
    rateLimiter({ limits: v as RateLimitSpec[] });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const option = error.option.replace(/^rateLimiter\.limits/, path);
    throw new ConfigError(option, error.rule, error.value, undefined, {
      code: error.code,
      suggestion: error.suggestion,
    });
  }
  (v as RateLimitSpec[]).forEach((l, i) => {
    if (l.algorithm === 'sliding-window-log')
      s.fail(
        `${path}[${i}].algorithm`,
        'token-bucket, gcra, fixed-window or sliding-window-counter',
        l.algorithm,
      );
  });
  return v as RateLimitSpec[];
});

const schema = s.object({
  client: clientSchema<RedisClientLike>(['evalsha', 'eval']),
  limits: limitsSchema,
  prefix: s.optional(
    s.string({ pattern: /^[^{}]+$/, patternRule: 'a prefix without { or } (keys carry their own hash tag)' }),
    'bulwark:rl:',
  ),
  timeoutMs: s.optional(s.duration({ positive: true }), 50),
  probeIntervalMs: s.optional(s.duration(), 100),
  maxBatch: s.optional(s.int({ min: 1 }), 128),
  clock: s.optional(s.custom<Clock>('a Clock', (v, path) => clockOf(v as Clock, path))),
  insurance: s.optional(
    s.object({
      limiter: s.optional(
        s.custom<RateLimiter>('a rateLimiter()', (v, path) =>
          v instanceof RateLimiter ? v : s.fail(path, 'a rateLimiter()', v),
        ),
      ),
      share: s.optional(s.ratio()),
    }),
  ),
  onRedisError: s.optional(s.oneOf(['insurance', 'allow', 'deny'] as const), 'insurance'),
  name: s.optional(s.string(), 'redisRateLimiter'),
  registry: s.optional(registrySchema),
  _now: s.optional(s.fn<() => number>()),
});

/** Validates the options of `redisRateLimiter()` (throws `ConfigError`). @internal */
export function parseRedisRateLimiterOptions(options: unknown) {
  const o = schema.parse(options, PATH);
  if (o.insurance?.limiter !== undefined && o.insurance.share !== undefined)
    s.fail(`${PATH}.insurance.share`, 'absent when limiter is given', o.insurance.share);
  return o;
}

// Deliberate repetition: a descriptor literal (the same keys in every component; the values differ in meaning).
/** The descriptor of `redisRateLimiter` components. */
export const REDIS_RATE_LIMITER_DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'redisRateLimiter',
  help: 'A rate limiter whose state lives in Redis, with an in-memory insurance limiter',
  category: 'limiter',
  states: Object.freeze(['ok', 'failing']),
  gauges: Object.freeze({
    failing: '1 while Redis fails and calls are decided without it, else 0',
    queued: 'Calls waiting for the current batch to be sent',
  }),
  counters: Object.freeze({
    redisDecisions: 'Calls decided by Redis',
    fallbackDecisions: 'Calls decided without Redis (the insurance, or onRedisError)',
    rejections: 'Calls refused (by Redis or the fallback)',
    redisErrors: 'Batches that failed or timed out in Redis',
    fallbacks: 'Times Redis started failing',
  }),
});
