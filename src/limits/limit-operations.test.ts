import { describe, expect, it } from 'vitest';
import { bulkhead } from '../core/bulkhead.js';
import type { ComponentOperation } from '../core/component.js';
import { BulwarkError, ConfigError } from '../core/errors.js';
import { createFakeClock, flushMicrotasks } from '../testing/index.js';
import { adaptiveConcurrency } from './adaptive-concurrency.js';
import { rateLimit } from './rate-limit.js';
import { rateLimiter } from './rate-limiter.js';
import { LoadShedError, loadShedder } from './shed.js';

const CTX = { actor: 'test', reason: 'load test', dryRun: false };

function op(c: { operations(): readonly ComponentOperation[] }, name: string): ComponentOperation {
  const found = c.operations().find((o) => o.name === name);
  if (found === undefined) throw new Error(`no operation ${name}`);
  return found;
}

/** Runs an operation as the control plane does: input parsed at `body.input`, then run. */
async function act(c: { operations(): readonly ComponentOperation[] }, name: string, input: unknown) {
  const o = op(c, name);
  return o.run(o.input.parse(input, 'body.input'), CTX);
}

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.option;
    throw error;
  }
  return undefined;
}

describe('bulkhead.setLimits', () => {
  it('a larger limit admits queued calls at once, oldest first; the result says before and after', async () => {
    const pool = bulkhead({ limit: 1, queue: 10 });
    const order: number[] = [];
    let release!: () => void;
    const first = pool.execute(() => new Promise<void>((r) => (release = r)));
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const queued = [1, 2, 3].map((n) =>
      pool.execute(async () => {
        order.push(n);
        await gate;
      }),
    );
    await flushMicrotasks();
    expect(pool.queued).toBe(3);
    const result = await act(pool, 'setLimits', { limit: 3 });
    expect(result).toEqual({
      before: { limit: 1, queue: 10, queueTimeoutMs: null },
      after: { limit: 3, queue: 10, queueTimeoutMs: null },
    });
    await flushMicrotasks();
    expect(order).toEqual([1, 2]); // two more slots: the two oldest run; the third waits
    expect(pool.queued).toBe(1);
    release();
    open();
    await Promise.all([first, ...queued]);
    expect(order).toEqual([1, 2, 3]);
  });

  it('a smaller limit lets running calls finish and holds new ones until below it', async () => {
    const pool = bulkhead({ limit: 2, queue: 5 });
    const releases: (() => void)[] = [];
    const running = [0, 1].map(() => pool.execute(() => new Promise<void>((r) => releases.push(r))));
    await flushMicrotasks();
    pool.setLimits({ limit: 1 });
    let ran = false;
    const next = pool.execute(async () => {
      ran = true;
    });
    releases[0]!();
    await flushMicrotasks();
    expect(ran).toBe(false); // 1 running = the new limit
    releases[1]!();
    await Promise.all([...running, next]);
    expect(ran).toBe(true);
    expect(pool.snapshot().gauges.limit).toBe(1);
  });

  it('refuses bad input naming the field, an empty change, and a limit given as a function', () => {
    const pool = bulkhead({ limit: 2 });
    const o = op(pool, 'setLimits');
    expect(fieldOf(() => o.input.parse({ limit: 0 }, 'body.input'))).toBe('body.input.limit');
    expect(fieldOf(() => o.input.parse({ limt: 3 }, 'body.input'))).toBe('body.input.limt');
    expect(fieldOf(() => o.input.parse({}, 'body.input'))).toBe('body.input');
    expect(o.input.json()).toMatchObject({ type: 'object', minProperties: 1 });
    expect(() => pool.setLimits({ queue: -1 })).toThrow(ConfigError);
    const tiered = bulkhead({ limit: (ctx) => (ctx.priority === 'critical' ? 4 : 2) });
    expect(() => tiered.setLimits({ limit: 3 })).toThrow(BulwarkError);
    tiered.setLimits({ queue: 3 }); // the queue is a constant: it may change
    expect(tiered.settings()).toEqual({ limit: null, queue: 3, queueTimeoutMs: null });
  });
});

describe('rateLimit.setLimits', () => {
  it('raising the rate admits waiting calls at once; the limits show in the snapshot', async () => {
    const clock = createFakeClock();
    const api = rateLimit({
      limits: [{ algorithm: 'token-bucket', capacity: 1, refillRate: 1 }],
      maxWaitMs: 60_000,
      clock,
    });
    await api.execute(() => 'first');
    let done = 0;
    const waiting = [0, 1].map(() => api.execute(() => done++));
    await flushMicrotasks();
    expect(api.queued).toBe(2);
    await act(api, 'setLimits', { limits: [{ algorithm: 'token-bucket', capacity: 5, refillRate: 100 }] });
    await clock.tick(50); // 100/s refills the 2 tokens in ~20 ms (the bucket kept its spent state)
    await Promise.all(waiting);
    expect(done).toBe(2);
    expect(api.snapshot().details).toEqual({
      limits: [{ algorithm: 'token-bucket', capacity: 5, refillRate: 100 }],
    });
  });

  it('keeps spent state when only numbers change (capacity cut), starts full when the algorithm changes', () => {
    const clock = createFakeClock();
    const limiter = rateLimiter({
      limits: [{ algorithm: 'token-bucket', capacity: 10, refillRate: 1 }],
      clock,
    });
    limiter.consume('k', 3);
    limiter.setLimits([{ algorithm: 'token-bucket', capacity: 5, refillRate: 1 }]);
    expect(limiter.peek('k', 5).allowed).toBe(true); // 7 tokens cut to 5
    limiter.consume('k', 5);
    expect(limiter.peek('k').allowed).toBe(false);
    limiter.setLimits([{ algorithm: 'fixed-window', limit: 2, windowMs: 1_000 }]);
    expect(limiter.consume('k').allowed).toBe(true);
    expect(limiter.consume('k').allowed).toBe(true);
    expect(limiter.consume('k').allowed).toBe(false);
  });

  it('validates each limit by its algorithm, naming the field; a non-memory limiter has no operation', () => {
    const api = rateLimit({ limits: [{ algorithm: 'fixed-window', limit: 5, windowMs: 1_000 }] });
    const o = op(api, 'setLimits');
    expect(
      fieldOf(() =>
        o.input.parse({ limits: [{ algorithm: 'gcra', rate: -1, periodMs: 1_000 }] }, 'body.input'),
      ),
    ).toBe('body.input.limits[0].rate');
    expect(fieldOf(() => o.input.parse({ limits: [] }, 'body.input'))).toBe('body.input.limits');
    const remote = rateLimit({ limiter: { consume: () => ({ allowed: true }) as never } });
    expect(remote.operations()).toEqual([]);
    expect(() => remote.setLimits([{ algorithm: 'fixed-window', limit: 1, windowMs: 1 }])).toThrow(
      BulwarkError,
    );
  });
});

describe('loadShedder operations', () => {
  it('setLimits changes the capacity for the next call; setLevel and setEnabled act at once', async () => {
    const shedder = loadShedder({ capacity: 1, thresholds: { critical: 1, high: 1, normal: 1, low: 1 } });
    let release!: () => void;
    const running = shedder.execute(() => new Promise<void>((r) => (release = r)));
    await expect(shedder.execute(() => 'x')).rejects.toBeInstanceOf(LoadShedError);
    expect(await act(shedder, 'setLimits', { capacity: 2 })).toEqual({
      before: { capacity: 1, level: 'normal', enabled: true },
      after: { capacity: 2, level: 'normal', enabled: true },
    });
    await expect(shedder.execute(() => 'x')).resolves.toBe('x');
    await act(shedder, 'setLevel', { level: 'offline' });
    await expect(shedder.execute(() => 'x', { priority: 'critical' })).rejects.toBeInstanceOf(LoadShedError);
    await act(shedder, 'setEnabled', { enabled: false });
    await expect(shedder.execute(() => 'x')).resolves.toBe('x');
    release();
    await running;
    expect(fieldOf(() => op(shedder, 'setLevel').input.parse({ level: 'down' }, 'body.input'))).toBe(
      'body.input.level',
    );
  });
});

describe('adaptiveConcurrency.setBounds', () => {
  it('brings the limit within new bounds and wakes queued calls when it grows', async () => {
    const limiter = adaptiveConcurrency({
      algorithm: 'aimd',
      initialLimit: 1,
      minLimit: 1,
      maxLimit: 1,
      queue: 5,
    });
    let release!: () => void;
    const first = limiter.execute(() => new Promise<void>((r) => (release = r)));
    let ran = 0;
    const queued = [0, 1].map(() => limiter.execute(async () => void ran++));
    await flushMicrotasks();
    expect(limiter.queued).toBe(2);
    const changes: number[] = [];
    limiter.onLimitChange((e) => changes.push(e.to));
    expect(await act(limiter, 'setBounds', { minLimit: 3, maxLimit: 10 })).toEqual({
      before: { minLimit: 1, maxLimit: 1, limit: 1 },
      after: { minLimit: 3, maxLimit: 10, limit: 3 },
    });
    await Promise.all(queued);
    expect(ran).toBe(2);
    expect(changes[0]).toBe(3); // then AIMD grows it with the samples
    release();
    await first;
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('refuses min > max naming the field (gradient2 and vegas keep their bounds too)', () => {
    const limiter = adaptiveConcurrency({
      algorithm: 'gradient2',
      initialLimit: 20,
      minLimit: 10,
      maxLimit: 50,
    });
    const o = op(limiter, 'setBounds');
    expect(fieldOf(() => o.input.parse({ maxLimit: 5 }, 'body.input'))).toBe('body.input.maxLimit');
    expect(fieldOf(() => o.input.parse({ minLimit: 60 }, 'body.input'))).toBe('body.input.minLimit');
    limiter.setBounds({ maxLimit: 15 });
    expect(limiter.limit).toBe(15);
    const vegas = adaptiveConcurrency({ algorithm: 'vegas', initialLimit: 20 });
    vegas.setBounds({ minLimit: 30 });
    expect(vegas.limit).toBe(30);
    expect(vegas.bounds.minLimit).toBe(30);
    expect(() => vegas.setBounds({ minLimit: 0 })).toThrow(ConfigError);
  });
});
