/**
 * Every public constructor of the circuit breakers and bulwark/redis refuses a bad option with the
 * one ConfigError: the dotted path, the value, the rule, and "did you mean" for a misspelled key.
 * No Redis is needed: options are checked before any command is sent.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, circuitBreaker } from '../src/index.js';
import {
  redisBulkhead,
  redisCacheStore,
  redisRateLimiter,
  redisSemaphore,
  sharedCircuitBreaker,
} from '../src/redis/index.js';

const fn = () => Promise.resolve(null);
/** Enough of an ioredis client for every constructor (never called here). */
const client = { evalsha: fn, eval: fn, zrem: fn, get: fn, set: fn, del: fn, duplicate: fn };
const limits = [{ algorithm: 'gcra', rate: 10, periodMs: 1_000 }];
const semaphore = redisSemaphore({ client: client as never, name: 'db', limit: 2, leaseMs: 3_000 });

type Row = readonly [
  what: string,
  make: (bad: Record<string, unknown>) => unknown,
  bad: Record<string, unknown>,
  option: string,
  code: 'INVALID_OPTION' | 'UNKNOWN_OPTION',
  suggestion?: string | undefined,
];

const cb = (o: Record<string, unknown>) => circuitBreaker(o as never);
const scb = (o: Record<string, unknown>) => sharedCircuitBreaker({ client, name: 'dep', ...o } as never);
const rrl = (o: Record<string, unknown>) => redisRateLimiter({ client, limits, ...o } as never);
const sem = (o: Record<string, unknown>) => redisSemaphore({ client, name: 'db', limit: 2, ...o } as never);
const rbh = (o: Record<string, unknown>) => redisBulkhead({ semaphore, ...o } as never);
const rcs = (o: Record<string, unknown>) => redisCacheStore({ client, ...o } as never);

const rows: Row[] = [
  // circuitBreaker
  [
    'circuitBreaker: wrong type',
    cb,
    { halfOpenAfterMs: '5s' },
    'circuitBreaker.halfOpenAfterMs',
    'INVALID_OPTION',
  ],
  [
    'circuitBreaker: out of range',
    cb,
    { halfOpen: { probes: 0 } },
    'circuitBreaker.halfOpen.probes',
    'INVALID_OPTION',
  ],
  [
    'circuitBreaker: nested ratio out of range',
    cb,
    { breaker: { kind: 'time', failureRatio: 2 } },
    'circuitBreaker.breaker.failureRatio',
    'INVALID_OPTION',
  ],
  ['circuitBreaker: unknown key', cb, { color: 'red' }, 'circuitBreaker.color', 'UNKNOWN_OPTION'],
  [
    'circuitBreaker: old name',
    cb,
    { halfOpenAfter: 1_000 },
    'circuitBreaker.halfOpenAfter',
    'UNKNOWN_OPTION',
    'halfOpenAfterMs',
  ],
  [
    'circuitBreaker: misspelled nested key',
    cb,
    { breaker: { kind: 'count', minSampels: 5 } },
    'circuitBreaker.breaker.minSampels',
    'UNKNOWN_OPTION',
    'minSamples',
  ],
  // sharedCircuitBreaker
  ['sharedCircuitBreaker: wrong type', scb, { client: 42 }, 'sharedCircuitBreaker.client', 'INVALID_OPTION'],
  [
    'sharedCircuitBreaker: missing name',
    scb,
    { name: undefined },
    'sharedCircuitBreaker.name',
    'INVALID_OPTION',
  ],
  [
    'sharedCircuitBreaker: out of range',
    scb,
    { timeoutMs: 0 },
    'sharedCircuitBreaker.timeoutMs',
    'INVALID_OPTION',
  ],
  [
    'sharedCircuitBreaker: core option out of range',
    scb,
    { breaker: { kind: 'consecutive', threshold: 0 } },
    'sharedCircuitBreaker.breaker.threshold',
    'INVALID_OPTION',
  ],
  [
    'sharedCircuitBreaker: aggregate buckets not a divisor',
    scb,
    { aggregate: { windowMs: 1_000, buckets: 3 } },
    'sharedCircuitBreaker.aggregate.buckets',
    'INVALID_OPTION',
  ],
  ['sharedCircuitBreaker: unknown key', scb, { zone: 'a' }, 'sharedCircuitBreaker.zone', 'UNKNOWN_OPTION'],
  [
    'sharedCircuitBreaker: old name',
    scb,
    { aggregate: { minimumCalls: 5 } },
    'sharedCircuitBreaker.aggregate.minimumCalls',
    'UNKNOWN_OPTION',
  ],
  [
    'sharedCircuitBreaker: misspelled key',
    scb,
    { probeLeaseMS: 5 },
    'sharedCircuitBreaker.probeLeaseMS',
    'UNKNOWN_OPTION',
    'probeLeaseMs',
  ],
  // redisRateLimiter
  ['redisRateLimiter: wrong type', rrl, { limits: 'gcra' }, 'redisRateLimiter.limits', 'INVALID_OPTION'],
  [
    'redisRateLimiter: limit out of range',
    rrl,
    { limits: [{ algorithm: 'gcra', rate: -1, periodMs: 1_000 }] },
    'redisRateLimiter.limits[0].rate',
    'INVALID_OPTION',
  ],
  ['redisRateLimiter: out of range', rrl, { maxBatch: 0 }, 'redisRateLimiter.maxBatch', 'INVALID_OPTION'],
  [
    'redisRateLimiter: bad enum',
    rrl,
    { onRedisError: 'ignore' },
    'redisRateLimiter.onRedisError',
    'INVALID_OPTION',
  ],
  ['redisRateLimiter: bad prefix', rrl, { prefix: 'a{b}' }, 'redisRateLimiter.prefix', 'INVALID_OPTION'],
  ['redisRateLimiter: unknown key', rrl, { pool: 3 }, 'redisRateLimiter.pool', 'UNKNOWN_OPTION'],
  [
    'redisRateLimiter: misspelled nested key',
    rrl,
    { insurance: { shares: 0.5 } },
    'redisRateLimiter.insurance.shares',
    'UNKNOWN_OPTION',
    'share',
  ],
  // redisSemaphore
  ['redisSemaphore: wrong type', sem, { limit: '3' }, 'redisSemaphore.limit', 'INVALID_OPTION'],
  ['redisSemaphore: out of range', sem, { leaseMs: 0 }, 'redisSemaphore.leaseMs', 'INVALID_OPTION'],
  ['redisSemaphore: unknown key', sem, { ttl: 5 }, 'redisSemaphore.ttl', 'UNKNOWN_OPTION'],
  [
    'redisSemaphore: misspelled key',
    sem,
    { leasMs: 5 },
    'redisSemaphore.leasMs',
    'UNKNOWN_OPTION',
    'leaseMs',
  ],
  // redisBulkhead
  ['redisBulkhead: wrong type', rbh, { semaphore: {} }, 'redisBulkhead.semaphore', 'INVALID_OPTION'],
  [
    'redisBulkhead: out of range',
    rbh,
    { renewEveryMs: 5_000 },
    'redisBulkhead.renewEveryMs',
    'INVALID_OPTION',
  ],
  ['redisBulkhead: unknown key', rbh, { queue: 5 }, 'redisBulkhead.queue', 'UNKNOWN_OPTION'],
  [
    'redisBulkhead: misspelled key',
    rbh,
    { renewEveryMS: 5 },
    'redisBulkhead.renewEveryMS',
    'UNKNOWN_OPTION',
    'renewEveryMs',
  ],
  // redisCacheStore
  ['redisCacheStore: wrong type', rcs, { serialize: 'json' }, 'redisCacheStore.serialize', 'INVALID_OPTION'],
  ['redisCacheStore: empty prefix', rcs, { prefix: '' }, 'redisCacheStore.prefix', 'INVALID_OPTION'],
  ['redisCacheStore: unknown key', rcs, { ttlMs: 5 }, 'redisCacheStore.ttlMs', 'UNKNOWN_OPTION'],
  [
    'redisCacheStore: misspelled key',
    rcs,
    { prefx: 'a' },
    'redisCacheStore.prefx',
    'UNKNOWN_OPTION',
    'prefix',
  ],
];

describe('bad options of the breakers and bulwark/redis throw one ConfigError', () => {
  it.each(rows.map((r) => [r[0], r] as const))('%s', (_what, row) => {
    const [, make, bad, option, code, suggestion] = row;
    let error: unknown;
    try {
      make(bad);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect({ option: e.option, code: e.code }).toEqual({ option, code });
    expect(e.rule.length).toBeGreaterThan(0);
    expect(e.message).toContain(option);
    if (suggestion !== undefined) {
      expect(e.suggestion).toBe(suggestion);
      expect(e.message).toContain(`did you mean ${option.slice(0, option.lastIndexOf('.'))}.${suggestion}?`);
    }
  });

  it('options that are not an object are refused by every constructor', () => {
    for (const make of [
      circuitBreaker,
      sharedCircuitBreaker,
      redisRateLimiter,
      redisSemaphore,
      redisBulkhead,
    ]) {
      expect(() => make(5 as never)).toThrow(ConfigError);
    }
    expect(() => redisCacheStore(null as never)).toThrow(ConfigError);
  });
});
