/**
 * bulwark/redis rate limiters against the real Redis at 127.0.0.1:6379 (see test/support/redis.ts:
 * skipped without Redis outside CI, failing on CI).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { Redis as RedisClient } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { RateLimitedError, type RateLimitSpec, rateLimit, rateLimiter } from '../src/index.js';
import { type RedisRateLimiterEvent, redisRateLimiter } from '../src/redis/index.js';
import { keySlot } from '../src/redis/rate-limiter.js';
import { createFakeClock } from '../src/testing/index.js';
import { cleanup, commandCalls, connectRedis, describeRedis, testPrefix } from './support/redis.js';

const execFileP = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeRedis('redisRateLimiter (real Redis)', () => {
  let redis: Redis;
  let prefix: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);

  beforeAll(async () => {
    redis = await connectRedis();
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    await cleanup(redis, prefix);
    expect(unhandled).toEqual([]);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
    redis?.disconnect();
  });

  const spec = fc.oneof(
    fc.record({
      algorithm: fc.constant('token-bucket' as const),
      capacity: fc.integer({ min: 1, max: 10 }),
      refillRate: fc.integer({ min: 1, max: 20 }),
    }),
    fc.record({
      algorithm: fc.constant('gcra' as const),
      rate: fc.integer({ min: 1, max: 10 }),
      periodMs: fc.integer({ min: 1, max: 1_000 }),
      burst: fc.integer({ min: 0, max: 5 }),
    }),
    fc.record({
      algorithm: fc.constantFrom('fixed-window' as const, 'sliding-window-counter' as const),
      limit: fc.integer({ min: 1, max: 10 }),
      windowMs: fc.integer({ min: 1, max: 1_000 }),
    }),
  );
  const run = fc.array(
    fc.record({ dt: fc.integer({ min: 0, max: 150 }), cost: fc.integer({ min: 0, max: 3 }) }),
    { minLength: 1, maxLength: 40 },
  );

  /** Runs the steps on both limiters (same times) and compares every decision field. */
  async function compare(limits: RateLimitSpec[], steps: { dt: number; cost: number }[]) {
    prefix = testPrefix();
    const start = 1_763_000_000_123; // a realistic epoch ms, as TIME gives
    const clock = createFakeClock({ now: start });
    const mem = rateLimiter({ limits, clock });
    const red = redisRateLimiter({
      client: redis,
      limits,
      prefix,
      timeoutMs: 2_000,
      _now: () => clock.now(),
    });
    for (const s of steps) {
      clock.tickSync(s.dt);
      const d = await red.consume('k', s.cost);
      expect({ ...d }).toEqual({ ...mem.consume('k', s.cost) });
    }
    expect(red.stats.fallback).toBe(0);
    await cleanup(redis, prefix);
  }

  for (const algorithm of ['token-bucket', 'gcra', 'fixed-window', 'sliding-window-counter'] as const) {
    it(`${algorithm}: every decision equals the in-memory algorithm's for the same times`, async () => {
      await fc.assert(
        fc.asyncProperty(
          spec.filter((s) => s.algorithm === algorithm),
          run,
          (s, steps) => compare([s], steps),
        ),
        { numRuns: 25 },
      );
    });
  }

  it('a lone fixed window with a test clock (the general script): fractional costs and windows too, and old windows never pile up', async () => {
    const frac = fc.array(
      fc.record({
        dt: fc.integer({ min: 0, max: 150 }),
        cost: fc.integer({ min: 0, max: 6 }).map((c) => c / 2),
      }),
      { minLength: 1, maxLength: 40 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10 }),
        fc.constantFrom(1, 7.5, 100, 333.25),
        frac,
        (limit, windowMs, steps) => compare([{ algorithm: 'fixed-window', limit, windowMs }], steps),
      ),
      { numRuns: 25 },
    );
    prefix = testPrefix();
    const clock = createFakeClock({ now: 1_763_000_000_000 });
    const l = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [{ algorithm: 'fixed-window', limit: 3, windowMs: 100 }],
      _now: () => clock.now(),
    });
    for (const dt of [0, 100, 350, 20, 500, 100]) {
      clock.tickSync(dt);
      await l.consume('w');
      expect(await redis.keys(`${prefix}*`)).toEqual([`${prefix}{k:w}:0f`]);
    }
  });

  it('a lone fixed window in server time (the INCRBY + PEXPIREAT script): exact counts, fractional costs, the key ends with its window', async () => {
    prefix = testPrefix();
    const l = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [{ algorithm: 'fixed-window', limit: 5, windowMs: 60_000 }],
    });
    let d = await l.consume('e');
    if (d.resetMs < 2_000) {
      await sleep(d.resetMs + 5); // start in a fresh window
      d = await l.consume('e');
    }
    expect(d).toMatchObject({ allowed: true, remaining: 4, limit: 5, windowMs: 60_000 });
    expect((await l.consume('e', 2.5)).remaining).toBe(1); // 3.5 used
    expect((await l.consume('e', 1)).remaining).toBe(0); // 4.5 used (the counter is a float now)
    const r = await l.consume('e', 1);
    expect(r.allowed).toBe(false);
    expect(r.retryAfterMs).toBeGreaterThan(0);
    expect(r.retryAfterMs).toBeCloseTo(r.resetMs, 6);
    expect((await l.consume('e', 0.5)).allowed).toBe(true); // exactly 5
    const key = `${prefix}{k:e}:0e`;
    expect(Number(await redis.get(key))).toBe(5);
    // In a full window a rejected call is not taken back (the counter runs past the limit), and
    // that changes nothing: a cost-0 call still fits, the rest are refused.
    expect((await l.consume('e', 6)).retryAfterMs).toBe(Number.POSITIVE_INFINITY);
    expect(await l.consume('e', 1)).toMatchObject({ allowed: false, remaining: 0 });
    expect(Number(await redis.get(key))).toBe(12);
    expect(await l.consume('e', 0)).toMatchObject({ allowed: true, remaining: 0 });
    // The key's expiry is the window's last millisecond (aligned to the epoch, as in memory).
    const [at, [sec, usec]] = await Promise.all([redis.pexpiretime(key), redis.time()]);
    const nowMs = Number(sec) * 1000 + Number(usec) / 1000;
    expect((at + 1) % 60_000).toBe(0);
    expect(at + 1 - nowMs).toBeCloseTo(r.resetMs, -2);
    // A short window: the count starts again in the next one.
    const s = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [{ algorithm: 'fixed-window', limit: 2, windowMs: 50 }],
    });
    await s.consume('s');
    await s.consume('s');
    const third = await s.consume('s');
    if (!third.allowed) {
      await sleep(third.retryAfterMs + 2);
      expect((await s.consume('s')).allowed).toBe(true);
    }
  });

  it('several limits: the same decisions as the in-memory multi-limit limiter', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(spec, { minLength: 2, maxLength: 3 }), run, (list, steps) =>
        compare(list, steps),
      ),
      { numRuns: 25 },
    );
  });

  it('several limits: a rejected call spends nothing in the others', async () => {
    prefix = testPrefix();
    const l = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [
        { algorithm: 'fixed-window', limit: 100, windowMs: 60_000 },
        { algorithm: 'token-bucket', capacity: 2, refillRate: 0.001 },
      ],
    });
    expect((await l.consume('u', 2)).allowed).toBe(true);
    for (let i = 0; i < 5; i++) expect((await l.consume('u', 1)).allowed).toBe(false);
    // A fixed window is stored as `start:used`.
    expect((await redis.get(`${prefix}{k:u}:0f`))?.split(':')[1]).toBe('2');
  });

  it('uses the server time: a fixed window refills after its retryAfterMs, and idle keys expire', async () => {
    prefix = testPrefix();
    const l = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [{ algorithm: 'fixed-window', limit: 3, windowMs: 200 }],
    });
    let d = await l.consume('w');
    // Align on a fresh window so three calls fit in it.
    if (d.resetMs < 120) {
      await sleep(d.resetMs + 5);
      await redis.del(`${prefix}{k:w}:0e`);
      d = await l.consume('w');
    }
    expect(d.allowed).toBe(true);
    expect((await l.consume('w')).allowed).toBe(true);
    expect((await l.consume('w')).allowed).toBe(true);
    const rejected = await l.consume('w');
    expect(rejected.allowed).toBe(false);
    expect(rejected.retryAfterMs).toBeGreaterThan(0);
    expect(rejected.retryAfterMs).toBeLessThanOrEqual(200);
    const ttl = await redis.pttl(`${prefix}{k:w}:0e`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1_200 + 1);
    await sleep(Math.ceil(rejected.retryAfterMs) + 2);
    expect((await l.consume('w')).allowed).toBe(true);
  });

  it('keys are prefix + {key} + :index (a Redis Cluster hash tag)', async () => {
    prefix = testPrefix();
    const l = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [
        { algorithm: 'gcra', rate: 10, periodMs: 1_000 },
        { algorithm: 'sliding-window-counter', limit: 10, windowMs: 1_000 },
      ],
    });
    await l.consume('user:7');
    const keys = (await redis.keys(`${prefix}*`)).sort();
    expect(keys).toEqual([`${prefix}{k:user:7}:0g`, `${prefix}{k:user:7}:1s`]);
  });

  it('a key holding another format or type (an old version, a changed limit) counts as a fresh state, without failing its batch', async () => {
    prefix = testPrefix();
    const l = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [{ algorithm: 'token-bucket', capacity: 3, refillRate: 1 }],
    });
    await redis.hset(`${prefix}{k:old}:0t`, 't', '5', 'ts', '1');
    await redis.set(`${prefix}{k:junk}:0t`, 'not a state');
    const ds = await Promise.all([l.consume('fresh'), l.consume('old'), l.consume('junk')]);
    expect(ds.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 2],
      [true, 2],
    ]);
    expect(l.stats.fallback).toBe(0);
    expect(await redis.type(`${prefix}{k:old}:0t`)).toBe('string');
  });

  it('keys whose hash tag would be empty ("" or starting with "}") still keep all their limits in one slot', async () => {
    prefix = testPrefix();
    const l = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [
        { algorithm: 'fixed-window', limit: 2, windowMs: 60_000 },
        { algorithm: 'gcra', rate: 10, periodMs: 1_000, burst: 5 },
      ],
    });
    for (const key of ['', '}x', 'a}b{c']) {
      expect((await l.consume(key)).allowed).toBe(true);
      const keys = (await redis.keys(`${prefix}*`)).filter((k) => k.startsWith(`${prefix}{k:${key}`));
      expect(keys.length).toBe(2);
      expect(new Set(keys.map((k) => keySlot(k))).size).toBe(1);
    }
    expect(() =>
      redisRateLimiter({
        client: redis,
        timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

        prefix: 'a{b}:',
        limits: [{ algorithm: 'gcra', rate: 1, periodMs: 1 }],
      }),
    ).toThrow(/prefix/);
  });

  it('extreme parameters (TTLs beyond 1e14 ms) still store their state', async () => {
    prefix = testPrefix();
    const l = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [
        { algorithm: 'token-bucket', capacity: 1e9, refillRate: 1e-5 },
        { algorithm: 'fixed-window', limit: 5, windowMs: 1e18 },
      ],
    });
    expect((await l.consume('x')).remaining).toBe(4);
    expect((await l.consume('x')).remaining).toBe(3);
    expect(l.stats.fallback).toBe(0);
  });

  it('recovers from NOSCRIPT (SCRIPT FLUSH), then goes back to one EVALSHA per decision', async () => {
    prefix = testPrefix();
    const l = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [{ algorithm: 'token-bucket', capacity: 5, refillRate: 1 }],
    });
    await l.consume('a');
    await redis.script('FLUSH');
    const d = await l.consume('a');
    expect(d.allowed).toBe(true);
    expect(d.remaining).toBe(3);
    expect(l.stats).toEqual({ redis: 2, fallback: 0, failing: false });
    const before = await commandCalls(redis);
    await l.consume('a');
    const after = await commandCalls(redis);
    expect((after.get('evalsha') ?? 0) - (before.get('evalsha') ?? 0)).toBe(1);
    expect((after.get('eval') ?? 0) - (before.get('eval') ?? 0)).toBe(0);
  });

  it('at most one round trip per decision: sequential calls make one EVALSHA each, concurrent calls share one per tick (INFO commandstats)', async () => {
    prefix = testPrefix();
    const l = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [
        { algorithm: 'gcra', rate: 50, periodMs: 1_000, burst: 10 },
        { algorithm: 'fixed-window', limit: 30, windowMs: 60_000 },
        { algorithm: 'sliding-window-counter', limit: 40, windowMs: 10_000 },
      ],
    });
    await l.consume('warm'); // loads the script if the cache was empty
    let before = await commandCalls(redis);
    const N = 200;
    for (let i = 0; i < 50; i++) await l.consume(`s${i % 7}`);
    let after = await commandCalls(redis);
    const delta = (c: string) => (after.get(c) ?? 0) - (before.get(c) ?? 0);
    expect(delta('evalsha')).toBe(50);
    expect(delta('time')).toBe(50);
    before = await commandCalls(redis);
    const decisions = await Promise.all(Array.from({ length: N }, (_, i) => l.consume(`k${i % 7}`)));
    after = await commandCalls(redis);
    expect(decisions).toHaveLength(N);
    // 200 calls in one tick: two scripts (maxBatch 128), one TIME each, each key read once per script.
    expect(delta('evalsha')).toBe(2);
    expect(delta('time')).toBe(2);
    expect(delta('eval')).toBe(0);
    expect(delta('script|load')).toBe(0);
    expect(decisions.filter((d) => d.allowed)).toHaveLength(7 * 11); // GCRA burst 10 + 1 per key
  });

  it('a batch decides its calls in arrival order, exactly as the same calls one by one', async () => {
    const limits = [
      { algorithm: 'token-bucket', capacity: 5, refillRate: 2 },
      { algorithm: 'sliding-window-counter', limit: 7, windowMs: 1_000 },
    ] as const;
    const clock = createFakeClock({ now: 1_000_000 });
    const one = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions
      prefix: testPrefix(),
      limits,
      _now: () => clock.now(),
    });
    const many = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions
      prefix: testPrefix(),
      limits,
      _now: () => clock.now(),
    });
    for (let round = 0; round < 4; round++) {
      const keys = Array.from({ length: 30 }, (_, i) => `k${(i * 7) % 4}`);
      const costs = keys.map((_, i) => (i % 3) + 0.5);
      const sequential = [];
      for (let i = 0; i < keys.length; i++) sequential.push(await one.consume(keys[i]!, costs[i]));
      const batched = await Promise.all(keys.map((k, i) => many.consume(k, costs[i])));
      expect(batched.map((d) => ({ ...d }))).toEqual(sequential.map((d) => ({ ...d })));
      await clock.tick(700);
    }
  });

  it('insurance: a Redis that refuses connections gets in-memory decisions within timeoutMs, with one fallback event', async () => {
    prefix = testPrefix();
    const dead = new RedisClient({ host: '127.0.0.1', port: 1, lazyConnect: false, maxRetriesPerRequest: 1 });
    dead.on('error', () => {});
    try {
      const l = redisRateLimiter({
        client: dead,
        prefix,
        timeoutMs: 40,
        limits: [{ algorithm: 'fixed-window', limit: 3, windowMs: 60_000 }],
      });
      const events: RedisRateLimiterEvent[] = [];
      l.onEvent((e) => events.push(e));
      const t0 = performance.now();
      const ds = [];
      for (let i = 0; i < 5; i++) ds.push(await l.consume('x'));
      const each = (performance.now() - t0) / 5;
      expect(each).toBeLessThan(40 + 30);
      expect(ds.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
      expect(events.map((e) => e.event)).toEqual(['fallback']);
      expect(l.stats.fallback).toBe(5);
      expect(l.stats.failing).toBe(true);
    } finally {
      dead.disconnect();
    }
    await sleep(20); // let the queued commands reject (they must not be unhandled)
  });

  it('insurance: a call Redis does not answer within timeoutMs is decided in memory; `recovered` once Redis answers again', async () => {
    prefix = testPrefix();
    const c = await connectRedis();
    try {
      const l = redisRateLimiter({
        client: c,
        prefix,
        timeoutMs: 30,
        insurance: { share: 0.5 },
        limits: [{ algorithm: 'token-bucket', capacity: 4, refillRate: 0.001 }],
      });
      const events: RedisRateLimiterEvent[] = [];
      l.onEvent((e) => events.push(e));
      // Block this connection: the EVALSHA waits behind a BLPOP for 300 ms.
      const blocked = c.blpop(`${prefix}{never}`, 0.3);
      const t0 = performance.now();
      const a = await l.consume('y');
      const b = await l.consume('y');
      const cc = await l.consume('y');
      expect(performance.now() - t0).toBeLessThan(3 * 30 + 40);
      // The insurance has half the capacity (share 0.5): 2 tokens.
      expect([a.allowed, b.allowed, cc.allowed]).toEqual([true, true, false]);
      expect(events.map((e) => e.event)).toEqual(['fallback']);
      expect((events[0] as { error: unknown }).error).toBeInstanceOf(Error);
      await blocked;
      await sleep(10);
      const d = await l.consume('y');
      expect(d.allowed).toBe(true);
      expect(events.map((e) => e.event)).toEqual(['fallback', 'recovered']);
      expect(l.stats.failing).toBe(false);
    } finally {
      c.disconnect();
    }
  });

  it("onRedisError 'deny' / 'allow' decide without the insurance", async () => {
    prefix = testPrefix();
    const dead = new RedisClient({ host: '127.0.0.1', port: 1, maxRetriesPerRequest: 0 });
    dead.on('error', () => {});
    try {
      const limits = [{ algorithm: 'fixed-window' as const, limit: 1, windowMs: 1_000 }];
      const deny = redisRateLimiter({ client: dead, prefix, limits, timeoutMs: 30, onRedisError: 'deny' });
      const allow = redisRateLimiter({ client: dead, prefix, limits, timeoutMs: 30, onRedisError: 'allow' });
      expect((await deny.consume('z')).allowed).toBe(false);
      expect((await allow.consume('z')).allowed).toBe(true);
      expect((await allow.consume('z')).allowed).toBe(true);
    } finally {
      dead.disconnect();
    }
    await sleep(20);
  });

  it('rateLimit over a Redis limiter: a policy that rejects with RateLimitedError', async () => {
    prefix = testPrefix();
    const limiter = redisRateLimiter({
      client: redis,
      timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

      prefix,
      limits: [{ algorithm: 'gcra', rate: 1, periodMs: 60_000, burst: 1 }],
    });
    const p = rateLimit({ limiter, key: (ctx) => String(ctx.props.user) });
    expect(await p.execute(() => 'ok', { props: { user: 'u' } })).toBe('ok');
    expect(await p.execute(() => 'ok', { props: { user: 'u' } })).toBe('ok');
    const err = await p.execute(() => 'ok', { props: { user: 'u' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).retryAfterMs).toBeGreaterThan(0);
    expect(await p.execute(() => 'ok', { props: { user: 'v' } })).toBe('ok');
  });

  it('validates its options', () => {
    expect(() =>
      redisRateLimiter({
        client: redis,
        timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

        limits: [{ algorithm: 'sliding-window-log', limit: 1, windowMs: 1 }],
      }),
    ).toThrow(/sliding-window-counter/);
    expect(() => redisRateLimiter({ client: {} as Redis, limits: [] })).toThrow(/client/);
    expect(() =>
      redisRateLimiter({
        client: redis,
        timeoutMs: 5_000, // a loaded machine must not turn these into insurance decisions

        limits: [{ algorithm: 'gcra', rate: 1, periodMs: 1 }],
        insurance: { share: 2 },
      }),
    ).toThrow(/share/);
    prefix = testPrefix();
  });
});

/** Runs `n` processes hammering one key; returns every allowed decision's [sent, received] interval. */
async function hammer(
  p: string,
  n: number,
  spec: RateLimitSpec,
  durationMs: number,
  concurrency: number,
): Promise<{ allowed: [number, number][]; perProcess: number[]; rejected: number; fallback: number }> {
  const startAt = Date.now() + 1_500; // every child connected and warmed up by then
  const runs = Array.from({ length: n }, () =>
    execFileP(process.execPath, [
      '--import',
      'tsx',
      'test/fixtures/limiter-worker.ts',
      p,
      JSON.stringify(spec),
      String(startAt),
      String(durationMs),
      String(concurrency),
    ]),
  );
  const outs = await Promise.all(runs);
  const allowed: [number, number][] = [];
  const perProcess: number[] = [];
  let rejected = 0;
  let fallback = 0;
  for (const { stdout } of outs) {
    let mine = 0;
    for (const line of stdout.split('\n')) {
      const [tag, a, b, c] = line.split(' ');
      if (tag === 'A') {
        allowed.push([Number(a), Number(b)]);
        mine++;
      } else if (tag === 'DONE') {
        rejected += Number(b);
        fallback += Number(c);
      }
    }
    perProcess.push(mine);
  }
  return { allowed, perProcess, rejected, fallback };
}

describeRedis('redisRateLimiter across processes (real Redis)', () => {
  let redis: Redis;
  let prefix = testPrefix();
  beforeAll(async () => {
    redis = await connectRedis();
  });
  afterEach(async () => {
    await cleanup(redis, prefix);
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('four processes hammering one key never exceed a fixed window in any window', async () => {
    const W = 250;
    const L = 20;
    prefix = testPrefix();
    const { allowed, perProcess, rejected, fallback } = await hammer(
      prefix,
      4,
      { algorithm: 'fixed-window', limit: L, windowMs: W },
      2_000,
      16,
    );
    expect(fallback).toBe(0);
    expect(rejected).toBeGreaterThan(allowed.length); // the limit was what stopped them
    for (const mine of perProcess) expect(mine).toBeGreaterThan(0);
    // A decision was made by Redis somewhere between sending and receiving; those whose interval
    // lies inside one window certainly belong to it.
    const perWindow = new Map<number, number>();
    for (const [s, r] of allowed) {
      const w = Math.floor(s / W);
      if (Math.floor(r / W) === w) perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
    }
    expect(Math.max(...perWindow.values())).toBeLessThanOrEqual(L);
    // And in all: at most L per window spanned by the run.
    const first = Math.floor(Math.min(...allowed.map((a) => a[0])) / W);
    const last = Math.floor(Math.max(...allowed.map((a) => a[1])) / W);
    expect(allowed.length).toBeLessThanOrEqual(L * (last - first + 1));
    // The fleet did use its limit (most decisions come at a window's start, often sent before it).
    expect(allowed.length).toBeGreaterThan(L * (last - first + 1) * 0.6);
  }, 45_000);

  it('four processes on one GCRA key: no interval ever admits more than burst + rate × its length', async () => {
    const rate = 100;
    const burst = 5;
    prefix = testPrefix();
    const { allowed, perProcess, fallback } = await hammer(
      prefix,
      4,
      { algorithm: 'gcra', rate, periodMs: 1_000, burst },
      1_500,
      8,
    );
    expect(fallback).toBe(0);
    for (const mine of perProcess) expect(mine).toBeGreaterThan(0);
    const sorted = [...allowed].sort((a, b) => a[0] - b[0]);
    for (const T of [20, 100, 400]) {
      const bound = burst + 1 + (rate * T) / 1_000;
      for (let i = 0; i < sorted.length; i++) {
        const from = sorted[i]![0];
        let inside = 0;
        for (let j = i; j < sorted.length && sorted[j]![0] <= from + T; j++) {
          if (sorted[j]![1] <= from + T) inside++;
        }
        expect(inside, `decisions inside [${from}, ${from + T}]`).toBeLessThanOrEqual(bound);
      }
    }
    // ~rate per second were admitted, fleet-wide (not 4 × rate), over the whole span.
    const span = Math.max(...allowed.map((a) => a[1])) - Math.min(...allowed.map((a) => a[0]));
    expect(allowed.length).toBeLessThanOrEqual(burst + 1 + (rate * span) / 1_000);
    expect(allowed.length).toBeGreaterThan((rate * span) / 1_000 / 2);
  }, 45_000);
});
