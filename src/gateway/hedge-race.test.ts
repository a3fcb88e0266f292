import { describe, expect, it } from 'vitest';
import { QuantileSketch } from '../limits/quantile.js';
import { createFakeClock } from '../testing/index.js';
import { type HedgeSettings, hedgeDelay } from './hedge-race.js';

const base: HedgeSettings = { initialDelayMs: 100, minDelayMs: 1, minSamples: 5, maxHedges: 1 };

describe('hedgeDelay', () => {
  it('is the fixed delay when one is set', () => {
    expect(hedgeDelay({ ...base, delayMs: 40 }, null, 0)).toBe(40);
  });

  it('is initialDelayMs until minSamples latencies are known, then their quantile, clamped', () => {
    const w = new QuantileSketch(60_000, createFakeClock());
    const h = { ...base, quantile: 0.9, maxDelayMs: 60 };
    for (let i = 1; i <= 4; i++) w.record(i * 10, 0);
    expect(hedgeDelay(h, w, 0)).toBe(100);
    for (let i = 5; i <= 10; i++) w.record(i * 10, 0);
    const p90 = hedgeDelay({ ...h, maxDelayMs: 1_000 }, w, 0); // the sketch: within 4.4 % above
    expect(p90).toBeGreaterThanOrEqual(90);
    expect(p90).toBeLessThanOrEqual(90 * 1.045);
    expect(hedgeDelay(h, w, 0)).toBe(60);
    expect(hedgeDelay({ ...h, quantile: 0.1, minDelayMs: 25 }, w, 0)).toBe(25);
  });
});
