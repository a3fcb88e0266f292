import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createFakeClock } from '../testing/index.js';
import { QuantileSketch } from './quantile.js';

describe('QuantileSketch', () => {
  it('is within 4.5 % above the exact quantile (reference: sorted samples)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.02, max: 100_000, noNaN: true }), { minLength: 1, maxLength: 300 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        (values, q) => {
          const s = new QuantileSketch(Number.POSITIVE_INFINITY, createFakeClock());
          for (const v of values) s.record(v);
          const sorted = [...values].sort((a, b) => a - b);
          const exact = sorted[Math.max(1, Math.ceil(q * values.length)) - 1]!;
          const est = s.quantile(q);
          return est >= exact * 0.999_999 && est <= exact * 1.045;
        },
      ),
    );
  });

  it('forgets samples older than two windows', async () => {
    const clock = createFakeClock();
    const s = new QuantileSketch(1_000, clock);
    for (let i = 0; i < 100; i++) s.record(500);
    expect(s.quantile(0.5)).toBeGreaterThanOrEqual(500);
    expect(s.quantile(0.5)).toBeLessThanOrEqual(500 * 1.045);
    await clock.tick(1_000);
    for (let i = 0; i < 100; i++) s.record(10);
    expect(s.count).toBe(200); // previous half still counted
    await clock.tick(1_000);
    expect(s.count).toBe(100);
    expect(s.quantile(0.99)).toBeLessThan(11);
    await clock.tick(5_000);
    expect(s.count).toBe(0);
    expect(s.quantile(0.5)).toBeNaN();
  });

  it('ignores negative and NaN values', () => {
    const s = new QuantileSketch(Number.POSITIVE_INFINITY, createFakeClock());
    s.record(-1);
    s.record(Number.NaN);
    expect(s.count).toBe(0);
  });

  it('cachedQuantile: NaN below minSamples, refreshed per batch of samples, on rotation and on another quantile', async () => {
    const clock = createFakeClock();
    const s = new QuantileSketch(1_000, clock);
    for (let i = 0; i < 4; i++) s.record(10);
    expect(s.cachedQuantile(0.5, 5)).toBeNaN();
    s.record(10);
    const ten = s.cachedQuantile(0.5, 5);
    expect(ten).toBeGreaterThanOrEqual(10);
    expect(ten).toBeLessThanOrEqual(10.45);
    for (let i = 0; i < 7; i++) s.record(1_000, clock.now());
    expect(s.cachedQuantile(0.5, 5)).toBe(ten); // fewer than 8 new samples within 100 ms: cached
    expect(s.cachedQuantile(0.99, 5)).toBeGreaterThanOrEqual(1_000); // another quantile: recomputed
    s.record(1_000);
    expect(s.cachedQuantile(0.5, 5)).toBeGreaterThanOrEqual(1_000); // 8 new samples: recomputed
    await clock.tick(2_000);
    expect(s.cachedQuantile(0.5, 1)).toBeNaN(); // two windows later: forgotten
  });
});
