/**
 * The options of `sharedCircuitBreaker()`: every option of the core `circuitBreaker` (the same
 * schema, so the same names and errors) plus where and how the state is shared in Redis.
 */
import type { Redis } from 'ioredis';

import type { BreakerConfig, CircuitBreakerOptions } from '../core/breaker/options.js';
import { breakerConfig, breakerShape } from '../core/breaker/options.js';
import { s } from '../core/schema.js';
import { clientSchema } from './client-schema.js';

/** The subset of an ioredis client the shared breaker uses for commands. */
export type SharedBreakerClient = Pick<Redis, 'evalsha' | 'eval' | 'duplicate'>;
/** The subset of an ioredis client the shared breaker uses to listen (a connection in subscriber mode). */
export type SharedBreakerSubscriber = Pick<Redis, 'subscribe' | 'unsubscribe' | 'on' | 'off'>;

/** Fleet-wide failure counting (see `SharedCircuitBreakerOptions.aggregate`). */
export interface AggregateOptions {
  /** The window, ms. Default 10 000. */
  readonly windowMs?: number;
  /** Buckets in the window (a divisor of `windowMs`). Default 10. */
  readonly buckets?: number;
  /** Calls the window needs before it can open the breaker. Default 20. */
  readonly minSamples?: number;
  /** Failure ratio in (0, 1] that opens it. Default 0.5. */
  readonly failureRatio?: number;
  /** How often an instance sends its counts, ms. Default 100. */
  readonly flushMs?: number;
}

/** Options of `sharedCircuitBreaker()`: those of `circuitBreaker()` (name required) and the Redis ones. */
export interface SharedCircuitBreakerOptions extends Omit<CircuitBreakerOptions, 'name'> {
  /** An ioredis client for commands, owned by the caller. */
  readonly client: SharedBreakerClient;
  /**
   * A connection for SUBSCRIBE (may be shared by several breakers), owned by the caller. Default:
   * `client.duplicate()`, owned (and closed by `close()`) by the breaker.
   */
  readonly subscriber?: SharedBreakerSubscriber;
  /** The breaker's fleet-wide name: breakers with the same name (and prefix) share one state. */
  readonly name: string;
  /** Prefix of the keys and channel. Default `'bulwark:cb:'`. */
  readonly prefix?: string;
  /** Longest wait for Redis, in ms, before this instance decides alone. Default 50. */
  readonly timeoutMs?: number;
  /** How long a probe's lease lasts, in ms (a holder that dies frees it after this). Default 10 000. */
  readonly probeLeaseMs?: number;
  /**
   * Count failures fleet-wide, in Redis time buckets, instead of on each instance: every instance
   * adds its outcomes to a ring of `buckets` buckets covering `windowMs` (one script per
   * `flushMs`, not per call), and the script that adds them opens the breaker for everyone when
   * the window holds at least `minSamples` calls with a failure ratio of at least `failureRatio`.
   * While Redis fails, each instance counts locally with `breaker` again. Default: absent (local).
   */
  readonly aggregate?: AggregateOptions;
}

/** Parsed Redis settings of a shared breaker. @internal */
export interface SharedBreakerConfig {
  readonly breaker: BreakerConfig;
  readonly client: SharedBreakerClient;
  readonly subscriber: SharedBreakerSubscriber | undefined;
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly leaseMs: number;
  readonly aggregate: {
    readonly bucketMs: number;
    readonly buckets: number;
    readonly minSamples: number;
    readonly failureRatio: number;
    readonly flushMs: number;
  } | null;
}

const redisClient = clientSchema<SharedBreakerClient>(['evalsha']);

const subscriber = clientSchema<SharedBreakerSubscriber>(['subscribe'], 'an ioredis connection');

const aggregateSchema = s.object({
  windowMs: s.optional(s.int({ min: 1 }), 10_000),
  buckets: s.optional(s.int({ min: 1 }), 10),
  minSamples: s.optional(s.int({ min: 1 }), 20),
  failureRatio: s.optional(s.ratio(), 0.5),
  flushMs: s.optional(s.duration({ positive: true }), 100),
});

const schema = s.object({
  ...breakerShape,
  name: s.string(),
  client: redisClient,
  subscriber: s.optional(subscriber),
  prefix: s.optional(s.string(), 'bulwark:cb:'),
  timeoutMs: s.optional(s.duration({ positive: true }), 50),
  probeLeaseMs: s.optional(s.int({ min: 1 }), 10_000),
  aggregate: s.optional(aggregateSchema),
});

const PATH = 'sharedCircuitBreaker';

/** Validates the options of `sharedCircuitBreaker()` (throws `ConfigError`). @internal */
export function parseSharedBreakerOptions(options: unknown): SharedBreakerConfig {
  const o = schema.parse(options, PATH);
  const a = o.aggregate;
  if (a !== undefined && (a.windowMs % a.buckets !== 0 || a.windowMs / a.buckets < 1))
    s.fail(`${PATH}.aggregate.buckets`, `a divisor of windowMs (${a.windowMs})`, a.buckets);
  return {
    breaker: breakerConfig(o, o.name),
    client: o.client,
    subscriber: o.subscriber,
    prefix: o.prefix ?? 'bulwark:cb:',
    timeoutMs: o.timeoutMs ?? 50,
    leaseMs: o.probeLeaseMs ?? 10_000,
    aggregate:
      a === undefined
        ? null
        : {
            bucketMs: a.windowMs / a.buckets,
            buckets: a.buckets,
            minSamples: a.minSamples,
            failureRatio: a.failureRatio,
            flushMs: a.flushMs,
          },
  };
}
