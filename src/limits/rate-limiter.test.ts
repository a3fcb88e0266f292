import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { createFakeClock } from '../testing/index.js';
import { rateLimiter } from './rate-limiter.js';

describe('rateLimiter', () => {
  it('reports allowed, remaining, retryAfterMs, resetMs, limit', () => {
    const clock = createFakeClock({ now: 0 });
    const l = rateLimiter({ limits: [{ algorithm: 'fixed-window', limit: 3, windowMs: 1_000 }], clock });
    clock.tickSync(250);
    expect(l.consume('a')).toEqual({
      allowed: true,
      remaining: 2,
      retryAfterMs: 0,
      resetMs: 750,
      limit: 3,
      windowMs: 1_000,
    });
    expect(l.consume('a', 2).remaining).toBe(0);
    expect(l.consume('a')).toEqual({
      allowed: false,
      remaining: 0,
      retryAfterMs: 750,
      resetMs: 750,
      limit: 3,
      windowMs: 1_000,
    });
    expect(l.consume('a', 4).retryAfterMs).toBe(Number.POSITIVE_INFINITY);
    expect(l.consume('b').allowed).toBe(true); // keys are independent
    clock.tickSync(750);
    expect(l.consume('a').allowed).toBe(true);
  });

  it('GCRA reports like redis-cell CL.THROTTLE', () => {
    const clock = createFakeClock({ now: 1_000 });
    // 1 per 100 ms, burst 2: three at once, then one every 100 ms.
    const l = rateLimiter({ limits: [{ algorithm: 'gcra', rate: 10, periodMs: 1_000, burst: 2 }], clock });
    expect(l.consume('k')).toMatchObject({ allowed: true, remaining: 2, limit: 3, resetMs: 100 });
    expect(l.consume('k')).toMatchObject({ allowed: true, remaining: 1, resetMs: 200 });
    expect(l.consume('k')).toMatchObject({ allowed: true, remaining: 0, resetMs: 300 });
    expect(l.consume('k')).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 100, resetMs: 300 });
    clock.tickSync(100);
    expect(l.consume('k').allowed).toBe(true);
  });

  it('multi-window: the most constraining limit is reported, a rejection spends nothing', () => {
    const clock = createFakeClock({ now: 0 });
    const l = rateLimiter({
      limits: [
        { algorithm: 'token-bucket', capacity: 4, refillRate: 4 },
        { algorithm: 'fixed-window', limit: 6, windowMs: 60_000 },
      ],
      clock,
    });
    for (let i = 0; i < 4; i++) expect(l.consume('u').allowed).toBe(true);
    const d = l.consume('u');
    expect(d.allowed).toBe(false);
    expect(d.limit).toBe(4);
    expect(d.retryAfterMs).toBeCloseTo(250);
    clock.tickSync(1_000);
    expect(l.consume('u')).toMatchObject({ allowed: true, remaining: 1, limit: 6 });
    expect(l.consume('u')).toMatchObject({ allowed: true, remaining: 0, limit: 6 });
    // The minute window is spent: the bucket is not charged by rejected calls.
    expect(l.consume('u')).toMatchObject({ allowed: false, limit: 6 });
    expect(l.peek('u')).toMatchObject({ allowed: false });
  });

  it('peek spends nothing; reset forgets a key', () => {
    const l = rateLimiter({
      limits: [{ algorithm: 'sliding-window-log', limit: 2, windowMs: 1_000 }],
      clock: createFakeClock(),
    });
    expect(l.peek('x')).toMatchObject({ allowed: true, remaining: 1 });
    expect(l.peek('x')).toMatchObject({ allowed: true, remaining: 1 });
    l.consume('x', 2);
    expect(l.peek('x').allowed).toBe(false);
    l.reset('x');
    expect(l.peek('x').allowed).toBe(true);
    expect(l.size).toBe(0); // peeking at an unknown key stores nothing
  });

  it('caps keys with LRU eviction', () => {
    const clock = createFakeClock();
    const l = rateLimiter({
      limits: [{ algorithm: 'fixed-window', limit: 1, windowMs: 60_000 }],
      maxKeys: 3,
      clock,
    });
    for (const k of ['a', 'b', 'c']) l.consume(k);
    l.consume('a'); // a is now the most recently used
    l.consume('d'); // evicts b
    expect(l.size).toBe(3);
    expect(l.peek('a').allowed).toBe(false);
    expect(l.peek('c').allowed).toBe(false);
    expect(l.peek('b').allowed).toBe(true); // forgotten, so full again
  });

  it('drops idle keys lazily (no timers) and with prune()', () => {
    const clock = createFakeClock();
    const l = rateLimiter({ limits: [{ algorithm: 'token-bucket', capacity: 2, refillRate: 1 }], clock });
    for (let i = 0; i < 100; i++) l.consume(`k${i}`);
    expect(l.size).toBe(100);
    expect(clock.pending).toBe(0);
    clock.tickSync(1_000); // every bucket is full again
    for (let i = 0; i < 20; i++) l.consume(`new${i}`); // each new key drops up to 2 idle LRU keys
    for (let i = 0; i < 20; i++) l.consume('new0'); // a known key churns nothing
    expect(l.size).toBe(100 - 40 + 20);
    clock.tickSync(2_000);
    expect(l.prune()).toBe(80);
    expect(l.size).toBe(0);
    l.clear();
    expect(l.size).toBe(0);
  });

  it('validates options, naming the option', () => {
    const bad = (o: unknown, option: string) => {
      try {
        rateLimiter(o as never);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as ConfigError).option).toBe(option);
      }
    };
    bad({ limits: [] }, 'rateLimiter.limits');
    bad({ limits: [{ algorithm: 'leaky', limit: 1, windowMs: 1 }] }, 'rateLimiter.limits[0].algorithm');
    bad({ limits: [{ algorithm: 'gcra', rate: 1, periodMs: 0 }] }, 'rateLimiter.limits[0].periodMs');
    bad(
      { limits: [{ algorithm: 'token-bucket', capacity: 1, refillRate: 1, windowMs: 1 }] },
      'rateLimiter.limits[0].windowMs',
    );
    bad(
      { limits: [{ algorithm: 'fixed-window', limit: 1, windowMs: 1 }], maxKeys: 0 },
      'rateLimiter.maxKeys',
    );
    bad({ limits: [{ algorithm: 'fixed-window', limit: 1, windowMs: 1 }], maxKey: 3 }, 'rateLimiter.maxKey');
    const l = rateLimiter({ limits: [{ algorithm: 'fixed-window', limit: 1, windowMs: 1 }] });
    expect(() => l.consume('k', -1)).toThrow(ConfigError);
  });
});
