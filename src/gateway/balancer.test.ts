import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeStrategy, PeakEwma, type Pickable } from './balancer.js';

const ep = (weight = 1, priority = 0, inFlight = 0, latencyMs = 0): Pickable => ({
  weight,
  priority,
  inFlight,
  latencyMs,
  currentWeight: 0,
});

describe('strategies', () => {
  it('smooth weighted: exact shares over a cycle, never 5 in a row for weights 5:1:1', () => {
    const [a, b, c] = [ep(5), ep(1), ep(1)];
    const s = makeStrategy('weighted', Math.random);
    const seq = Array.from({ length: 7 }, () => s.pick([a!, b!, c!], [a!, b!, c!], () => true));
    expect(seq.filter((x) => x === a).length).toBe(5);
    expect(seq.filter((x) => x === b).length).toBe(1);
    let run = 0;
    let longest = 0;
    for (const x of seq) {
      run = x === a ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
    expect(longest).toBeLessThan(5);
  });

  it('weighted shares converge to the weights (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 6 }), (weights) => {
        const eps = weights.map((w) => ep(w));
        const s = makeStrategy('weighted', Math.random);
        const total = weights.reduce((a, b) => a + b, 0);
        const counts = new Map<Pickable, number>();
        for (let i = 0; i < total * 3; i++) {
          const e = s.pick(eps, eps, () => true);
          counts.set(e, (counts.get(e) ?? 0) + 1);
        }
        eps.forEach((e, i) => {
          expect(counts.get(e) ?? 0).toBe(weights[i]! * 3);
        });
      }),
    );
  });

  it('least-request picks the less loaded of two; least-latency weighs latency by load', () => {
    let r = 0;
    const seq = [0.1, 0.9];
    const random = () => seq[r++ % 2]!;
    const busy = ep(1, 0, 10);
    const idle = ep(1, 0, 0);
    expect(makeStrategy('least-request', random).pick([busy, idle], [busy, idle], () => true)).toBe(idle);
    const slow = ep(1, 0, 0, 500);
    const fast = ep(1, 0, 3, 10);
    expect(makeStrategy('least-latency', random).pick([slow, fast], [slow, fast], () => true)).toBe(fast);
  });

  it('priority: tier 1 takes over the share tier 0 cannot serve (overprovisioning 1.4)', () => {
    const t0 = [ep(1, 0), ep(1, 0), ep(1, 0), ep(1, 0), ep(1, 0)];
    const t1 = [ep(1, 1)];
    const all = [...t0, ...t1];
    let x = 0;
    const random = () => {
      x = (x * 9301 + 49297) % 233280;
      return x / 233280;
    };
    const s = makeStrategy('priority', random);
    // 2 of 5 tier-0 endpoints healthy: tier 0 gets min(1, 0.4 × 1.4) = 56 %
    const healthy = [t0[0]!, t0[1]!, t1[0]!];
    let tier1 = 0;
    for (let i = 0; i < 10_000; i++)
      if (s.pick(healthy, all, (e) => healthy.includes(e)).priority === 1) tier1++;
    expect(tier1 / 10_000).toBeGreaterThan(0.4);
    expect(tier1 / 10_000).toBeLessThan(0.48);
    // all of tier 0 healthy: tier 1 gets nothing
    for (let i = 0; i < 100; i++) expect(s.pick(all, all, () => true).priority).toBe(0);
  });

  it('peak EWMA believes peaks at once and decays otherwise', () => {
    const e = new PeakEwma(1_000);
    e.observe(10, 0);
    e.observe(100, 10);
    expect(e.value).toBe(100);
    e.observe(10, 5_000);
    expect(e.value).toBeLessThan(12);
  });
});
