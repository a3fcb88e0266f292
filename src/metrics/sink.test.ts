import {
  BrokenCircuitError,
  BulkheadRejectedError,
  bulkhead,
  ConfigError,
  circuitBreaker,
  pipeline,
  RateLimitedError,
  rateLimit,
  retry,
  TimeoutError,
  timeout,
} from 'bulwark';
import { createFakeClock } from 'bulwark/testing';
import { describe, expect, it } from 'vitest';
import { classifyError, createMetrics, flatten, type MetricFamily } from './index.js';

const family = (fs: MetricFamily[], name: string) => fs.find((f) => f.name === name)!;
const value = (fs: MetricFamily[], name: string, labels: Record<string, string>) => {
  const f = family(fs, name);
  if (f.type === 'histogram') throw new Error('histogram');
  return f.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
};

describe('classifyError', () => {
  it('maps Bulwark errors to outcomes', () => {
    expect(classifyError(new TimeoutError(10))).toBe('timeout');
    expect(classifyError(new BrokenCircuitError('b', 'open', 10))).toBe('rejected');
    expect(classifyError(new BulkheadRejectedError('b', 'BULKHEAD_FULL', 1, 0))).toBe('rejected');
    expect(classifyError(new RateLimitedError('r', 'k', 10, 'rateLimited'))).toBe('rejected');
    expect(classifyError(new Error('x'))).toBe('failure');
    expect(classifyError('x')).toBe('failure');
  });
});

describe('createMetrics', () => {
  it('validates its options with the field named', () => {
    expect(() => createMetrics({ buckets: [1, 0.5] })).toThrow(ConfigError);
    expect(() => createMetrics({ buckets: [1, 0.5] })).toThrow(/createMetrics\.buckets/);
    expect(() => createMetrics({ sampleEvery: 0 })).toThrow(/createMetrics\.sampleEvery/);
    expect(() => createMetrics({ bogus: 1 } as never)).toThrow(ConfigError);
  });

  it('counts and times every call of a tracked pipeline by outcome', async () => {
    const clock = createFakeClock();
    const metrics = createMetrics({ clock, sampleEvery: 1 });
    const breaker = circuitBreaker({ breaker: { kind: 'consecutive', threshold: 100 }, clock });
    const p = metrics.track(pipeline(retry({ maxAttempts: 1 }), breaker), 'api');
    await p.execute(async () => {
      await clock.tick(0);
      return 1;
    });
    const slow = p.execute(() => new Promise((r) => clock.setTimeout(() => r(2), 300)));
    await clock.tick(300);
    await slow;
    await expect(p.execute(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    breaker.isolate();
    await expect(p.execute(() => 1)).rejects.toBeInstanceOf(BrokenCircuitError);
    await Promise.resolve();
    const fs = await metrics.collect();
    const calls = (outcome: string) =>
      value(fs, 'bulwark_calls_total', { kind: 'pipeline', name: 'api', outcome });
    expect(calls('success')).toBe(2);
    expect(calls('failure')).toBe(1);
    expect(calls('rejected')).toBe(1);
    expect(calls('timeout')).toBe(0);
    const h = family(fs, 'bulwark_call_duration_seconds');
    if (h.type !== 'histogram') throw new Error('type');
    const s = h.samples[0]!;
    expect(s.count).toBe(4);
    expect(s.sum).toBeCloseTo(0.3);
    // le=0.25 holds the three instant calls; le=0.5 adds the 300 ms one.
    expect(s.cumulative[s.bounds.indexOf(0.25)]).toBe(3);
    expect(s.cumulative[s.bounds.indexOf(0.5)]).toBe(4);
    expect(value(fs, 'bulwark_circuit_state', { name: 'circuitBreaker', state: 'isolated' })).toBe(1);
    expect(value(fs, 'bulwark_circuit_state', { name: 'circuitBreaker', state: 'closed' })).toBe(0);
  });

  it('counts timeouts, and reads retries, bulkheads and timeouts from the policies', async () => {
    const clock = createFakeClock();
    const metrics = createMetrics({ clock, sampleEvery: 1 });
    const b = bulkhead({ limit: 2, queue: 0, clock, name: 'pool' });
    const p = metrics.track(
      pipeline(
        timeout({ timeoutMs: 1_000, clock, name: 't' }),
        retry({ maxAttempts: 2, clock, name: 'r' }),
        b,
      ),
      'svc',
    );
    const hang = p.execute(
      ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    );
    await clock.tick(0);
    let fs = await metrics.collect();
    expect(value(fs, 'bulwark_bulkhead_active', { name: 'pool' })).toBe(1);
    expect(value(fs, 'bulwark_bulkhead_limit', { name: 'pool' })).toBe(2);
    await clock.tick(1_000);
    await expect(hang).rejects.toBeInstanceOf(TimeoutError);
    let n = 0;
    const twice = p.execute(() => {
      if (n++ === 0) throw new Error('once');
      return 'ok';
    });
    await clock.tick(200);
    await twice;
    await Promise.resolve();
    fs = await metrics.collect();
    expect(value(fs, 'bulwark_calls_total', { name: 'svc', outcome: 'timeout' })).toBe(1);
    expect(value(fs, 'bulwark_calls_total', { name: 'svc', outcome: 'success' })).toBe(1);
    expect(value(fs, 'bulwark_retries_total', { name: 'r' })).toBe(1);
    expect(value(fs, 'bulwark_timeouts_total', { name: 't' })).toBe(1);
  });

  it('counts every call but times a sample when sampleEvery > 1', async () => {
    const metrics = createMetrics({ sampleEvery: 8 });
    const p = metrics.track(pipeline(retry()), 'busy');
    for (let i = 0; i < 4_000; i++) await p.execute(() => i);
    await Promise.resolve();
    const rec = metrics.recorder('pipeline', 'busy');
    expect(rec.calls).toBe(4_000);
    expect(rec.timed).toBeGreaterThan(200);
    expect(rec.timed).toBeLessThan(4_000);
  });

  it('untrack restores execute, and tracking twice is harmless', async () => {
    const metrics = createMetrics({ sampleEvery: 1 });
    const p = pipeline(retry());
    const proto = Object.getPrototypeOf(p).execute;
    metrics.track(p, 'x');
    metrics.track(p, 'x');
    expect(p.execute).not.toBe(proto);
    await p.execute(() => 1);
    metrics.untrack(p);
    expect(p.execute).toBe(proto);
    await p.execute(() => 1);
    await Promise.resolve();
    expect(metrics.recorder('pipeline', 'x').calls).toBe(1);
    expect(() => metrics.track({} as never)).toThrow(TypeError);
  });

  it('a standalone policy is a call of its own kind', async () => {
    const metrics = createMetrics({ sampleEvery: 1 });
    const r = metrics.track(retry({ name: 'fetch' }));
    await r.execute(() => 1);
    await Promise.resolve();
    expect(metrics.recorder('retry', 'fetch').success).toBe(1);
  });

  it('reads queues and a health monitor at collection time', async () => {
    const metrics = createMetrics();
    metrics.addQueue({
      name: 'mail',
      stats: async () => ({ pending: 3, active: 1, completed: 10, dead: 2, delayed: 4 }),
    });
    const bad = metrics.addQueue({ name: 'broken', stats: () => Promise.reject(new Error('down')) });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    metrics.addHealth({
      snapshot: () => ({
        ready: false,
        shuttingDown: true,
        checks: [
          { name: 'db', status: 'pass', critical: true },
          { name: 'cache', status: 'warn', critical: false },
          { name: 'search', status: 'fail', critical: false },
        ],
      }),
    });
    const fs = await metrics.collect();
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    bad();
    expect(value(fs, 'bulwark_queue_jobs', { queue: 'mail', state: 'pending' })).toBe(3);
    expect(value(fs, 'bulwark_queue_jobs', { queue: 'mail', state: 'delayed' })).toBe(4);
    expect(value(fs, 'bulwark_queue_jobs', { queue: 'broken' })).toBeUndefined();
    expect(warnings.some((w) => w.includes('broken'))).toBe(true);
    expect(value(fs, 'bulwark_health_status', { check: 'db' })).toBe(1);
    expect(value(fs, 'bulwark_health_status', { check: 'cache' })).toBe(0.5);
    expect(value(fs, 'bulwark_health_status', { check: 'search' })).toBe(0);
    expect(value(fs, 'bulwark_ready', {})).toBe(0);
    expect(value(fs, 'bulwark_shutting_down', {})).toBe(1);
    const flat = flatten(fs);
    expect(flat.find((s) => s.name === 'bulwark_ready')?.value).toBe(0);
  });

  it('flattens histograms Prometheus-style', async () => {
    const metrics = createMetrics({ buckets: [0.1, 1], sampleEvery: 1 });
    metrics.recorder('pipeline', 'h').record('success', 500, 'normal', 0);
    const flat = flatten(await metrics.collect()).filter((s) => s.name.startsWith('bulwark_call_duration'));
    expect(flat.map((s) => `${s.name}${s.labels.le ?? ''}=${s.value}`)).toEqual([
      'bulwark_call_duration_seconds_bucket0.1=0',
      'bulwark_call_duration_seconds_bucket1=1',
      'bulwark_call_duration_seconds_bucket+Inf=1',
      'bulwark_call_duration_seconds_sum=0.5',
      'bulwark_call_duration_seconds_count=1',
    ]);
  });
});

describe('review regressions', () => {
  const warningsDuring = async (fn: () => Promise<void>): Promise<string[]> => {
    const warnings: string[] = [];
    const on = (w: Error) => warnings.push(w.message);
    process.on('warning', on);
    try {
      await fn();
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', on);
    }
    return warnings;
  };

  it('untrack() with two sinks on one policy leaves the other counting, in either order', async () => {
    for (const order of [
      [0, 1],
      [1, 0],
    ] as const) {
      const sinks = [createMetrics({ sampleEvery: 1 }), createMetrics({ sampleEvery: 1 })] as const;
      const p = pipeline(retry({ maxAttempts: 1 }), timeout(1_000));
      sinks[0].track(p, 'a');
      sinks[1].track(p, 'a');
      const first = sinks[order[0]];
      const second = sinks[order[1]];
      first.untrack(p);
      await p.execute(() => 1);
      await Promise.resolve();
      expect(first.recorder('pipeline', 'a').calls).toBe(0);
      expect(second.recorder('pipeline', 'a').calls).toBe(1);
      second.untrack(p);
      await p.execute(() => 1);
      await Promise.resolve();
      expect(first.recorder('pipeline', 'a').calls).toBe(0);
      expect(second.recorder('pipeline', 'a').calls).toBe(1);
      expect(Object.hasOwn(p, 'execute')).toBe(false); // the prototype's execute again
    }
  });

  it('a throwing call observer is reported, never an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const m = createMetrics();
      const p = m.track(pipeline(retry({ maxAttempts: 1 })), 'api');
      m.recorder('pipeline', 'api').addObserver({
        observe() {
          throw new Error('observer bug');
        },
      });
      let result: unknown;
      const warnings = await warningsDuring(async () => {
        result = await p.execute(() => 42);
        await p.execute(() => Promise.reject(new Error('x'))).catch(() => {});
      });
      expect(result).toBe(42);
      expect(warnings.filter((w) => w.includes('observer bug'))).toHaveLength(2);
      expect(m.recorder('pipeline', 'api').calls).toBe(2);
      await new Promise((r) => setTimeout(r, 5));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a member of a known kind without the expected stats never fails the scrape', async () => {
    const m = createMetrics();
    const odd = {
      kind: 'rateLimit',
      name: 'odd',
      execute: (fn: () => unknown) => Promise.resolve(fn()),
    };
    const throwing = {
      kind: 'retry',
      name: 'throwing',
      get stats(): never {
        throw new Error('no stats today');
      },
      execute: (fn: () => unknown) => Promise.resolve(fn()),
    };
    m.track(odd as never);
    m.track(throwing as never);
    let fs: MetricFamily[] = [];
    const warnings = await warningsDuring(async () => {
      fs = await m.collect();
    });
    expect(family(fs, 'bulwark_ratelimit_rejected_total').samples).toEqual([]);
    expect(family(fs, 'bulwark_retries_total').samples).toEqual([]);
    expect(warnings.some((w) => w.includes('no stats today'))).toBe(true);
  });

  it('counts the rejections of a bulwark/redis rate limit', async () => {
    const { redisRateLimiter } = await import('bulwark/redis');
    const client = {
      evalsha: async () => {
        throw new Error('no redis');
      },
      eval: async () => {
        throw new Error('no redis');
      },
    };
    const limiter = redisRateLimiter({
      client: client as never,
      limits: [{ algorithm: 'gcra', rate: 100, periodMs: 1_000, burst: 20 }],
      onRedisError: 'deny',
    });
    const m = createMetrics();
    const p = m.track(pipeline(rateLimit({ limiter, name: 'shared' }), retry({ maxAttempts: 1 })), 'api');
    await p.execute(() => 1).catch(() => {});
    await p.execute(() => 1).catch(() => {});
    const fs = await m.collect();
    expect(value(fs, 'bulwark_ratelimit_rejected_total', { name: 'shared' })).toBe(2);
    expect(value(fs, 'bulwark_calls_total', { name: 'api', outcome: 'rejected' })).toBe(2);
  });

  it('queues and health checks of one name make one series (the last added wins)', async () => {
    const m = createMetrics();
    const q = (dead: number) => ({
      name: 'mail',
      stats: async () => ({ pending: 0, active: 0, completed: 0, dead }),
    });
    m.addQueue(q(1));
    m.addQueue(q(2));
    m.addHealth({
      snapshot: () => ({
        ready: true,
        shuttingDown: false,
        checks: [{ name: 'db', status: 'pass', critical: true }],
      }),
    });
    m.addHealth({
      snapshot: () => ({
        ready: true,
        shuttingDown: false,
        checks: [{ name: 'db', status: 'fail', critical: true }],
      }),
    });
    const samples = await m.samples();
    const dead = samples.filter((s) => s.name === 'bulwark_queue_jobs' && s.labels.state === 'dead');
    expect(dead.map((s) => s.value)).toEqual([2]);
    const checks = samples.filter((s) => s.name === 'bulwark_health_status');
    expect(checks.map((s) => s.value)).toEqual([0]);
  });

  it('two breakers of one name: the first one’s state, and one warning', async () => {
    const m = createMetrics();
    m.track(pipeline(circuitBreaker({ name: 'db' }), retry({ maxAttempts: 1 })), 'a');
    m.track(pipeline(circuitBreaker({ name: 'db' }), retry({ maxAttempts: 1 })), 'b');
    const warnings = await warningsDuring(async () => {
      await m.collect();
      await m.collect();
    });
    expect(warnings.filter((w) => w.includes('Two circuit breakers are named "db"'))).toHaveLength(1);
  });
});
