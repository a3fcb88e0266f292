import { describe, expect, it } from 'vitest';
import { LatencyWindow } from '../limits/latency-window.js';
import { type HedgeSettings, hedgeDelay } from './hedge-race.js';

const base: HedgeSettings = { initialDelayMs: 100, minDelayMs: 1, minSamples: 5, maxHedges: 1 };

describe('hedgeDelay', () => {
  it('is the fixed delay when one is set', () => {
    expect(hedgeDelay({ ...base, delayMs: 40 }, null, 0)).toBe(40);
  });

  it('is initialDelayMs until minSamples latencies are known, then their quantile, clamped', () => {
    const w = new LatencyWindow(100);
    const h = { ...base, quantile: 0.9, maxDelayMs: 60 };
    for (let i = 1; i <= 4; i++) w.add(i * 10, 0);
    expect(hedgeDelay(h, w, 0)).toBe(100);
    for (let i = 5; i <= 10; i++) w.add(i * 10, 0);
    expect(hedgeDelay({ ...h, maxDelayMs: 1_000 }, w, 0)).toBe(90);
    expect(hedgeDelay(h, w, 0)).toBe(60);
    expect(hedgeDelay({ ...h, quantile: 0.1, minDelayMs: 25 }, w, 0)).toBe(25);
  });
});
