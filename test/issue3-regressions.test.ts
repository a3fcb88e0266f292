/**
 * Regressions found in review of the load-control and latency policies.
 */

import {
  adaptiveConcurrency,
  adaptiveThrottle,
  cache,
  handle,
  hedge,
  pipeline,
  rateLimiter,
  rateLimitHeaders,
  timeout,
} from 'bulwark';
import { createFakeClock } from 'bulwark/testing';
import { describe, expect, it } from 'vitest';

const honour = (ctx: { signal: AbortSignal }) =>
  new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));

describe('review regressions', () => {
  it('gradient2: instant calls (0 ms RTT) never make the limit NaN', async () => {
    const clock = createFakeClock();
    const p = adaptiveConcurrency({ algorithm: 'gradient2', window: false, clock });
    await Promise.all(Array.from({ length: 20 }, () => p.execute(() => Promise.resolve(1))));
    expect(Number.isFinite(p.limit)).toBe(true);
    await expect(p.execute(() => 1)).resolves.toBe(1);
  });

  it('hedge: a handle predicate that throws fails the call instead of hanging it', async () => {
    const clock = createFakeClock();
    const h = hedge({
      delay: 50,
      clock,
      handle: handle.errors(() => {
        throw new Error('predicate boom');
      }),
    });
    const p = h.execute(() => Promise.reject(new Error('x')));
    const outcome = p.catch((e: unknown) => e);
    await clock.tick(100);
    expect(await outcome).toEqual(new Error('predicate boom'));
  });

  it('hedge: an enabled(ctx) that throws rejects; execute() never throws synchronously', async () => {
    const h = hedge({
      delay: 50,
      enabled: () => {
        throw new Error('enabled boom');
      },
    });
    const p = h.execute(() => 1);
    expect(p).toBeInstanceOf(Promise);
    await expect(p).rejects.toThrow('enabled boom');
  });

  it('adaptiveThrottle: a caller abort and an enclosing timeout count as neither request nor accept', async () => {
    const clock = createFakeClock();
    const th = adaptiveThrottle({ clock });
    const caller = new AbortController();
    const p = th.execute(honour, { signal: caller.signal });
    caller.abort(new DOMException('t', 'TimeoutError'));
    await p.catch(() => {});
    const outer = pipeline(timeout({ timeoutMs: 10, clock }), th)
      .execute(honour)
      .catch(() => {});
    await clock.tick(10);
    await outer;
    expect(th.stats).toMatchObject({ requests: 0, accepts: 0 });
  });

  it("gcra: the RateLimit-Policy header's quota over its window is the sustained rate", () => {
    const clock = createFakeClock();
    const l = rateLimiter({ limits: [{ algorithm: 'gcra', rate: 10, periodMs: 1_000, burst: 9 }], clock });
    const d = l.consume('k');
    expect(d.limit / d.windowMs).toBeCloseTo(10 / 1_000);
    expect(rateLimitHeaders(d, 'api')['RateLimit-Policy']).toBe('"api";q=10;w=1');
  });

  it('cache: a background refresh that never settles does not block revalidation for good', async () => {
    const clock = createFakeClock();
    const c = cache({ key: () => 'k', ttlMs: 1_000, staleWhileRevalidateMs: 60_000, clock });
    let n = 0;
    let hang = false;
    const fn = () => (hang ? new Promise<number>(() => {}) : Promise.resolve(++n));
    await c.execute(fn);
    await clock.tick(1_500);
    hang = true;
    await c.execute(fn); // stale; its refresh hangs
    hang = false;
    for (let i = 0; i < 3; i++) {
      await clock.tick(5_000);
      await c.execute(fn);
    }
    expect(await c.execute(fn)).toBeGreaterThan(1);
  });
});
