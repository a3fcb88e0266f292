/**
 * One way to configure (docs/conventions.md): every public constructor of the core, load
 * control, latency and chaos gets bad options of four kinds — a wrong type, a value out of
 * range, an unknown key and a misspelled key — and each throws `ConfigError` naming the dotted
 * path (with "did you mean" for the misspelling).
 */

import {
  adaptiveConcurrency,
  adaptiveThrottle,
  adaptiveTimeout,
  backoff,
  bulkhead,
  cache,
  chaos,
  coalesce,
  fallback,
  hedge,
  loadShedder,
  memoryStore,
  pipeline,
  rateLimit,
  rateLimiter,
  retry,
  retryBudget,
  timeout,
} from 'bulwark';
import { describe, expect, it } from 'vitest';
import { configError } from './support/config-error.js';

type Options = Record<string, unknown>;

interface Row {
  /** The constructor, as it appears in the path of its errors. */
  readonly name: string;
  readonly make: (options: Options) => unknown;
  /** Valid options the bad ones are added to. */
  readonly base: Options;
  /** [key, value of the wrong type]. */
  readonly wrongType: readonly [string, unknown];
  /** [key, value out of range]. */
  readonly outOfRange: readonly [string, unknown];
  /** [misspelled key, the key it should suggest]. */
  readonly misspelled: readonly [string, string];
}

const limits = [{ algorithm: 'token-bucket', capacity: 10, refillRate: 5 }];
const key = () => 'k';

const rows: readonly Row[] = [
  {
    name: 'retry',
    make: (o) => retry(o),
    base: {},
    wrongType: ['maxAttempts', '3'],
    outOfRange: ['maxDurationMs', -1],
    misspelled: ['maxAttemps', 'maxAttempts'],
  },
  {
    name: 'timeout',
    make: (o) => timeout(o as never),
    base: { timeoutMs: 100 },
    wrongType: ['timeoutMs', '100'],
    outOfRange: ['timeoutMs', 0],
    misspelled: ['strategie', 'strategy'],
  },
  {
    name: 'bulkhead',
    make: (o) => bulkhead(o as never),
    base: { limit: 2 },
    wrongType: ['queue', 'many'],
    outOfRange: ['limit', 0],
    misspelled: ['queueTimeout', 'queueTimeoutMs'],
  },
  {
    name: 'fallback',
    make: (o) => fallback(0, o),
    base: {},
    wrongType: ['name', 7],
    outOfRange: ['name', ''],
    misspelled: ['handel', 'handle'],
  },
  {
    name: 'pipeline',
    make: (o) => pipeline(o, retry()),
    base: {},
    wrongType: ['timing', 'yes'],
    outOfRange: ['name', ''],
    misspelled: ['timming', 'timing'],
  },
  {
    name: 'backoff.constant',
    make: (o) => backoff.constant(o as never),
    base: { delayMs: 10 },
    wrongType: ['delayMs', '10'],
    outOfRange: ['delayMs', -1],
    misspelled: ['delay', 'delayMs'],
  },
  {
    name: 'backoff.linear',
    make: (o) => backoff.linear(o),
    base: {},
    wrongType: ['stepMs', '10'],
    outOfRange: ['initialMs', -1],
    misspelled: ['initial', 'initialMs'],
  },
  {
    name: 'backoff.exponential',
    make: (o) => backoff.exponential(o),
    base: {},
    wrongType: ['factor', '2'],
    outOfRange: ['factor', 0.5],
    misspelled: ['max', 'maxMs'],
  },
  {
    name: 'rateLimiter',
    make: (o) => rateLimiter(o as never),
    base: { limits },
    wrongType: ['maxKeys', '10'],
    outOfRange: ['maxKeys', 0],
    misspelled: ['maxKey', 'maxKeys'],
  },
  {
    name: 'rateLimit',
    make: (o) => rateLimit(o as never),
    base: { limits },
    wrongType: ['key', 'user'],
    outOfRange: ['maxWaitMs', -5],
    misspelled: ['maxWait', 'maxWaitMs'],
  },
  {
    name: 'retryBudget.ratio',
    make: (o) => retryBudget.ratio(o),
    base: {},
    wrongType: ['ratio', '0.2'],
    outOfRange: ['ratio', 2],
    misspelled: ['ration', 'ratio'],
  },
  {
    name: 'retryBudget.tokens',
    make: (o) => retryBudget.tokens(o),
    base: {},
    wrongType: ['capacity', '5'],
    outOfRange: ['retryCost', -1],
    misspelled: ['retryCosts', 'retryCost'],
  },
  {
    name: 'retryBudget.ratioTokens',
    make: (o) => retryBudget.ratioTokens(o),
    base: {},
    wrongType: ['capacity', '5'],
    outOfRange: ['ratio', 0],
    misspelled: ['inital', 'initial'],
  },
  {
    name: 'adaptiveConcurrency',
    make: (o) => adaptiveConcurrency(o),
    base: {},
    wrongType: ['initialLimit', '20'],
    outOfRange: ['queueTimeoutMs', -1],
    misspelled: ['queueTimeout', 'queueTimeoutMs'],
  },
  {
    name: 'adaptiveTimeout',
    make: (o) => adaptiveTimeout(o),
    base: {},
    wrongType: ['quantile', 'p99'],
    outOfRange: ['quantile', 1.5],
    misspelled: ['minSample', 'minSamples'],
  },
  {
    name: 'adaptiveThrottle',
    make: (o) => adaptiveThrottle(o),
    base: {},
    wrongType: ['k', 'two'],
    outOfRange: ['maxRejectionRatio', 2],
    misspelled: ['minSample', 'minSamples'],
  },
  {
    name: 'loadShedder',
    make: (o) => loadShedder(o),
    base: {},
    wrongType: ['capacity', '10'],
    outOfRange: ['capacity', 0],
    misspelled: ['capcity', 'capacity'],
  },
  {
    name: 'hedge',
    make: (o) => hedge(o as never),
    base: { delay: 10 },
    wrongType: ['maxHedges', '1'],
    outOfRange: ['maxHedges', 0],
    misspelled: ['maxHedge', 'maxHedges'],
  },
  {
    name: 'coalesce',
    make: (o) => coalesce(o as never),
    base: { key },
    wrongType: ['key', 'k'],
    outOfRange: ['name', ''],
    misspelled: ['nam', 'name'],
  },
  {
    name: 'cache',
    make: (o) => cache(o as never),
    base: { key, ttlMs: 1_000 },
    wrongType: ['ttlMs', '1s'],
    outOfRange: ['staleIfErrorMs', -1],
    misspelled: ['ttl', 'ttlMs'],
  },
  {
    name: 'memoryStore',
    make: (o) => memoryStore(o),
    base: {},
    wrongType: ['maxEntries', 'lots'],
    outOfRange: ['maxEntries', 0],
    misspelled: ['maxEntrie', 'maxEntries'],
  },
  {
    name: 'chaos.fault',
    make: (o) => chaos.fault(o as never),
    base: { error: new Error('x') },
    wrongType: ['rate', 'half'],
    outOfRange: ['rate', 2],
    misspelled: ['rat', 'rate'],
  },
  {
    name: 'chaos.latency',
    make: (o) => chaos.latency(o as never),
    base: { delayMs: 10 },
    wrongType: ['delayMs', '10'],
    outOfRange: ['delayMs', -1],
    misspelled: ['dealyMs', 'delayMs'],
  },
  {
    name: 'chaos.outcome',
    make: (o) => chaos.outcome(o as never),
    base: { result: 1 },
    wrongType: ['firstN', 'two'],
    outOfRange: ['firstN', -1],
    misspelled: ['reslt', 'result'],
  },
  {
    name: 'chaos.behavior',
    make: (o) => chaos.behavior(o as never),
    base: { run: () => {} },
    wrongType: ['run', 'x'],
    outOfRange: ['rate', -0.5],
    misspelled: ['enabeld', 'enabled'],
  },
];

const errorOf = configError;

describe('every public constructor refuses bad options with ConfigError and the dotted path', () => {
  describe.each(rows)('$name', (row) => {
    it('a value of the wrong type', () => {
      const [k, v] = row.wrongType;
      const e = errorOf(() => row.make({ ...row.base, [k]: v }));
      expect(e.code).toBe('INVALID_OPTION');
      expect(e.option).toBe(`${row.name}.${k}`);
      expect(e.value).toBe(v);
      expect(e.rule.length).toBeGreaterThan(0);
      expect(e.message).toContain(`${row.name}.${k}`);
    });

    it('a value out of range', () => {
      const [k, v] = row.outOfRange;
      const e = errorOf(() => row.make({ ...row.base, [k]: v }));
      expect(e.code).toBe('INVALID_OPTION');
      expect(e.option).toBe(`${row.name}.${k}`);
      expect(e.value).toBe(v);
    });

    it('an unknown key', () => {
      const e = errorOf(() => row.make({ ...row.base, zzzUnknownOption: 1 }));
      expect(e.code).toBe('UNKNOWN_OPTION');
      expect(e.option).toBe(`${row.name}.zzzUnknownOption`);
      expect(e.suggestion).toBeUndefined();
    });

    it('a misspelled key, with did you mean', () => {
      const [typo, meant] = row.misspelled;
      const e = errorOf(() => row.make({ ...row.base, [typo]: row.base[meant] ?? 1 }));
      expect(e.code).toBe('UNKNOWN_OPTION');
      expect(e.option).toBe(`${row.name}.${typo}`);
      expect(e.suggestion).toBe(meant);
      expect(e.message).toContain(`did you mean ${row.name}.${meant}?`);
    });
  });

  it('a registry option that is not a registry', () => {
    const e = errorOf(() => retry({ registry: {} as never }));
    expect(e.option).toBe('retry.registry');
  });
});
