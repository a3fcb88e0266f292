import { describe, expect, it } from 'vitest';
import { ConfigError, TimeoutError } from '../core/errors.js';
import { pipeline } from '../core/policy.js';
import { retry } from '../core/retry.js';
import { createFakeClock } from '../testing/index.js';
import { adaptiveTimeout } from './adaptive-timeout.js';

describe('adaptiveTimeout', () => {
  it('uses `initial` until minSamples latencies are known, then p99 × 1.5 rounded up to the grid', async () => {
    const clock = createFakeClock();
    const t = adaptiveTimeout({ clock, minMs: 1, maxMs: 10_000, initialMs: 2_000, minSamples: 20 });
    expect(t.timeoutMs).toBe(2_000);
    for (let i = 0; i < 20; i++) {
      const p = t.execute(() => new Promise((r) => clock.setTimeout(() => r(i), 100)));
      await clock.tick(100);
      await p;
    }
    // p99 of 100 ms ≈ 100–104.5 → ×1.5 ≈ 150–157 → grid 2^(k/4): 2^(29/4) ≈ 152.2 or 2^(30/4) ≈ 181
    expect([2 ** (29 / 4), 2 ** (30 / 4)]).toContain(t.timeoutMs);
    expect(t.estimateMs).toBeGreaterThanOrEqual(100);
    expect(t.stats.samples).toBe(20);
  });

  it('clamps to [min, max]', async () => {
    const clock = createFakeClock();
    const t = adaptiveTimeout({ clock, minMs: 500, maxMs: 800, minSamples: 1 });
    await t.execute(() => 1); // 0 ms
    expect(t.timeoutMs).toBe(500);
    const p = t.execute(() => new Promise((r) => clock.setTimeout(() => r(1), 700)));
    await clock.tick(700);
    await p;
    expect(t.timeoutMs).toBe(800);
  });

  it('times out with TimeoutError and records the timeout as a (censored) latency', async () => {
    const clock = createFakeClock();
    const t = adaptiveTimeout({
      clock,
      minMs: 10,
      maxMs: 1_000,
      initialMs: 50,
      minSamples: 1,
      strategy: 'abandon',
    });
    const p = t.execute(() => new Promise(() => {}));
    const check = expect(p).rejects.toBeInstanceOf(TimeoutError);
    await clock.tick(50);
    await check;
    expect(t.stats.timeouts).toBe(1);
    expect(t.timeoutMs).toBeGreaterThanOrEqual(75); // 50 × 1.5, rounded up
  });

  it('composes in a pipeline (per-attempt timeout inside retry)', async () => {
    const clock = createFakeClock();
    const policy = pipeline(retry({ maxAttempts: 2, clock }), adaptiveTimeout({ clock, initialMs: 100 }));
    expect(await policy.execute(() => 'ok')).toBe('ok');
  });

  it('validates options', () => {
    expect(() => adaptiveTimeout({ quantile: 0 })).toThrow(/adaptiveTimeout.quantile/);
    expect(() => adaptiveTimeout({ minMs: 100, maxMs: 50 })).toThrow(/adaptiveTimeout.max/);
    expect(() => adaptiveTimeout({ maxMs: Number.POSITIVE_INFINITY })).toThrow(ConfigError);
    expect(() => adaptiveTimeout({ strategy: 'x' as never })).toThrow(/strategy/);
  });
});

describe('adaptiveTimeout and aborts', () => {
  it('does not record a call its caller aborted', async () => {
    const clock = createFakeClock();
    const t = adaptiveTimeout({ clock, minSamples: 1 });
    const ac = new AbortController();
    const p = t.execute(
      ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
      { signal: ac.signal },
    );
    ac.abort(new Error('bye'));
    await expect(p).rejects.toThrow('bye');
    expect(t.stats.samples).toBe(0);
  });
});

describe('adaptiveTimeout: what counts as a latency', () => {
  it('records successes and its own timeouts, not fast failures (an outage must not shrink the timeout)', async () => {
    const clock = createFakeClock();
    const t = adaptiveTimeout({ clock, initialMs: 1_000 });
    await t.execute(() => 'ok');
    expect(t.stats.samples).toBe(1);
    for (let i = 0; i < 5; i++) {
      await t
        .execute(() => Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })))
        .catch(() => {});
    }
    expect(t.stats.samples).toBe(1);
  });
});
