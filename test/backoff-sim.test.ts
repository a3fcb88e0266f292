/**
 * Keeps the qualitative claims of bench/backoff-sim.ts (and bench/RESULTS-backoff-sim.md) true:
 * a small, deterministic configuration of the same simulation.
 */

import { describe, expect, it } from 'vitest';
import { simulateBudget, simulateOcc } from '../bench/backoff-sim.js';

describe('backoff simulation (optimistic-concurrency contention)', () => {
  for (const clients of [20, 50]) {
    it(`${clients} clients: full jitter does less work than no backoff and than plain exponential`, () => {
      const cfg = { clients, trials: 20, seed: 7 };
      const none = simulateOcc('none', cfg);
      const expo = simulateOcc('exponential', cfg);
      const full = simulateOcc('full', cfg);
      const v2 = simulateOcc('decorrelated-v2', cfg);
      expect(full.calls).toBeLessThan(none.calls);
      expect(full.calls).toBeLessThan(expo.calls);
      expect(v2.calls).toBeLessThan(expo.calls);
      // Exponential backoff without jitter keeps clients in lockstep: by far the slowest.
      expect(expo.timeMs).toBeGreaterThan(3 * full.timeMs);
      // Every client writes successfully exactly once, so there are at least `clients` calls.
      expect(full.calls).toBeGreaterThanOrEqual(clients);
    });
  }

  it('is deterministic for a seed', () => {
    expect(simulateOcc('full', { clients: 10, trials: 5, seed: 3 })).toEqual(
      simulateOcc('full', { clients: 10, trials: 5, seed: 3 }),
    );
  });
});

describe('retry budget simulation (dependency failing 100 %)', () => {
  const cfg = { requests: 2_000, seed: 5 };
  it('plain retries make 4× the attempts', () => {
    expect(simulateBudget('plain', cfg).attempts).toBe(8_000);
  });
  it('a 20 % budget keeps attempts <= 1.2× requests', () => {
    expect(simulateBudget('tokens', cfg).attempts).toBeLessThanOrEqual(1.2 * cfg.requests);
    expect(simulateBudget('ratio', cfg).attempts).toBeLessThanOrEqual(1.2 * cfg.requests);
    expect(simulateBudget('tokens', { ...cfg, arrivalsPerMs: 0.05 }).attempts).toBeLessThanOrEqual(
      1.2 * cfg.requests,
    );
  });
  it('retryBudget.ratioTokens (the tokens mode) keeps attempts <= (1 + ratio) × requests at every load', () => {
    for (const arrivalsPerMs of [4, 2, 0.5, 0.1, 0.01]) {
      for (const ratio of [0.1, 0.2, 0.5]) {
        const r = simulateBudget('tokens', { ...cfg, arrivalsPerMs, ratio });
        expect(r.attempts).toBeLessThanOrEqual(Math.round((1 + ratio) * cfg.requests));
        // a 100 %-failing dependency uses the whole budget but the capacity (10) left at the end
        expect(r.attempts).toBeGreaterThanOrEqual(Math.round((1 + ratio) * cfg.requests) - 10);
      }
    }
  });
  it("Envoy's ratio caps concurrent retries at max(0.2 × active, 3)", () => {
    // At low load the floor of 3 applies, and the ratio bounds concurrency, not the total.
    const low = simulateBudget('ratio', { ...cfg, arrivalsPerMs: 0.1 });
    expect(low.peakRetries).toBeLessThanOrEqual(3);
    expect(low.attempts).toBeGreaterThan(1.2 * cfg.requests);
  });
});
